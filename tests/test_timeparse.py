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


def test_written_formats_are_pinned() -> None:
    """Each UTC text form the CLI, console, reports and messages print, from the one module that writes them."""
    from claw_governance.timeparse import (
        compact_utc,
        human_utc,
        human_utc_minutes,
        iso_utc,
        iso_utc_micro,
        iso_utc_or_none,
        table_utc,
        utc_day,
    )

    ts = datetime(2026, 12, 1, 10, 30, 5, 250000, tzinfo=UTC).timestamp()
    assert iso_utc(ts) == "2026-12-01T10:30:05Z"
    assert iso_utc_or_none(ts) == "2026-12-01T10:30:05Z" and iso_utc_or_none(None) is None
    assert iso_utc_micro(ts) == "2026-12-01T10:30:05.250000+00:00"
    assert iso_utc_micro(float(int(ts))) == "2026-12-01T10:30:05+00:00"
    assert human_utc(ts) == "2026-12-01 10:30:05 UTC" and human_utc(None) == ""
    assert human_utc_minutes(ts) == "2026-12-01 10:30 UTC"
    assert table_utc(ts) == "2026-12-01 10:30:05"
    assert compact_utc(ts) == "20261201T103005"
    assert utc_day(ts) == "2026-12-01"
    assert parse_when(iso_utc(ts)) == float(int(ts))  # what is written reads back (to the second)


@given(st.floats(min_value=0, max_value=4102444800, allow_nan=False))
def test_iso_round_trips_through_the_parser(ts: float) -> None:
    from claw_governance.timeparse import iso_utc, iso_utc_micro

    assert parse_when(iso_utc(ts)) == float(int(ts))
    assert abs(parse_when(iso_utc_micro(ts)) - ts) < 1e-5
