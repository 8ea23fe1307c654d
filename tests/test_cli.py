"""`claw-gov` as a user runs it: real subprocesses, exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from claw_governance.cli import build_cli

CLAW_GOV = [sys.executable, "-c", "from claw_governance.cli import main; main()"]


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run(*args: str, cwd: Path) -> Ran:
    """Run claw-gov in-process (fast); test_real_process below proves the same through a subprocess."""
    env = {var: None for var in ("POLICY_PATH", "AUDIT_PATH", "IDENTITY_PATH", "STATE_PATH")}
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(build_cli(), list(args), env=env, prog_name="claw-gov")
    finally:
        os.chdir(previous)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


def test_real_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("POLICY_PATH", "AUDIT_PATH", "IDENTITY_PATH")}
    done = subprocess.run(
        [*CLAW_GOV, "check", "--agent", "a", "--action", "b", "--context", "{bad"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().startswith("error: --context is not valid JSON") and "Traceback" not in done.stderr
    done = subprocess.run([*CLAW_GOV, "init"], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0 and (tmp_path / "policies" / "policies_test.yaml").exists()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    result = run("init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "policies" / "customer-service-agent.yaml").exists()
    return tmp_path


def test_init_scaffold_lints_clean_and_passes_its_own_tests(project: Path) -> None:
    lint = run("policy", "lint", "policies", cwd=project)
    assert lint.returncode == 0 and "0 error(s), 0 warning(s)" in lint.stdout
    tested = run("policy", "test", "policies", "policies/policies_test.yaml", cwd=project)
    assert tested.returncode == 0, tested.stdout
    assert "7 of 7 cases as expected" in tested.stdout
    again = run("init", cwd=project)
    assert "kept" in again.stdout  # never overwrites without --force


def test_lint_reports_errors_with_file_and_line(project: Path) -> None:
    (project / "policies" / "broken.yaml").write_text("agent: b\npermissions:\n  allow: [x\n")
    (project / "policies" / "typo.yaml").write_text("agent: c\npermissions:\n  denny: [x]\n")
    result = run("policy", "lint", "policies", cwd=project)
    assert result.returncode == 1
    assert "policies/broken.yaml:4: error: invalid YAML" in result.stderr
    assert "policies/typo.yaml:3: error: unknown key 'denny'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_lint_warns_about_red_flags(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "wide.yaml").write_text(
        "agent: a\npermissions:\n  allow: ['*', 'delete:users']\n  deny: ['delete:*']\n"
        "  escalate: [refund]\naudit: {retention: 30}\n"
    )
    (folder / "open.yaml").write_text("agent: b\npermissions:\n  allow: ['*']\n")
    result = run("policy", "lint", "p", cwd=tmp_path)
    out = result.stdout
    assert result.returncode == 0
    assert 'p/open.yaml:3: warning: allow "*" permits every action and no deny rule restricts it' in out
    assert 'p/open.yaml:1: warning: agent "b" has no deny rules' in out
    assert "no escalate rules" in out
    assert 'p/wide.yaml:5: warning: escalate "refund" has no timeout' in out
    assert 'allow "delete:users" can never apply' in out
    assert "retention 30 days" in out
    assert run("policy", "lint", "--strict", "p", cwd=tmp_path).returncode == 1


def test_policy_test_reports_a_readable_diff(project: Path) -> None:
    cases = project / "cases_test.yaml"
    cases.write_text(
        "cases:\n  - name: deletes are fine\n    agent: customer-service-agent\n"
        "    action: delete:users\n    expect: allow\n"
    )
    result = run("policy", "test", "policies", str(cases), cwd=project)
    assert result.returncode == 1
    assert "FAIL deletes are fine" in result.stdout
    assert "- expected: allow" in result.stdout and '+ actual:   deny by rule "delete:*"' in result.stdout
    assert "0 of 1 cases as expected" in result.stdout


def test_check_prints_decision_and_exit_code(project: Path) -> None:
    ok = run("check", "--agent", "customer-service-agent", "--action", "read:customer_data", cwd=project)
    assert ok.returncode == 0 and ok.stdout.startswith("ALLOW: Allowed by allow rule")
    esc = run(
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
    assert esc.returncode == 1
    payload = json.loads(esc.stdout)
    assert payload["outcome"] == "escalate" and payload["escalation_id"]
    assert payload["rule"].endswith("customer-service-agent.yaml:21")
    dry = run("check", "--dry-run", "--agent", "x", "--action", "read:customer_data", cwd=project)
    assert dry.returncode == 1 and "default deny" in dry.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--agent", "a", "--action", "b", "--context", "{bad"],
        ["check", "--agent", "a", "--action", "b", "--context", "[1]"],
        ["check", "--agent", "a", "--action", "b", "--policies", "nowhere"],
        ["policy", "test", "policies", "policies/customer-service-agent.yaml"],
        ["policy", "lint", "nowhere"],
    ],
)
def test_bad_input_is_one_line_and_non_zero(project: Path, args: list[str]) -> None:
    result = run(*args, cwd=project)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert errors and len(errors) <= 2, result.stderr
