"""Governing the LangChain tools that ``langchain-mcp-adapters`` loads from MCP servers.

Two ways, with the same action names as ``claw-gov mcp proxy`` (``mcp:<server>/<tool>``), so one policy
covers an MCP server whether it is reached through the proxy or straight from LangChain:

- ``govern_mcp_tools(tools, governor=gov, agent_id=..., server="files")``: wraps each loaded tool in a
  GovernedTool (the model sees the same tool; a refusal is an error ToolMessage).
- ``GovernanceInterceptor(governor=gov, agent_id=...)`` in ``MultiServerMCPClient(...,
  tool_interceptors=[..., GovernanceInterceptor(...)])``: decides every MCP tool call of every server the
  client knows, with the server name the client gives. Put it last in the list, so that no interceptor can
  change the arguments after the decision.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from claw_governance import CallOutcome, Governor, Outcome
from langchain_core.tools import BaseTool
from mcp import types

from claw_governance_mcp.proxy import FRAMEWORK, _outcome, _text_result, mcp_action, refusal_text


def govern_mcp_tools(
    tools: Iterable[BaseTool],
    *,
    governor: Governor,
    agent_id: str,
    server: str,
    prefix: str | None = None,
    **options: Any,
) -> list[BaseTool]:
    """Wrap MCP tools from ``server`` in GovernedTools whose action is ``mcp:<server>/<tool>``.

    ``prefix``: the prefix ``langchain-mcp-adapters`` put before each tool name (``tool_name_prefix=True``
    gives ``"<server>_"``), removed to find the MCP tool name. ``options`` are GovernedTool's.
    """
    from claw_governance_langchain import GovernedTool

    governed: list[BaseTool] = []
    for tool in tools:
        if isinstance(tool, GovernedTool):
            governed.append(tool)
            continue
        name = tool.name[len(prefix) :] if prefix and tool.name.startswith(prefix) else tool.name
        governed.append(
            GovernedTool(tool, governor=governor, agent_id=agent_id, action=mcp_action(server, name), **options)
        )
    return governed


class GovernanceInterceptor:
    """A ``langchain-mcp-adapters`` tool-call interceptor that governs every MCP tool call.

    A refused call returns a CallToolResult with ``isError`` (the adapter turns it into an error the model
    reads) and never reaches the server; an allowed one runs and its outcome is audited. ``server``, if given,
    overrides the client's server name in the action. ``wait_seconds``: wait for a reviewer on ESCALATE.
    """

    def __init__(
        self, *, governor: Governor, agent_id: str, server: str | None = None, wait_seconds: float | None = None
    ) -> None:
        self.governor = governor
        self.agent_id = agent_id
        self.server = server
        self.wait_seconds = wait_seconds
        governor.agent(agent_id, framework=FRAMEWORK)

    async def __call__(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        """Decide ``request`` (an MCPToolCallRequest); call ``handler`` only on ALLOW."""
        server = self.server or request.server_name
        if not server:
            return _text_result(
                f"Tool '{request.name}' was not run: no MCP server name to govern it under "
                "(give the client a server name or GovernanceInterceptor(server=...)).",
                None,
                outcome="deny",
            )
        call = self.governor.make_call(
            self.agent_id,
            mcp_action(server, request.name),
            dict(request.args or {}),
            framework=FRAMEWORK,
            metadata={"tool": request.name, "server": server},
        )
        decision = self.governor.before_call(call)
        if decision.outcome is Outcome.ESCALATE and self.wait_seconds:
            decision = await self.governor.await_approval(decision, self.wait_seconds)
        if decision.outcome is not Outcome.ALLOW:
            return _text_result(refusal_text(request.name, decision), decision)
        started = time.perf_counter()
        try:
            result = await handler(request)
        except BaseException as exc:
            elapsed = (time.perf_counter() - started) * 1000
            self.governor.after_call(call, decision, CallOutcome(False, None, f"{type(exc).__name__}: {exc}", elapsed))
            raise
        elapsed = (time.perf_counter() - started) * 1000
        if isinstance(result, types.CallToolResult):
            outcome = _outcome(result, elapsed)
        else:
            outcome = CallOutcome(True, getattr(result, "content", None), None, elapsed)
        self.governor.after_call(call, decision, outcome)
        return result


__all__ = ["GovernanceInterceptor", "govern_mcp_tools"]
