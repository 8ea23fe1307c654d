"""Task-level governance: a guardrail that policy-checks a task's output before the crew accepts it, and a
task callback that audits each completed task.

The guardrail's action is ``task:<name>`` (the task's ``name``, slugified, or its description's first words)
and its arguments are ``{"output": <raw text>, "agent": <role>, "task": <name>}``, so a policy can allow,
deny or escalate a task's result like any tool call, with conditions on the output.

crewai calls a guardrail as ``fn(TaskOutput) -> (ok, result_or_feedback)``; on ``(False, text)`` it runs
the agent again with ``text`` as feedback, up to ``guardrail_max_retries`` times, then fails the task.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from claw_governance import AuditEvent, Decision, Governor, Outcome, ToolCall

from claw_governance_crewai._util import (
    FRAMEWORK,
    AgentIdSource,
    error_message,
    resolve_agent_id,
    slugify,
)

log = logging.getLogger("claw_governance.crewai")


def task_action_name(output: Any, name: str | None = None) -> str:
    """``task:<name>`` for a ``TaskOutput``: ``name``, else the task's name or description, slugified."""
    label = name or getattr(output, "name", None) or getattr(output, "description", None) or "task"
    slug = slugify(str(label))[:64].strip("-") or "task"
    return f"task:{slug}"


class GovernanceGuardrail:
    """A task guardrail (``Task(guardrail=...)``) that asks the governor before the crew accepts an output.

    ALLOW accepts the output. DENY returns the reason as feedback, so crewai lets the agent try again until
    its retries run out. ESCALATE opens an escalation and holds the task for ``hold_seconds`` (default 0:
    not at all) waiting for a human; approved -> accepted; denied -> refused; no answer yet -> refused with
    the escalation id as feedback, and on crewai's next retry the same escalation is waited for again
    (while the output is unchanged), so the task is held until a human decides or the retries run out.
    Any error of the governor or of this guardrail refuses the output (fail closed).

    ``agent_id``: ``None`` -> the task's agent role, slugified; a string; or a function of the ``TaskOutput``.
    ``task_name``: the ``<name>`` in ``task:<name>``; default from the ``TaskOutput``.
    """

    def __init__(
        self,
        governor: Governor,
        *,
        agent_id: AgentIdSource = None,
        task_name: str | None = None,
        hold_seconds: float = 0.0,
    ) -> None:
        self.governor = governor
        self.agent_id = agent_id
        self.task_name = task_name
        self.hold_seconds = hold_seconds
        self.decisions: list[Decision] = []  # every decision this guardrail made, oldest first
        self._pending: Decision | None = None
        self._lock = threading.Lock()

    def __call__(self, output: Any):  # type: ignore[no-untyped-def]  # crewai rejects a string annotation
        """Decide on one ``TaskOutput``: ``(True, output)`` to accept it, ``(False, feedback)`` to refuse."""
        try:
            decision = self._decide(output)
        except Exception as exc:
            log.error("claw-governance task guardrail failed, output refused: %r", exc)
            return (False, error_message(exc, "Task output"))
        if decision.allowed is True:
            return (True, output)
        if decision.outcome is Outcome.ESCALATE:
            return (
                False,
                f"Task output held for human approval (escalation {decision.escalation_id}): {decision.reason}",
            )
        return (False, f"Task output denied by governance: {decision.reason}")

    def _decide(self, output: Any) -> Decision:
        governor = self.governor
        agent_id = resolve_agent_id(self.agent_id, output, getattr(output, "agent", None))
        governor.agent(agent_id, framework=FRAMEWORK)
        action = task_action_name(output, self.task_name)
        args = {
            "output": str(getattr(output, "raw", "")),
            "agent": getattr(output, "agent", None),
            "task": getattr(output, "name", None) or getattr(output, "description", None),
        }
        with self._lock:
            pending = self._pending
        if pending is not None and _same_call(pending.call, agent_id, action, args):
            decision = pending  # crewai retried with the same output: keep waiting for the same human
        else:
            call = governor.make_call(agent_id, action, args, framework=FRAMEWORK, metadata={"kind": "task_output"})
            decision = governor.before_call(call)
        if decision.outcome is Outcome.ESCALATE and self.hold_seconds > 0:
            held = decision
            decision = governor.wait_for_approval(held, self.hold_seconds)
            if decision.outcome is Outcome.DENY and _still_open(governor, held.escalation_id):
                decision = held  # no answer yet: the human may still decide on crewai's next retry
        with self._lock:
            self._pending = decision if decision.outcome is Outcome.ESCALATE else None
            self.decisions.append(decision)
        return decision


def _same_call(call: ToolCall, agent_id: str, action: str, args: dict[str, Any]) -> bool:
    return call.agent_id == agent_id and call.action == action and dict(call.args) == args


def _still_open(governor: Governor, escalation_id: str | None) -> bool:
    return escalation_id is not None and any(e.id == escalation_id for e in governor.escalations.pending())


def governance_guardrail(
    governor: Governor, *, agent_id: AgentIdSource = None, task_name: str | None = None, hold_seconds: float = 0.0
) -> Callable[[Any], Any]:
    """A guardrail for ``Task(guardrail=...)`` that policy-checks the output as action ``task:<name>``.

    Returns a plain function (crewai reads a guardrail's source code for its events, so it must be a
    function, not a callable object); its ``.gate`` attribute is the :class:`GovernanceGuardrail` doing the
    work (``.gate.decisions`` lists every decision). One guardrail per task: it remembers that task's open
    escalation.
    """
    gate = GovernanceGuardrail(governor, agent_id=agent_id, task_name=task_name, hold_seconds=hold_seconds)

    def claw_governance_guardrail(output):  # type: ignore[no-untyped-def]  # crewai rejects string annotations
        return gate(output)

    claw_governance_guardrail.gate = gate  # type: ignore[attr-defined]
    return claw_governance_guardrail


def task_audit_callback(
    governor: Governor, *, agent_id: AgentIdSource = None, then: Callable[[Any], Any] | None = None
) -> Callable[[Any], None]:
    """A ``task_callback`` (Crew or Task) that writes an ``agent_action`` audit entry per completed task.

    The entry has the action ``task:<name>``, the task's output (redacted like every audit context) and
    ``details.event == "task_completed"``. ``then`` is called afterwards with the same ``TaskOutput`` (to
    keep a callback you already had). An audit failure is logged, never raised: the task already ran.
    """

    def claw_task_audit(output: Any) -> None:
        try:
            agent = resolve_agent_id(agent_id, output, getattr(output, "agent", None))
            failures = getattr(output, "tool_failures", None) or []
            governor.record(
                AuditEvent(
                    "agent_action",
                    agent,
                    task_action_name(output),
                    context={
                        "output": str(getattr(output, "raw", "")),
                        "description": getattr(output, "description", None),
                    },
                    policy_hash=getattr(getattr(governor, "policy", None), "hash", None),
                    details={
                        "event": "task_completed",
                        "framework": FRAMEWORK,
                        "task": getattr(output, "name", None),
                        "agent_role": getattr(output, "agent", None),
                        "tool_failures": len(failures),
                        "success": not failures,
                    },
                )
            )
        except Exception as exc:
            log.error("claw-governance could not audit a completed crewai task: %r", exc)
        if then is not None:
            then(output)

    return claw_task_audit
