"""langchain-mcp-adapters tools from a real MCP server, governed by the interceptor and by govern_mcp_tools."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from claw_governance_langchain import GovernedTool
from claw_governance_mcp import GovernanceInterceptor, govern_mcp_tools
from langchain_core.messages import ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_mcp_adapters.client import MultiServerMCPClient
from mcp_support import AGENT, Env

from claw_governance import Governor


@pytest.fixture
def gov(env: Env) -> Iterator[Governor]:
    governor = Governor(
        policy_path=env.root / "policies", audit_path=env.root / "audit", identity_path=env.root / "identities"
    )
    try:
        yield governor
    finally:
        governor.close()


def connections(env: Env) -> dict[str, Any]:
    return {"notes": {"transport": "stdio", "command": env.server_command[0], "args": env.server_command[1:]}}


def call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


async def test_interceptor_governs_every_mcp_tool_call(env: Env, gov: Governor) -> None:
    client = MultiServerMCPClient(
        connections(env), tool_interceptors=[GovernanceInterceptor(governor=gov, agent_id=AGENT)]
    )
    tools = {t.name: t for t in await client.get_tools()}

    denied = await tools["delete_notes"].ainvoke(call("delete_notes", {"confirm": True}, "c1"))
    assert isinstance(denied, ToolMessage) and denied.status == "error"
    assert "denied by governance policy" in str(denied.content)
    assert not (env.effects / "DELETED").exists()

    allowed = await tools["add_note"].ainvoke(call("add_note", {"title": "lc", "text": "hi"}, "c2"))
    assert isinstance(allowed, ToolMessage) and allowed.status != "error"
    assert (env.effects / "lc.txt").read_text() == "hi"

    held = await tools["send_note"].ainvoke(call("send_note", {"title": "t", "to": "cfo"}, "c3"))
    assert "needs human approval" in str(held.content)
    assert not (env.effects / "SENT-cfo").exists()

    outcomes = {e["action"]: e["decision"]["outcome"] for e in gov.audit.query(type="policy_decision")}
    assert outcomes == {
        "mcp:notes/delete_notes": "deny",
        "mcp:notes/add_note": "allow",
        "mcp:notes/send_note": "escalate",
    }
    assert [e["action"] for e in gov.audit.query(type="agent_action")] == ["mcp:notes/add_note"]


async def test_govern_mcp_tools_keeps_the_schema_and_governs(env: Env, gov: Governor) -> None:
    client = MultiServerMCPClient(connections(env))
    loaded = await client.get_tools()
    governed = govern_mcp_tools(loaded, governor=gov, agent_id=AGENT, server="notes")
    assert all(isinstance(t, GovernedTool) for t in governed)
    assert [convert_to_openai_tool(t) for t in governed] == [convert_to_openai_tool(t) for t in loaded]
    tools = {t.name: t for t in governed}

    denied = await tools["delete_notes"].ainvoke(call("delete_notes", {}, "d1"))
    assert denied.status == "error"
    assert not (env.effects / "DELETED").exists()
    allowed = await tools["add_note"].ainvoke(call("add_note", {"title": "g", "text": "ok"}, "d2"))
    assert allowed.status != "error"
    assert (env.effects / "g.txt").read_text() == "ok"
    actions = [e["action"] for e in gov.audit.query(type="policy_decision")]
    assert actions == ["mcp:notes/delete_notes", "mcp:notes/add_note"]


async def test_prefixed_tool_names_map_to_the_mcp_name(env: Env, gov: Governor) -> None:
    client = MultiServerMCPClient(connections(env), tool_name_prefix=True)
    governed = govern_mcp_tools(await client.get_tools(), governor=gov, agent_id=AGENT, server="notes", prefix="notes_")
    tools = {t.name: t for t in governed}
    result = await tools["notes_delete_notes"].ainvoke(call("notes_delete_notes", {}, "p1"))
    assert result.status == "error"
    assert not (env.effects / "DELETED").exists()
    assert gov.audit.query(type="policy_decision")[0]["action"] == "mcp:notes/delete_notes"
