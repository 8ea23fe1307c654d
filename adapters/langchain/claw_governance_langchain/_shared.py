"""What GovernedTool and GovernanceCallbackHandler share: actions, refusal texts, run claims, outcomes."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, Literal
from uuid import UUID

from claw_governance import CallOutcome, Decision, EscalationRequired, Governor, Outcome, ToolCallDenied
from langchain_core.messages import ToolMessage
from langchain_core.messages.tool import ToolCall as LCToolCall

FRAMEWORK = "langchain"
ACTION_PREFIX = "tool:"
DEFAULT_AGENT_ENV = "CLAW_AGENT_ID"
DEFAULT_AGENT_ID = "langchain-agent"
AGENT_METADATA_KEY = "claw_agent_id"
LC_AGENT_NAME_KEY = "lc_agent_name"  # what create_agent(name=...) puts in every run's metadata

#: ``action=`` of a GovernedTool or handler: a fixed action name, or a function of the LangChain tool call
#: (``{"name", "args", "id", "type": "tool_call"}``) returning one. ``None``: ``"tool:<name>"``.
ActionSpec = str | Callable[[LCToolCall], str] | None
RefusalMode = Literal["message", "raise"]

# A tool run is governed once per governor, even when several handlers see it (an explicit handler next to
# the process-wide one): the first handler to see a run claims it; the others leave it alone.
# Keys: (id(governor), run_id). A GovernedTool's inner run is marked with `inner_run` instead.
_claims: dict[tuple[int, UUID], object] = {}


class InnerRun:
    """Marks the next tool run in this context as the inner run of a GovernedTool (decided already).

    Set in a ContextVar around ``inner.run``; langchain-core calls ``on_tool_start`` in that context (or a copy
    of it), so a handler recognises the inner tool's run by its name and lets it through once. A tool run
    nested inside the inner tool's body finds the marker used up and is governed as usual.
    """

    __slots__ = ("_unused", "governor_id", "name")

    def __init__(self, governor: Governor, name: str) -> None:
        self.governor_id = id(governor)
        self.name = name
        self._unused = [True]

    def take(self, governor: Governor, name: str) -> bool:
        """True (once, even across threads) if the run starting now is this GovernedTool's inner run."""
        if self.governor_id != id(governor) or self.name != name:
            return False
        try:
            return self._unused.pop()  # atomic: only one caller gets the item
        except IndexError:
            return False


inner_run: ContextVar[InnerRun | None] = ContextVar("claw_governance_langchain_inner_run", default=None)


def claim(governor: Governor, run_id: UUID, owner: object) -> bool:
    """Claim ``run_id`` for ``owner``; False if another component already governs it for ``governor``."""
    return _claims.setdefault((id(governor), run_id), owner) is owner


def release(governor: Governor, run_id: UUID) -> None:
    """Drop the claim on ``run_id`` (by whoever made it: called once the run has ended or was refused)."""
    _claims.pop((id(governor), run_id), None)


def default_agent_id() -> str:
    """The agent id used when none is given: ``$CLAW_AGENT_ID``, else ``"langchain-agent"``."""
    return os.environ.get(DEFAULT_AGENT_ENV, "").strip() or DEFAULT_AGENT_ID


def resolve_action(spec: ActionSpec, tool_name: str, args: Mapping[str, Any], tool_call_id: str | None) -> str:
    """The action of one call: ``spec`` if a string, ``spec(call)`` if a function, else ``tool:<name>``."""
    if spec is None:
        return ACTION_PREFIX + tool_name
    if isinstance(spec, str):
        return spec
    action = spec(LCToolCall(name=tool_name, args=dict(args), id=tool_call_id, type="tool_call"))
    if not isinstance(action, str) or not action.strip():
        raise TypeError(f"action function for tool {tool_name!r} must return a non-empty str, not {action!r}")
    return action


def refusal_text(tool_name: str, decision: Decision) -> str:
    """What the model reads when its call did not run: the reason and, for an escalation, its id."""
    if decision.outcome is Outcome.ESCALATE:
        return (
            f"Tool '{tool_name}' was not run: it needs human approval "
            f"(escalation {decision.escalation_id}). Reason: {decision.reason}. "
            "It may be retried once a human has approved it."
        )
    return (
        f"Tool '{tool_name}' was not run: denied by governance policy. Reason: {decision.reason}. "
        "Continue without this action."
    )


def naming_hint(decision: Decision, ways: str) -> str:
    """For a call denied because its (defaulted) agent has no policy: how to name the agent; else "".

    ``ways``: the ways this adapter offers (e.g. ``"GovernanceMiddleware(agent_id=...)"``); ``$CLAW_AGENT_ID``
    is always one.
    """
    if (
        decision.outcome is not Outcome.DENY
        or decision.rule is not None
        or not decision.reason.startswith("No policy for agent")
    ):
        return ""
    return (
        f" (These calls are governed as agent {decision.call.agent_id!r}, which has no policy: name the "
        f"agent with {ways} or $CLAW_AGENT_ID, and give it a policy file with `agent: <name>`.)"
    )


def governance_info(decision: Decision) -> dict[str, Any]:
    """Machine-readable governance details attached to a refusal ToolMessage's ``response_metadata``."""
    return {
        "claw_governance": {
            "outcome": decision.outcome.value,
            "reason": decision.reason,
            "escalation_id": decision.escalation_id,
            "call_id": decision.call.call_id,
            "action": decision.call.action,
        }
    }


def refusal_error(decision: Decision) -> ToolCallDenied | EscalationRequired:
    """The exception that stands for a refused call: EscalationRequired or ToolCallDenied."""
    if decision.outcome is Outcome.ESCALATE:
        return EscalationRequired(decision.reason, decision.escalation_id, decision)
    return ToolCallDenied(decision.reason, decision)


def refusal(
    tool_name: str, decision: Decision, tool_call_id: str | None, on_deny: RefusalMode, on_escalate: RefusalMode
) -> Any:
    """Raise, or return the refusal as a tool result (a ToolMessage with status "error" for a ToolCall)."""
    mode = on_escalate if decision.outcome is Outcome.ESCALATE else on_deny
    if mode == "raise":
        raise refusal_error(decision)
    text = refusal_text(tool_name, decision)
    if tool_call_id is None:
        return text
    return ToolMessage(
        text, tool_call_id=tool_call_id, name=tool_name, status="error", response_metadata=governance_info(decision)
    )


def outcome_of(output: Any, duration_ms: float) -> CallOutcome:
    """A CallOutcome for a tool's result; a ToolMessage with status "error" (a handled error) is a failure."""
    if isinstance(output, ToolMessage):
        if output.status == "error":
            return CallOutcome(False, None, str(output.content), duration_ms)
        return CallOutcome(True, output.content, None, duration_ms)
    return CallOutcome(True, output, None, duration_ms)


def error_outcome(error: BaseException, duration_ms: float) -> CallOutcome:
    """A CallOutcome for a tool that raised."""
    return CallOutcome(False, None, f"{type(error).__name__}: {error}", duration_ms)
