"""Issue 13 item 9 (CLI half): no command prints a raw control or format character from a value.

An action name with ESC/CR/C1/bidi characters is stored as given (the trail keeps evidence exactly); every
output of ``escalations list/show``, ``audit query`` (jsonl and table), ``audit verify``, ``audit report``,
``identity list/show``, ``policy lint`` and ``check`` shows them as escapes. On the code before this change
10 of these tests fail (escalations list/show, audit query and report, identity show printed ESC, CR, C1 and
bidi characters raw); the JSON outputs of identity, ``audit verify``, ``check`` and ``policy lint`` were
already safe and are kept so.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from claw_governance import Decision, Governor, Outcome, ToolCall
from claw_governance.cli import build_cli
from claw_governance.terminal import safe_json, safe_text

HOSTILE = "pay:\x1b[2J\x1b]0;owned\x07\rrefund\u202e\u200b\x9b31m\u2028x"
POLICY = 'agent: "*"\npermissions:\n  allow: ["*"]\n  escalate: ["pay:*"]\n'


def unsafe(text: str) -> list[str]:
    """Characters a terminal would act on (newline is the only control a command may print itself)."""
    return [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text(POLICY)
    with Governor(tmp_path / "policies", tmp_path / "audit", tmp_path / "identities", load_entry_points=False) as gov:
        agent = gov.agent("bot")
        # The governor denies an action name with control characters (it is still audited as given); the
        # escalation store may hold one anyway (written before that rule, or by another tool): show both.
        denied = agent.check(HOSTILE, {"note": "line1\rline2\x1b[1A"})
        assert denied.outcome is Outcome.DENY
        call = ToolCall("bot", HOSTILE, {"note": "line1\rline2\x1b[1A"})
        escalation = gov.escalations.open(
            call, Decision(Outcome.ESCALATE, f"needs approval: {HOSTILE}", call), 3600, dict(call.args)
        )
        (tmp_path / "esc_id").write_text(escalation.id)
        gov.identities.create("ops-bot", metadata={"owner": "team\x1b]8;;http://evil\x07@example.com\r"})
        gov.identities.revoke("ops-bot", "compromised\x1b[2K\rall good")
    return tmp_path


def run(root: Path, *args: str) -> str:
    result = CliRunner().invoke(
        build_cli(),
        list(args),
        env={
            "POLICY_PATH": str(root / "policies"),
            "AUDIT_PATH": str(root / "audit"),
            "IDENTITY_PATH": str(root / "identities"),
        },
    )
    return result.output


@pytest.mark.parametrize(
    "args",
    [
        ("escalations", "list"),
        ("escalations", "list", "--json"),
        ("escalations", "show", "ESC"),
        ("escalations", "show", "ESC", "--json"),
        ("audit", "query"),
        ("audit", "query", "--format", "table"),
        ("audit", "verify"),
        ("audit", "report", "--from", "2000-01-01", "--to", "2100-01-01", "--format", "md"),
        ("audit", "report", "--from", "2000-01-01", "--to", "2100-01-01"),
        ("identity", "list"),
        ("identity", "show", "ops-bot"),
        ("identity", "show", "ops-bot", "--json"),
        ("check", "--agent", "bot", "--action", HOSTILE, "--dry-run"),
    ],
    ids=lambda a: " ".join(a[:3]).replace("\x1b", "ESC"),
)
def test_no_command_prints_a_raw_control_character(root: Path, args: tuple[str, ...]) -> None:
    esc = (root / "esc_id").read_text()
    out = run(root, *[esc if a == "ESC" else a for a in args])
    assert out.strip()
    assert unsafe(out) == [], [hex(ord(c)) for c in unsafe(out)]


def test_the_escaped_value_is_still_readable(root: Path) -> None:
    out = run(root, "escalations", "list")
    assert "pay:\\x1b[2J" in out and "\\rrefund" in out and "\\u202e" in out
    lines = run(root, "audit", "query").splitlines()
    assert any(json.loads(line)["action"] == HOSTILE for line in lines)  # JSON escapes, the value unchanged


def test_policy_lint_escapes_file_content(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text('agent: "*"\npermissions:\n  allow: ["read\\u001b[31m:*"]\n  denny: [x]\n')
    out = CliRunner().invoke(build_cli(), ["policy", "lint", str(tmp_path / "bad.yaml")]).output
    assert out.strip() and unsafe(out) == []


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_safe_text_and_safe_json_never_emit_unsafe_characters(text: str) -> None:
    assert unsafe(safe_text(text)) == [] and "\n" not in safe_text(text)
    encoded = safe_json({"v": text})
    assert unsafe(encoded.replace("\n", "")) == []
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return  # lone surrogates are not JSON for any reader
    assert json.loads(encoded) == {"v": text}
