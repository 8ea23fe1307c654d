"""Global and scoped crewai tool-call hooks on both tool paths, against real crews (crewai_scenarios.py)."""

from __future__ import annotations

from typing import Any

from crewai_checks import entries, outcome, outcomes


def test_allowed_tool_runs_and_is_audited(hooks: dict[str, Any]) -> None:
    r = hooks["allowed"]
    assert r["error"] is None and r["output"] == "all done"
    assert r["ran"] == ["lookup"]
    assert "LOOKUP-RESULT for tides" in r["seen"]  # the model got the real tool result
    assert outcomes(r, "tool:lookup") == ["allow"]
    [action] = entries(r, "agent_action", "tool:lookup")
    assert action["details"]["success"] is True and action["details"]["framework"] == "crewai"
    [decision] = [
        e
        for e in entries(r, "policy_decision", "tool:lookup")
        if e["details"]["call_id"] == action["details"]["call_id"]
    ]
    assert decision["context"] == {"query": "tides"}  # the arguments live in the decision entry
    assert action["context"] is None
    assert r["trust"] == 100  # +1, but 100 is the ceiling


def test_denied_tool_never_runs_and_the_model_learns_why(hooks: dict[str, Any]) -> None:
    r = hooks["denied"]
    assert "delete_records" not in r["ran"]
    assert r["effects"] == []  # the side effect of the tool body never happened
    assert "denied by governance" in r["seen"]
    assert 'deny rule "tool:delete_*"' in r["seen"]  # our reason, naming the rule ...
    assert "Tool execution blocked by hook" not in r["seen"]  # ... instead of crewai's generic text
    assert outcomes(r, "tool:delete_records") == ["deny"]
    assert entries(r, "agent_action", "tool:delete_records") == []
    assert r["ran"] == ["lookup"]  # the crew went on with the next, allowed call


def test_escalation_blocks_until_approved_then_allows_once(hooks: dict[str, Any]) -> None:
    first, approved, again = (hooks["escalated"][k] for k in ("first", "after_approval", "grant_used_up"))
    assert first["ran"] == [] and first["effects"] == []
    assert len(first["pending"]) == 1
    assert f"held for human approval (escalation {first['pending'][0]})" in first["seen"]
    assert "Outbound e-mail needs a human" in first["seen"]
    assert outcomes(first, "tool:send_email") == ["escalate"]
    assert entries(first, "escalation", "tool:send_email")

    assert approved["ran"] == ["send_email"] and "SENT to bob@example.com" in approved["seen"]
    assert outcomes(approved, "tool:send_email") == ["escalate", "allow"]
    assert entries(approved, "escalation_resolved", "tool:send_email")

    assert again["ran"] == ["send_email"]  # the approval was a one-shot grant
    assert len(again["pending"]) == 1 and "held for human approval" in again["seen"]


def test_escalation_can_wait_for_a_human_inside_the_hook(hooks: dict[str, Any]) -> None:
    r = hooks["escalation_wait"]
    assert r["ran"] == ["send_email"] and r["pending"] == []
    assert "SENT to carol@example.com" in r["seen"]
    assert outcomes(r, "tool:send_email") == ["escalate", "allow"]


def test_trust_falls_when_a_tool_raises(hooks: dict[str, Any]) -> None:
    r = hooks["trust"]
    assert r["trust_before"] == 100 and r["trust"] == 95
    assert "flaky" in r["ran"]
    [action] = entries(r, "agent_action", "tool:flaky")
    assert action["details"]["success"] is False
    assert "backend unavailable" in action["details"]["error"]
    [change] = entries(r, "trust_change")
    assert change["details"]["delta"] == -5


def test_error_in_our_hook_blocks_the_call(hooks: dict[str, Any]) -> None:
    r = hooks["hook_error"]
    assert r["ran"] == [] and r["effects"] == []  # neither the harmless nor the dangerous tool ran
    assert "governance error (KeyError" in r["seen"] and "fail closed" in r["seen"]
    refusals = entries(r, "policy_decision")
    assert [outcome(e) for e in refusals] == ["deny", "deny"]
    assert {e["decision"]["stage"] for e in refusals} == {"adapter"}


def test_error_in_the_governor_blocks_the_call(hooks: dict[str, Any]) -> None:
    r = hooks["governor_error"]
    assert r["ran"] == []
    assert "governance error (RuntimeError: governor exploded)" in r["seen"]
    assert [outcome(e) for e in entries(r, "policy_decision", "tool:lookup")] == ["deny"]


def test_error_in_a_policy_plugin_blocks_the_call(hooks: dict[str, Any]) -> None:
    r = hooks["plugin_error"]
    assert r["ran"] == []
    assert "denied by governance" in r["seen"] and "Governance error in claw_decide" in r["seen"]
    assert "plugin bug" not in r["seen"]  # an exception's text can quote arguments: the model never sees it
    assert outcomes(r, "tool:lookup") == ["deny"]


def test_scoped_governance_covers_one_kickoff_only(hooks: dict[str, Any]) -> None:
    scoped = hooks["scoped"]
    assert scoped["global_hooks_unchanged"] is True
    for inside in (scoped["governed_kickoff"], scoped["with_block"]):
        assert "denied by governance" in inside["seen"]
    assert scoped["with_block"]["effects"] == []
    after = scoped["after_block"]
    assert after["effects"] == ["deleted-c"]  # no governance after the block: the tool ran
    assert outcomes(after, "tool:delete_records") == ["deny", "deny"]  # and nothing new was decided


def test_data_flow_labels_deny_mailing_looked_up_data_outside(hooks: dict[str, Any]) -> None:
    r = hooks["exfiltration"]
    assert r["ran"] == ["lookup", "send_email"]  # the lookup, then only the mail to the team
    assert [e for e in r["effects"]] == ["mail-2"]
    assert outcomes(r, "tool:send_email") == ["deny", "allow"]
    assert '"pii" in session.labels' in r["seen"]
