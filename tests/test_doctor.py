"""`claw-gov doctor`: the production checklist, checked; exit 1 on any red flag; --json for CI."""

from __future__ import annotations

import json
import sqlite3
import textwrap
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from claw_governance import Governor
from claw_governance.cli import build_cli
from claw_governance.metrics import write_last_verify, write_run_marker

VERBS = (
    '["delete:*", "drop:*", "truncate:*", "destroy:*", "wipe:*", "purge:*", "remove:*", "rm:*", "kill:*", "shutdown:*"]'
)
GOOD = f"""\
agent: support
permissions:
  allow: ["read:*", "update:ticket"]
  deny: {VERBS}
  escalate:
    - action: refund
      timeout: 4h
trust: {{min_score: 50, recovery_score: 80}}
audit: {{retention: 2555}}
"""
BAD = """\
agent: support
permissions:
  allow: ["*"]
  escalate: [refund]
trust: {min_score: 0, recovery_score: 80}
audit: {retention: 30}
"""
STRONG = "9f1c2e7a4b8d6f0e3a5c7b9d1f2e4a6c8b0d2f4e6a8c0b2d4f6e8a0c2b4d6f8e"


def deploy(root: Path, policy: str, **settings: Any) -> Path:
    (root / "policies").mkdir(parents=True, exist_ok=True)
    (root / "policies" / "support.yaml").write_text(textwrap.dedent(policy))
    with Governor(root / "policies", root / "audit", root / "identities", load_entry_points=False, **settings) as gov:
        gov.agent("support").check("read:x")
    return root


def doctor(root: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        build_cli(),
        [
            "doctor",
            *args,
            "--policies",
            str(root / "policies"),
            "--audit",
            str(root / "audit"),
            "--identities",
            str(root / "identities"),
        ],
        env={"CLAW_BRIDGE_TOKEN": "", "AUDIT_WITNESS_URL": "", "STATE_URL": "", **(env or {})},
    )


def findings(result: Result) -> dict[str, list[dict[str, str]]]:
    body = json.loads(result.output)
    out: dict[str, list[dict[str, str]]] = {}
    for f in body["findings"]:
        out.setdefault(f["id"], []).append(f)
    return out


def severities(result: Result) -> dict[str, set[str]]:
    return {k: {f["severity"] for f in v} for k, v in findings(result).items()}


def test_a_well_kept_deployment_has_no_red_flag(tmp_path: Path) -> None:
    root = deploy(tmp_path, GOOD, identity_passphrase="correct horse battery staple", identity_scrypt_log2_n=14)
    state = root / "identities" / ".state"
    write_last_verify(state, True, 3, "t")
    write_run_marker(state, "last-export.json", destination="/worm/2026-11")
    result = doctor(root, "--json", env={"CLAW_BRIDGE_TOKEN": STRONG, "AUDIT_WITNESS_URL": "https://w.example"})
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["ok"] is True and body["red"] == 0, body
    # nothing to warn about either, but free disk, which is this machine's (see the next test)
    assert [f["id"] for f in body["findings"] if f["severity"] != "ok"] in ([], ["AUD002"]), body
    assert set(severities(result)) >= {
        "POL000",
        "POL001",
        "POL002",
        "POL003",
        "POL004",
        "IDN001",
        "IDN002",
        "IDN003",
        "AUD001",
        "AUD002",
        "AUD003",
        "AUD004",
        "AUD005",
        "SRV001",
        "STA001",
    }


def test_free_disk_under_the_audit_path(tmp_path: Path) -> None:
    from claw_governance.config import GovernorConfig
    from claw_governance.doctor import Context
    from claw_governance.doctor.checks import check_audit_disk

    config = GovernorConfig(audit_path=tmp_path / "audit")
    (red,) = check_audit_disk(Context(config, disk_red=1.01, disk_amber=1.01))
    (amber,) = check_audit_disk(Context(config, disk_red=0.0, disk_amber=1.01))
    (fine,) = check_audit_disk(Context(config, disk_red=0.0, disk_amber=0.0))
    assert (red.severity, amber.severity, fine.severity) == ("red", "amber", "ok")
    assert "free under" in fine.message and str(tmp_path / "audit") in fine.message
    (memory,) = check_audit_disk(Context(GovernorConfig()))
    assert memory.severity == "red" and "no audit path" in memory.message


def test_every_red_flag_of_a_careless_deployment(tmp_path: Path) -> None:
    root = deploy(tmp_path, BAD)
    result = doctor(root, "--json", env={"CLAW_BRIDGE_TOKEN": "changeme-please1"})
    assert result.exit_code == 1
    got = severities(result)
    for check in ("POL002", "POL003", "AUD001", "IDN001", "IDN003", "SRV001"):
        assert "red" in got[check], (check, findings(result)[check])
    assert got["POL004"] == {"amber"}  # escalate without a timeout
    assert got["AUD003"] == {"amber"} and got["AUD004"] == {"amber"} and got["AUD005"] == {"amber"}
    for items in findings(result).values():
        for f in items:
            assert f["id"] and f["severity"] in ("red", "amber", "ok") and "\n" not in f["message"] + f["fix"]
            assert f["severity"] == "ok" or f["fix"]
    (unrestricted,) = [f for f in findings(result)["POL002"] if f["severity"] == "red"]
    assert "support.yaml:3" in unrestricted["message"]


def test_text_output_names_fixes_and_counts(tmp_path: Path) -> None:
    root = deploy(tmp_path, BAD)
    result = doctor(root, "--only-problems")
    assert result.exit_code == 1
    assert "RED   POL002" in result.output and "fix: replace it with the actions the agent needs" in result.output
    assert "ok    " not in result.output
    assert result.output.strip().splitlines()[-1].endswith("warning(s)")


def test_broken_policy_unreachable_store_and_broken_chain(tmp_path: Path) -> None:
    root = deploy(tmp_path, GOOD)
    (root / "policies" / "support.yaml").write_text("agent: support\npermissions:\n  allow: [unclosed\n")
    write_last_verify(root / "identities" / ".state", False, 3, "t")
    result = doctor(root, "--json", env={"STATE_URL": "postgresql://postgres@127.0.0.1:1/none"})
    assert result.exit_code == 1
    by_id = findings(result)
    assert by_id["POL000"][0]["severity"] == "red" and "support.yaml" in by_id["POL000"][0]["message"]
    assert by_id["STA001"][0]["severity"] == "red" and "127.0.0.1:1" in by_id["STA001"][0]["message"]
    assert by_id["AUD003"][0]["severity"] == "red" and "BROKEN" in by_id["AUD003"][0]["message"]


def test_old_keys_and_missing_agent_policies_are_flagged(tmp_path: Path) -> None:
    root = deploy(tmp_path, GOOD)
    with Governor(root / "policies", root / "audit", root / "identities", load_entry_points=False) as gov:
        gov.agent("stranger")  # an identity the policies do not mention
    db = root / "identities" / ".state" / "state.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE identity_keys SET created=? WHERE agent_id='support'", (time.time() - 200 * 86400,))
    by_id = findings(doctor(root, "--json", "--key-rotation-days", "90"))
    assert any(
        f["severity"] == "amber" and "'support'" in f["message"] and "200 days" in f["message"] for f in by_id["IDN002"]
    )
    assert any(f["severity"] == "red" and "'stranger'" in f["message"] for f in by_id["POL001"])
    assert any("rotate support" in f["fix"] for f in by_id["IDN002"])


def test_postgres_state_store_is_reachable(tmp_path: Path, pg_url: str) -> None:
    root = deploy(tmp_path, GOOD, state_url=pg_url)
    by_id = findings(doctor(root, "--json", env={"STATE_URL": pg_url}))
    (sta,) = by_id["STA001"]
    assert sta["severity"] == "ok" and sta["message"].startswith("postgresql state store reachable")
    # the identities were read from PostgreSQL (there is no local state.db)
    assert by_id["POL001"] == [
        {"id": "POL001", "severity": "ok", "message": "every one of the 1 agents has its own policy", "fix": ""}
    ]
    assert not (root / "identities" / ".state" / "state.db").exists()
