"""``claw-gov audit`` commands, compliance reports, evidence bundles and the example script."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from claw_governance import Governor
from claw_governance.audit.layout import list_segments
from claw_governance.audit.report import compliance_report, day_range, render_html
from claw_governance.cli import build_cli
from claw_governance.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
POLICY = "agent: cs\npermissions:\n  allow: ['read:*']\n  deny: ['delete:*']\n  escalate: [refund]\n"


@pytest.fixture
def governed(tmp_path: Path) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "cs.yaml").write_text(POLICY)
    with Governor(
        policy_path=tmp_path / "policies", audit_path=tmp_path / "audit", identity_path=tmp_path / "ids"
    ) as gov:
        agent = gov.agent("cs")
        agent.execute("read:orders", {"id": 1, "password": "pw"}, lambda ctx: {"token": "secret-output"})
        agent.check("delete:orders")
        held = agent.check("refund", {"amount": 10})
        assert held.escalation_id
        gov.resolve_escalation(held.escalation_id, "denied", resolver=gov.reviewers.ensure("bob"), notes="ok")
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_cli(), list(args))
    return result.exit_code, result.stdout, result.stderr


def test_verify_ok_and_json(governed: Path) -> None:
    code, out, _ = run("audit", "verify", "--audit", str(governed / "audit"), "--identities", str(governed / "ids"))
    assert code == 0 and out.startswith("VALID")
    code, out, _ = run(
        "audit", "verify", "--audit", str(governed / "audit"), "--identities", str(governed / "ids"), "--json"
    )
    assert code == 0 and json.loads(out)["valid"] is True


def test_verify_tampered_exits_1_and_names_segment_and_seq(governed: Path) -> None:
    segment = list_segments(governed / "audit")[0][1]
    segment.chmod(0o644)
    segment.write_bytes(segment.read_bytes().replace(b'"read:orders"', b'"read:ORDERS"', 1))
    code, out, _ = run("audit", "verify", "--audit", str(governed / "audit"), "--identities", str(governed / "ids"))
    assert code == 1 and "INVALID" in out and f"segment {segment.name} seq " in out


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    code, _, err = run("audit", "verify", "--audit", str(tmp_path / "missing"))
    assert code == 2 and err.count("\n") == 1 and err.startswith("error:") and "Traceback" not in err
    bad_key = tmp_path / "key.pem"
    bad_key.write_text("nonsense")
    (tmp_path / "t").mkdir()
    code, _, err = run("audit", "verify", "--audit", str(tmp_path / "t"), "--public-key", str(bad_key))
    assert code == 2 and err.startswith("error:")
    code, _, err = run("audit", "report", "--audit", str(tmp_path), "--from", "yesterday", "--to", "x")
    assert code == 2 and err.startswith("error:")


def test_query_filters_and_formats(governed: Path) -> None:
    audit = str(governed / "audit")
    code, out, _ = run("audit", "query", "--audit", audit, "--type", "policy_decision", "--outcome", "deny")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["action"] for r in rows] == ["delete:orders"]
    code, out, _ = run("audit", "query", "--audit", audit, "--action", "read:*", "--format", "table")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["seq", "time", "(UTC)"] and "read:orders" in out
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    code, out, _ = run("audit", "query", "--audit", audit, "--since", tomorrow)
    assert code == 0 and out == ""
    code, out, _ = run("audit", "query", "--audit", audit, "--agent", "cs", "--limit", "2")
    assert len(out.splitlines()) == 2


def test_report_formats_include_the_end_day(governed: Path) -> None:
    today = datetime.now(UTC).date().isoformat()
    for fmt in ("json", "md", "html"):
        code, out, _ = run(
            "audit",
            "report",
            "--audit",
            str(governed / "audit"),
            "--from",
            today,
            "--to",
            today,
            "--format",
            fmt,
            "--identities",
            str(governed / "ids"),
        )
        assert code == 0
        if fmt == "json":
            report = json.loads(out)
            assert report["summary"]["total_decisions"] == 3
            assert report["summary"]["allowed"] == 1 and report["summary"]["denied"] == 1
            assert report["summary"]["escalations"] == 1
            assert report["escalations"]["resolved"][0]["status"] == "denied"
            assert report["escalations"]["resolved"][0]["resolution_seconds"] >= 0
            assert len(report["policy_versions"]) == 1 and report["chain"]["valid"]
        elif fmt == "md":
            assert "Chain verification: VALID" in out
        else:
            assert "Audit trail verified." in out and "both days included" in out


def test_report_escapes_html_and_rejects_bad_ranges(governed: Path) -> None:
    report = {
        "period": {"start": "2026-01-01", "end": "2026-01-02"},
        "summary": {"total_decisions": 0},
        "by_agent": {"<script>": {"allow": 1}},
        "by_action": {},
        "escalations": {"resolved": []},
        "trust_changes": [],
        "policy_versions": [],
        "chain": {"valid": True, "entries": 0, "errors": []},
    }
    assert "<script>" not in render_html(report) and "&lt;script&gt;" in render_html(report)
    with pytest.raises(ConfigError):
        day_range("2026-02-02", "2026-02-01")
    lo, hi = day_range("2026-02-01", "2026-02-01")
    assert hi - lo == 86400


def test_report_counts_only_the_period(governed: Path) -> None:
    with Governor(
        policy_path=governed / "policies", audit_path=governed / "audit", identity_path=governed / "ids"
    ) as gov:
        old = (datetime.now(UTC) - timedelta(days=3)).date()
        assert compliance_report(gov.audit, old, old)["summary"]["total_decisions"] == 0


def test_export_bundle_verifies_with_its_own_command(governed: Path, tmp_path: Path) -> None:
    today = datetime.now(UTC).date().isoformat()
    bundle = tmp_path / "bundle"
    code, out, err = run(
        "audit",
        "export",
        "--audit",
        str(governed / "audit"),
        "--identities",
        str(governed / "ids"),
        "--from",
        today,
        "--to",
        today,
        str(bundle),
    )
    assert code == 0, err
    readme = (bundle / "README.md").read_text()
    assert "claw-gov audit verify --audit trail --public-key governor_public_key.pem" in readme
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["chain_valid"] and "governor_public_key.pem" in manifest["files"]
    assert b"secret-output" not in (bundle / "entries.jsonl").read_bytes()
    code, out, _ = run(
        "audit", "verify", "--audit", str(bundle / "trail"), "--public-key", str(bundle / "governor_public_key.pem")
    )
    assert code == 0 and "keys: given" in out
    code, _, err = run(
        "audit", "export", "--audit", str(governed / "audit"), "--from", today, "--to", today, str(bundle)
    )
    assert code == 2 and "not empty" in err


def test_compliance_report_example_runs_offline(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "compliance_report.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Chain verification: VALID" in proc.stdout and "| total decisions | 4 |" in proc.stdout


def test_checkpoint_public_key_prove_and_bundle(governed: Path, tmp_path: Path) -> None:
    from claw_governance.audit.bundle import check_proof, trail_leaves
    from claw_governance.audit.note import parse_checkpoint, parse_vkey

    audit, ids = str(governed / "audit"), str(governed / "ids")
    code, note, _ = run("audit", "checkpoint", "--audit", audit)
    cp = parse_checkpoint(note)
    code, vkey, _ = run("audit", "public-key", "--format", "note", "--audit", audit, "--identities", ids)
    name, key, _alg = parse_vkey(vkey)
    assert code == 0 and name == cp.origin and cp.signed_by(key)
    code, proof, err = run("audit", "prove", "--seq", "2", "--audit", audit)
    assert code == 0 and proof.startswith("c2sp.org/tlog-proof@v1\nindex 1\n"), err
    _, lines = trail_leaves(governed / "audit")
    assert check_proof(proof, lines[2], [key], cp.origin) is None
    assert check_proof(proof, lines[3], [key], cp.origin) is not None
    code, _, err = run("audit", "prove", "--seq", str(cp.size + 5), "--audit", audit)
    assert code == 2 and "not covered" in err and err.count("\n") == 1

    today = datetime.now(UTC).date().isoformat()
    bundle = tmp_path / "b"
    code, _, err = run(
        "audit", "export", "--audit", audit, "--identities", ids, "--from", today, "--to", today, str(bundle)
    )
    assert code == 0, err
    assert (bundle / "checkpoints" / "latest.note").exists() and list((bundle / "proofs").glob("*.tlog-proof"))
    assert "tlogverify" in (bundle / "README.md").read_text()
    pem = str(bundle / "governor_public_key.pem")
    code, out, _ = run("audit", "verify", "--bundle", str(bundle), "--public-key", pem)
    assert code == 0 and out.startswith("VALID"), out
    code, out, _ = run("audit", "verify", "--bundle", str(bundle), "--public-key", vkey.strip())
    assert code == 0
    # one byte of one proof changed: INVALID, naming the proof
    victim = sorted((bundle / "proofs").glob("*.tlog-proof"))[0]
    text = victim.read_text()
    at = text.index("\n", text.index("index ")) + 1
    victim.write_text(text[:at] + ("B" if text[at] == "A" else "A") + text[at + 1 :])
    code, out, _ = run("audit", "verify", "--bundle", str(bundle), "--public-key", pem)
    assert code == 1 and victim.name in out
    code, _, err = run("audit", "verify", "--bundle", str(bundle))
    assert code == 2 and "--public-key" in err


def test_verify_require_anchored_and_reset_from_the_cli(governed: Path) -> None:
    audit, ids = str(governed / "audit"), str(governed / "ids")
    code, out, _ = run("audit", "verify", "--audit", audit, "--identities", ids, "--require-anchored", "--json")
    report = json.loads(out)
    assert code == 0 and report["unanchored"] == 0 and report["anchored_size"] == report["last_seq"]
    code, _, err = run("audit", "reset", "--audit", audit, "--identities", ids)
    assert code == 2 and "--reason" in err
    code, out, err = run("audit", "reset", "--audit", audit, "--identities", ids, "--reason", "test reset")
    assert code == 0 and "new trail" in out and "replaced-" in out, err
    code, out, _ = run("audit", "query", "--audit", audit, "--type", "reset")
    assert json.loads(out)["details"]["reason"] == "test reset"
    code, out, _ = run("audit", "verify", "--audit", audit, "--identities", ids)
    assert code == 0, out


def test_witness_public_key_and_bad_witness_arguments(tmp_path: Path) -> None:
    code, out, _ = run("witness", "public-key", "--state", str(tmp_path / "w"))
    assert code == 0 and out.count("+") >= 2
    code, _, err = run("audit", "verify", "--audit", str(tmp_path), "--witness", "not-a-key")
    assert code == 2 and err.startswith("error: witness") and err.count("\n") == 1
    code, _, err = run("audit", "verify", "--audit", str(tmp_path), "--min-witnesses", "1")
    assert code == 2 and "--min-witnesses" in err


def test_query_action_follows_policy_normalisation(tmp_path: Path) -> None:
    """A reviewer queries for what a rule names: ``Delete:*`` (as a policy may spell it) finds the calls the
    rule ``delete:*`` denied, whatever case or width the agent used. Before, the query compared raw text, so
    ``--action Delete:*`` found nothing and a look-alike spelling hid the calls from the search."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "cs.yaml").write_text(POLICY)
    with Governor(
        policy_path=tmp_path / "policies", audit_path=tmp_path / "audit", identity_path=tmp_path / "ids"
    ) as gov:
        agent = gov.agent("cs")
        for action in ("delete:users", "DELETE:Accounts ", "\uff44elete:logs", "read:users"):
            assert not agent.check(action).allowed or action == "read:users"
    audit = str(tmp_path / "audit")
    found = {}
    for pattern in ("Delete:*", "delete:*", "\uff24ELETE:*", " delete:USERS"):
        code, out, _ = run("audit", "query", "--audit", audit, "--type", "policy_decision", "--action", pattern)
        assert code == 0
        found[pattern] = sorted(json.loads(line)["action"] for line in out.splitlines())
    deletes = sorted(["delete:users", "DELETE:Accounts ", "\uff44elete:logs"])
    assert found["Delete:*"] == found["delete:*"] == found["\uff24ELETE:*"] == deletes
    assert found[" delete:USERS"] == ["delete:users"]
    # every entry the query finds is one the policy's own matcher (the same implementation) denies
    assert all(json.loads(line)["decision"]["outcome"] == "deny" for line in out.splitlines())
