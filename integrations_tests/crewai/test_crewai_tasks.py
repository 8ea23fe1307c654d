"""Task-level governance: the output guardrail (action ``task:<name>``) and the audit task callback."""

from __future__ import annotations

from typing import Any

import pytest
from crewai_checks import entries, outcomes


@pytest.fixture
def tasks(crew_results: dict[str, Any]) -> dict[str, Any]:
    return crew_results["tasks"]  # type: ignore[no-any-return]


def test_allowed_output_is_accepted_and_completion_audited(tasks: dict[str, Any]) -> None:
    r = tasks["allowed"]
    assert r["error"] is None and r["output"] == "The summary."
    assert outcomes(r, "task:summary") == ["allow"]
    [done] = entries(r, "agent_action", "task:summary")
    assert done["details"]["event"] == "task_completed"
    assert done["context"]["output"] == "The summary."


def test_denied_output_fails_the_task_after_the_retries(tasks: dict[str, Any]) -> None:
    r = tasks["denied"]
    assert r["output"] is None
    assert "Task failed guardrail validation after 1 retries" in r["error"]
    assert 'deny rule "task:publish*"' in r["error"]
    assert "denied by governance" in r["seen"]  # the retry told the agent why
    assert outcomes(r, "task:publish") == ["deny", "deny"]
    assert entries(r, "agent_action") == []  # never completed, so no completion entry


def test_escalated_output_is_held_until_a_human_approves(tasks: dict[str, Any]) -> None:
    r = tasks["escalated_approved"]
    assert r["error"] is None and r["output"] == "The final report."
    assert r["llm_calls"] == 1  # held, not retried
    assert outcomes(r, "task:final-report") == ["escalate", "allow"]
    assert entries(r, "escalation_resolved", "task:final-report")
    assert entries(r, "agent_action", "task:final-report")[0]["details"]["event"] == "task_completed"


def test_escalated_output_without_answer_fails_when_retries_run_out(tasks: dict[str, Any]) -> None:
    r = tasks["escalated_unanswered"]
    assert "Task failed guardrail validation after 2 retries" in r["error"]
    assert "held for human approval" in r["error"]
    assert r["outcomes"] == ["escalate", "escalate", "escalate"]
    assert len(r["pending"]) == 1  # every retry waited on the same escalation
    assert len(entries(r, "escalation", "task:final-report")) == 1


def test_escalated_output_denied_by_a_human_fails_the_task(tasks: dict[str, Any]) -> None:
    r = tasks["escalated_denied"]
    assert r["output"] is None and "denied" in r["error"]
    assert entries(r, "escalation_resolved", "task:final-report")[0]["details"]["status"] == "denied"
