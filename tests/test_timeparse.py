"""The shared time parser behind --since/--until/--from/--to."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claw_governance.errors import ConfigError
from claw_governance.timeparse import ACCEPTED, parse_when

NOW = datetime(2026, 12, 1, 15, 30, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - 7 * 86400),
        ("12h", NOW - 12 * 3600),
        ("30m", NOW - 1800),
        ("90s", NOW - 90),
        ("2w", NOW - 14 * 86400),
        ("7 days ago", NOW - 7 * 86400),
        ("now", NOW),
        ("today", datetime(2026, 12, 1, tzinfo=UTC).timestamp()),
        ("yesterday", datetime(2026, 11, 30, tzinfo=UTC).timestamp()),
        ("2026-11-02", datetime(2026, 11, 2, tzinfo=UTC).timestamp()),
        ("2026-11-02T10:00:00Z", datetime(2026, 11, 2, 10, tzinfo=UTC).timestamp()),
        ("2026-11-02 10:00", datetime(2026, 11, 2, 10, tzinfo=UTC).timestamp()),
        ("1796155962", 1796155962.0),
        (" Yesterday ", datetime(2026, 11, 30, tzinfo=UTC).timestamp()),
    ],
)
def test_accepted_forms(text: str, expected: float) -> None:
    assert parse_when(text, now=NOW) == expected


@given(st.text(max_size=30))
def test_anything_else_is_one_clear_error(text: str) -> None:
    try:
        value = parse_when(text, now=NOW)
    except ConfigError as exc:
        assert ACCEPTED in str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(value, float)


def test_audit_query_since_7d_and_a_bad_value(tmp_path: Path) -> None:
    from claw_governance import Governor

    with Governor(policy_path=None, audit_path=tmp_path / "audit", identity_path=tmp_path / "ids") as gov:
        gov.agent("a").check("x:y")
    claw = str(Path(sys.executable).with_name("claw-gov"))
    base = [
        claw,
        "audit",
        "query",
        "--audit",
        str(tmp_path / "audit"),
        "--identities",
        str(tmp_path / "ids"),
        "--type",
        "policy_decision",
    ]
    recent = subprocess.run([*base, "--since", "7d"], capture_output=True, text=True, timeout=60)
    assert recent.returncode == 0 and recent.stdout.count("\n") == 1, recent.stderr
    future = subprocess.run(
        [*base, "--since", "yesterday", "--until", "yesterday"], capture_output=True, text=True, timeout=60
    )
    assert future.returncode == 0 and future.stdout == ""
    bad = subprocess.run([*base, "--since", "last tuesday"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [f"error: time 'last tuesday' is not understood: use {ACCEPTED}"]
