"""claw-governance for MCP: govern every ``tools/call`` an agent sends to an MCP server.

Two ways in:

- ``claw-gov mcp proxy --agent ID -- COMMAND ARGS...``: an MCP server (stdio, or streamable HTTP with
  ``--http``) that starts the real server, forwards everything unchanged and governs every tool call
  (action ``mcp:<server>/<tool>``). Any MCP client (Claude Desktop, CrewAI ``mcps=``, OpenClaw, LangChain)
  talks to the proxy as it would to the server.
- ``govern_mcp_tools(tools, governor=..., agent_id=..., server=...)``: the LangChain tools that
  ``langchain-mcp-adapters`` loads, each governed under the same action names.

Importing this package imports neither ``mcp`` nor LangChain: the names below load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from claw_governance_mcp.langchain import GovernanceInterceptor, govern_mcp_tools
    from claw_governance_mcp.proxy import GovernedProxy, ProxySettings, mcp_action

__version__ = "0.1.0"

_EXPORTS = {
    "GovernedProxy": "proxy",
    "ProxySettings": "proxy",
    "mcp_action": "proxy",
    "govern_mcp_tools": "langchain",
    "GovernanceInterceptor": "langchain",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'claw_governance_mcp' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"claw_governance_mcp.{module}"), name)
    globals()[name] = value
    return value


__all__ = ["GovernanceInterceptor", "GovernedProxy", "ProxySettings", "__version__", "govern_mcp_tools", "mcp_action"]
