"""LangChain adapter for claw-governance.

Four ways to govern LangChain tool calls. For a LangChain v1 agent, the middleware::

    from claw_governance_langchain import GovernanceMiddleware
    agent = create_agent(model, tools, middleware=[GovernanceMiddleware(governor=gov, agent_id="research-agent")])

and, for any tool anywhere, from most to least explicit::

    from claw_governance_langchain import GovernedTool, GovernanceCallbackHandler, govern_tools

    tools = govern_tools([search, send_email], governor=gov, agent_id="research-agent")   # 1. wrap tools
    agent.invoke(x, config={"callbacks": [GovernanceCallbackHandler(gov, "research-agent")]})  # 2. callbacks
    gov.enable()                                   # 3. every LangChain tool run in the process

A GovernedTool shows the model exactly the inner tool (same name, description and schema) and returns a
refusal as an error ToolMessage the model can read; the callback handler and the process-wide path stop a
refused call by raising ``ToolCallDenied`` / ``EscalationRequired``.

Importing this package does not import langchain-core: the names below load on first use, so a governor
that loads the adapter through its entry point pays nothing until LangChain is governed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from claw_governance_langchain.callbacks import GovernanceCallbackHandler
    from claw_governance_langchain.middleware import GovernanceMiddleware
    from claw_governance_langchain.models import ModelCallBlocked, ModelReceiptHandler
    from claw_governance_langchain.process_wide import (
        active_handler,
        disable_langchain_governance,
        enable_langchain_governance,
    )
    from claw_governance_langchain.tool import GovernedTool, govern_tools

_EXPORTS = {
    "GovernanceCallbackHandler": "callbacks",
    "ModelCallBlocked": "models",
    "ModelReceiptHandler": "models",
    "GovernanceMiddleware": "middleware",
    "active_handler": "process_wide",
    "disable_langchain_governance": "process_wide",
    "enable_langchain_governance": "process_wide",
    "GovernedTool": "tool",
    "govern_tools": "tool",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'claw_governance_langchain' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"claw_governance_langchain.{module}"), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "GovernanceCallbackHandler",
    "GovernanceMiddleware",
    "GovernedTool",
    "ModelCallBlocked",
    "ModelReceiptHandler",
    "active_handler",
    "disable_langchain_governance",
    "enable_langchain_governance",
    "govern_tools",
]
