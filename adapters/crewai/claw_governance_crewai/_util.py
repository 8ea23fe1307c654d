"""Small helpers shared by the adapter's parts. Nothing here imports crewai at module level."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from claw_governance import Decision, Outcome

FRAMEWORK = "crewai"
DEFAULT_AGENT_ID = "crewai-agent"

_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    """``"Senior Researcher"`` -> ``"senior-researcher"``: lower case; other characters become ``-``."""
    slug = _SLUG.sub("-", str(text).strip().lower()).strip("-")
    return slug


def jsonable(value: Any) -> Any:
    """A value the audit trail can store: plain JSON types pass, anything else becomes its ``repr``."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return repr(value)


def blocked_message(decision: Decision, subject: str = "Tool call") -> str:
    """The text the model reads instead of a tool result when governance stops the call."""
    if decision.outcome is Outcome.ESCALATE:
        return (
            f"{subject} held for human approval (escalation {decision.escalation_id}); it did not run. "
            f"Reason: {decision.reason}. Do not retry it until a human has approved it."
        )
    return f"{subject} denied by governance; it did not run. Reason: {decision.reason}"


def error_message(error: BaseException, subject: str = "Tool call") -> str:
    """The text the model reads when governance itself failed (the call is blocked: fail closed)."""
    return f"{subject} blocked: governance error ({type(error).__name__}: {error}); it did not run (fail closed)."


AgentIdSource = str | Callable[[Any], str] | None
"""How the adapter names the acting agent: a fixed id, a function of the crewai context, or ``None``
(the crewai agent's role, slugified)."""


def resolve_agent_id(source: AgentIdSource, context: Any, role: str | None) -> str:
    """Apply an ``agent_id=`` setting to one crewai context. Raises ``ValueError`` if no id results."""
    if callable(source):
        value = source(context)
    elif source is not None:
        value = source
    else:
        if not role:
            raise ValueError("the crewai call carries no agent role; pass agent_id= to name the agent")
        value = slugify(role)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"agent id must be a non-empty string, not {value!r}")
    return value
