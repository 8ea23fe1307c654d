"""CLI conventions: `check` is side-effect free, --json everywhere, every lint error at once, quiet closed pipes,
one-line port errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import run

from claw_governance import Governor

CLAW = str(Path(sys.executable).with_name("claw-gov"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    assert run("init", cwd=tmp_path).returncode == 0
    return tmp_path


def test_check_is_side_effect_free_by_default(project: Path) -> None:
    for _ in range(2):
        esc = run(
            "check",
            "--agent",
            "customer-service-agent",
            "--action",
            "refund_requests",
            "--context",
            '{"amount": 900}',
            "--json",
            cwd=project,
        )
        assert esc.returncode == 1
        payload = json.loads(esc.stdout)
        assert payload["outcome"] == "escalate" and payload["escalation_id"] is None
        assert payload["recorded"] is False
    unknown = run("check", "--agent", "nobody", "--action", "read:customer_data", cwd=project)
    assert unknown.returncode == 1 and "(policy only; --record runs the full pipeline)" in unknown.stdout
    assert not (project / "identities").exists() and not (project / "logs").exists()  # nothing created

    recorded = run(
        "check",
        "--record",
        "--agent",
        "customer-service-agent",
        "--action",
        "refund_requests",
        "--context",
        '{"amount": 900}',
        "--json",
        cwd=project,
    )
    assert json.loads(recorded.stdout)["escalation_id"] and (project / "identities").exists()


def test_check_never_consumes_a_grant(project: Path) -> None:
    paths = {
        "policy_path": project / "policies",
        "audit_path": project / "logs" / "audit",
        "identity_path": project / "identities",
    }
    with Governor(**paths) as gov:
        agent = gov.agent("customer-service-agent")
        held = agent.check("refund_requests", {"amount": 900})
        gov.resolve_escalation(held.escalation_id or "", "approved", notes="ok", resolver=gov.reviewers.ensure("alice"))
    entries_before = (project / "logs" / "audit").stat().st_mtime_ns
    for _ in range(2):
        run(
            "check",
            "--agent",
            "customer-service-agent",
            "--action",
            "refund_requests",
            "--context",
            '{"amount": 900}',
            cwd=project,
        )
    with Governor(**paths) as gov:
        assert gov.agent("customer-service-agent").check("refund_requests", {"amount": 900}).allowed  # still there
    assert entries_before


def test_policy_lint_reports_every_error_and_json(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "bad.yaml").write_text(
        "agent: a\n"  # 1
        "permissions:\n"  # 2
        "  allow: [read:x]\n"  # 3
        "  escalate:\n"  # 4
        "    - action: refund\n"  # 5
        "      condition: 'amount >'\n"  # 6  bad expression
        "    - action: pay\n"  # 7
        "      timeout: forever\n"  # 8  bad duration
        "  deny: [delete:*]\n"  # 9
        "trust: {min_score: 500}\n"  # 10 out of range
        "colour: blue\n"
    )  # 11 unknown key
    result = run("policy", "lint", "p", "--json", cwd=tmp_path)
    assert result.returncode == 1
    payload = json.loads(result.stdout)
    lines = sorted(f["line"] for f in payload["findings"] if f["level"] == "error")
    assert lines == [6, 8, 10, 11], payload
    assert payload["errors"] == 4
    assert all(f["file"].endswith("bad.yaml") for f in payload["findings"] if f["level"] == "error")
    text = run("policy", "lint", "p", cwd=tmp_path)
    assert [line.split(":")[1] for line in text.stderr.strip().splitlines()] == ["6", "8", "10", "11"]


def test_policy_test_json(project: Path) -> None:
    result = run("policy", "test", "policies", "policies/policies_test.yaml", "--json", cwd=project)
    payload = json.loads(result.stdout)
    assert result.returncode == 0 and payload["failed"] == 0 and payload["passed"] == payload["total"] > 0
    assert {"name", "where", "ok", "expected", "actual", "rule", "reason"} <= set(payload["cases"][0])


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    with Governor(policy_path=None, audit_path=tmp_path / "audit", identity_path=tmp_path / "ids") as gov:
        agent = gov.agent("a")
        for i in range(2000):
            agent.check("x:y", {"i": i})
    proc = subprocess.Popen(
        [CLAW, "audit", "query", "--audit", str(tmp_path / "audit"), "--identities", str(tmp_path / "ids")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert err == "", err


def test_serve_reports_a_port_in_use_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text("agent: a\npermissions: {allow: [x]}\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = {**os.environ, "CLAW_BRIDGE_TOKEN": "9f8e7d6c5b4a39281706f5e4d3c2b1a0ff"}  # strong enough for serve
        done = subprocess.run(
            [
                CLAW,
                "serve",
                "--port",
                str(port),
                "--policies",
                str(tmp_path / "policies"),
                "--audit",
                str(tmp_path / "audit"),
                "--identities",
                str(tmp_path / "ids"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use (another `claw-gov serve`? pick one with --port)"
    ]


def test_shell_completion_as_documented() -> None:
    env = {**os.environ, "_CLAW_GOV_COMPLETE": "bash_source"}
    script = subprocess.run([CLAW], capture_output=True, text=True, timeout=60, env=env)
    assert script.returncode == 0 and "_claw_gov_completion" in script.stdout
    env = {**os.environ, "_CLAW_GOV_COMPLETE": "bash_complete", "COMP_WORDS": "claw-gov pol", "COMP_CWORD": "1"}
    words = subprocess.run([CLAW], capture_output=True, text=True, timeout=60, env=env)
    assert "plain,policy" in words.stdout.splitlines()
