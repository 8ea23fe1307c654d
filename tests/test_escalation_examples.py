"""The escalation and multi-agent examples run offline and show what they claim."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_example


def test_escalation_workflow(tmp_path: Path) -> None:
    out = run_example("escalation_workflow.py", tmp_path)
    assert "'card_number': '[REDACTED]'" in out
    assert "retried: allow -> refunded 599.99" in out
    assert "other arguments: escalate" in out and "retried again: escalate" in out
    assert "[reviewer process] $ claw-gov escalations approve" in out and "-> allow: refunded 750.0" in out
    assert "denied by bob@example.com" in out
    assert "2s timeout: deny" in out and "expired" in out
    assert "refunds issued: [599.99, 750.0]" in out
    assert (tmp_path / "escalation-output" / "identities" / ".state" / "state.db").is_file()


def test_multi_agent(tmp_path: Path) -> None:
    out = run_example("multi_agent.py", tmp_path)
    outcomes = {"allow", "deny", "escalate"}
    lines = {w[0]: w[1:] for w in (line.split() for line in out.splitlines()) if len(w) == 4 and set(w[1:]) <= outcomes}
    assert lines["read:customer_data"] == ["allow", "allow", "deny"]
    assert lines["deploy:production"] == ["deny", "deny", "escalate"]
    assert lines["refund_requests"] == ["escalate", "deny", "deny"]
    assert "the same call replayed: Replayed signature" in out
    assert "arguments changed after signing: Invalid signature" in out
    assert "analyst-agent trust after three bad signatures: 70" in out
    assert "below the minimum 60" in out
    assert "at 0 the identity is revoked: True (trust score reached 0)" in out
    assert "reinstated by a human at 75: read:metrics -> allow" in out
    assert "key files are 0600 and encrypted: 0o600, True" in out
    assert "('ops-agent', 'revoked'), ('ops-agent', 'reinstated')" in out
