"""claw-governance for CrewAI: every crewai tool call identity- and policy-checked, trust-scored, audited.

    from claw_governance_crewai import enable_crewai_governance, GovernedCrewTool, governance_guardrail

    enable_crewai_governance(gov)          # global crewai tool-call hooks; or gov.enable()
    with crewai_governance(gov):           # ... or only for one block, e.g. one kickoff
        crew.kickoff()

Importing this package does not import crewai (it takes seconds): the names below are loaded on first use,
so a governor that loads the adapter through its entry point pays nothing until crewai is governed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from claw_governance_crewai.hooks import (
        CrewAIGovernance,
        crewai_governance,
        disable_crewai_governance,
        enable_crewai_governance,
        governed_kickoff,
        tool_error,
    )
    from claw_governance_crewai.models import CrewAIModelReceipts
    from claw_governance_crewai.task import (
        GovernanceGuardrail,
        governance_guardrail,
        task_action_name,
        task_audit_callback,
    )
    from claw_governance_crewai.tool import GovernedCrewTool, govern_crew_tools

_EXPORTS = {
    "CrewAIGovernance": "hooks",
    "crewai_governance": "hooks",
    "disable_crewai_governance": "hooks",
    "enable_crewai_governance": "hooks",
    "governed_kickoff": "hooks",
    "tool_error": "hooks",
    "CrewAIModelReceipts": "models",
    "GovernanceGuardrail": "task",
    "governance_guardrail": "task",
    "task_action_name": "task",
    "task_audit_callback": "task",
    "GovernedCrewTool": "tool",
    "govern_crew_tools": "tool",
}

__version__ = "0.1.0"
__all__ = [
    "CrewAIGovernance",
    "CrewAIModelReceipts",
    "GovernanceGuardrail",
    "GovernedCrewTool",
    "crewai_governance",
    "disable_crewai_governance",
    "enable_crewai_governance",
    "govern_crew_tools",
    "governance_guardrail",
    "governed_kickoff",
    "task_action_name",
    "task_audit_callback",
    "tool_error",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'claw_governance_crewai' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"claw_governance_crewai.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
