"""An agent process waits for approval; a reviewer approves from another process with the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner, Result

from claw_governance.cli import build_cli
from claw_governance.model import EscalationStatus
from claw_governance.state import SQLiteStateStore

POLICY = """\
agent: bot
permissions:
  escalate:
    - action: refund
      condition: amount > 500
      timeout: 10m
"""

AGENT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from claw_governance import Governor
    root = Path(sys.argv[1])

    def refund(ctx):
        with open(root / "runs.txt", "a") as fh:
            fh.write(f"refunded {ctx['amount']}\\n")
        return "refunded"

    with Governor(root / "policies", root / "audit-agent", root / "identities", load_entry_points=False) as gov:
        agent = gov.agent("bot")
        r = agent.execute("refund", {"orderId": "A-7", "amount": 900}, refund, wait_for_approval=60)
        again = agent.execute("refund", {"orderId": "A-7", "amount": 900}, refund)
        print(json.dumps({"success": r.success, "output": r.output, "reason": r.decision.reason,
                          "escalation_id": r.escalation_id, "again": again.decision.outcome.value}))
""")


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from claw_governance.cli import main; main()",
            *args,
            "--policies",
            str(tmp_path / "policies"),
            "--audit",
            str(tmp_path / "audit-cli"),
            "--identities",
            str(tmp_path / "identities"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_for_pending(tmp_path: Path, agent: subprocess.Popen[str]) -> str:
    db = tmp_path / "identities" / ".state" / "state.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert agent.poll() is None, agent.communicate()
        if db.exists():
            store = SQLiteStateStore(db)
            try:
                pending = store.list_escalations(EscalationStatus.PENDING)
            finally:
                store.close()
            if pending:
                return pending[0].id
        time.sleep(0.05)
    raise AssertionError("the agent never opened an escalation")


def test_agent_waits_reviewer_approves_with_cli_tool_runs_once(
    tmp_path: Path, write_policy: Callable[..., Path]
) -> None:
    write_policy(POLICY)
    agent = subprocess.Popen(
        [sys.executable, "-c", AGENT, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        escalation_id = wait_for_pending(tmp_path, agent)
        assert not (tmp_path / "runs.txt").exists()  # nothing ran while waiting

        shown = cli(tmp_path, "escalations", "list", "--json")
        assert shown.returncode == 0, shown.stderr
        (listed,) = json.loads(shown.stdout)
        assert listed["id"] == escalation_id and listed["context"]["amount"] == 900

        added = cli(tmp_path, "reviewer", "add", "alice@example.com", "--json")
        assert added.returncode == 0, added.stderr
        token = json.loads(added.stdout)["token"]
        approved = cli(
            tmp_path, "escalations", "approve", escalation_id, "--token", token, "--notes", "customer verified"
        )
        assert approved.returncode == 0, approved.stderr
        assert f"approved {escalation_id}" in approved.stdout

        out, err = agent.communicate(timeout=60)
        assert agent.returncode == 0, err
    finally:
        if agent.poll() is None:
            agent.kill()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["success"] and result["output"] == "refunded" and result["escalation_id"] == escalation_id
    assert "Approved by a human" in result["reason"]
    assert result["again"] == "escalate"  # the grant was used up
    assert (tmp_path / "runs.txt").read_text().splitlines() == ["refunded 900"]

    assert invoke(tmp_path, "reviewer", "add", "bob").exit_code == 0
    twice = invoke(tmp_path, "escalations", "deny", escalation_id, "--resolver", "bob", "--notes", "too late")
    assert twice.exit_code != 0 and f"error: escalation {escalation_id} is already approved" in twice.output


def invoke(tmp_path: Path, *args: str) -> Result:
    """The CLI in this process (same code path as `claw-gov`, without a process start)."""
    return CliRunner().invoke(
        build_cli(),
        [
            *args,
            "--policies",
            str(tmp_path / "policies"),
            "--audit",
            str(tmp_path / "audit-cli"),
            "--identities",
            str(tmp_path / "identities"),
        ],
    )


def test_cli_deny_show_list_and_errors(tmp_path: Path, write_policy: Callable[..., Path]) -> None:
    write_policy(POLICY)
    from claw_governance import Governor

    with Governor(
        tmp_path / "policies", tmp_path / "audit-agent", tmp_path / "identities", load_entry_points=False
    ) as gov:
        escalation_id = gov.agent("bot").check("refund", {"amount": 501, "ssn": "078-05-1120"}).escalation_id
    assert escalation_id
    for name in ("alice", "bob"):
        assert invoke(tmp_path, "reviewer", "add", name).exit_code == 0
    shown = invoke(tmp_path, "escalations", "show", escalation_id)
    assert shown.exit_code == 0 and "status:      pending" in shown.output and "078-05-1120" not in shown.output
    listed = invoke(tmp_path, "escalations", "list")
    assert listed.exit_code == 0 and escalation_id in listed.output
    no_notes = invoke(tmp_path, "escalations", "approve", escalation_id, "--resolver", "alice")
    assert no_notes.exit_code != 0 and "--notes" in no_notes.output
    blank = invoke(tmp_path, "escalations", "approve", escalation_id, "--resolver", "alice", "--notes", " ")
    assert blank.exit_code != 0 and "error: --notes must say why" in blank.output
    denied = invoke(tmp_path, "escalations", "deny", escalation_id, "--resolver", "bob", "--notes", "no", "--json")
    assert denied.exit_code == 0, denied.output
    body = json.loads(denied.output)
    assert body["status"] == "denied" and body["resolver"] == "bob" and "078-05-1120" not in denied.output
    assert "no pending escalations" in invoke(tmp_path, "escalations", "list").output
    assert escalation_id in invoke(tmp_path, "escalations", "list", "--status", "denied").output
    unknown = invoke(tmp_path, "escalations", "show", "f" * 32)
    assert unknown.exit_code != 0 and unknown.output.strip() == f"error: no escalation with id {'f' * 32!r}"
    assert unknown.exception is None or isinstance(unknown.exception, SystemExit)
