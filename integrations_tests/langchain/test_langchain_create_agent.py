"""GovernedTool and the callback handler inside langchain v1's create_agent (langgraph ToolNode)."""

from __future__ import annotations

from typing import Any

import pytest
from claw_governance_langchain import GovernanceCallbackHandler, govern_tools
from claw_governance_langchain.testing import ScriptedChatModel, tool_call
from langchain.agents import create_agent
from langchain.tools import ToolRuntime
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_itest_support import AGENT, Effects

from claw_governance import Governor, ToolCallDenied


def tool_results(result: dict[str, Any]) -> dict[str, ToolMessage]:
    """The agent's ToolMessages by tool-call id."""
    return {m.tool_call_id: m for m in result["messages"] if isinstance(m, ToolMessage)}


def test_governed_tools_in_create_agent(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    inner = [tools[n] for n in ("search", "delete_records", "send_email", "whoami", "fetch_page")]
    model = ScriptedChatModel(
        replies=[
            AIMessage(
                "",
                tool_calls=[  # one turn, several calls: ToolNode runs them in parallel threads
                    tool_call("search", {"query": "governance"}, "k1"),
                    tool_call("delete_records", {"table": "customers"}, "k2"),
                    tool_call("send_email", {"to": "cfo@example.com", "body": "hi"}, "k3"),
                    tool_call("whoami", {"note": "n"}, "k4"),
                    tool_call("fetch_page", {"url": "https://example.com"}, "k5"),
                ],
            ),
            AIMessage("Searched and fetched; deletion denied, email waits for approval."),
        ]
    )
    agent = create_agent(model, govern_tools(inner, governor=gov, agent_id=AGENT))
    result = agent.invoke({"messages": [HumanMessage("research, clean up and report")]})

    assert model.bound_tools == [convert_to_openai_tool(t) for t in inner]
    assert sorted(effects.names()) == ["fetch_page", "search", "whoami"]
    results = tool_results(result)
    assert {k: m.status for k, m in results.items()} == {
        "k1": "success",
        "k2": "error",
        "k3": "error",
        "k4": "success",
        "k5": "success",
    }
    assert 'deny rule "tool:delete_*"' in str(results["k2"].content)
    assert gov.escalations.pending()[0].id in str(results["k3"].content)
    assert results["k4"].content == "n from k4"
    assert results["k5"].artifact["url"] == "https://example.com"
    # The model read the refusals and answered.
    assert {m.tool_call_id for m in model.tool_messages()} == {"k1", "k2", "k3", "k4", "k5"}
    assert result["messages"][-1].content.startswith("Searched and fetched")
    decided = {e["details"]["call_id"]: e["decision"]["outcome"] for e in gov.audit.query(type="policy_decision")}
    assert decided == {"k1": "allow", "k2": "deny", "k3": "escalate", "k4": "allow", "k5": "allow"}
    assert len(gov.audit.query(type="agent_action", agent_id=AGENT)) == 3
    assert gov.audit.verify().valid


async def test_governed_tools_in_create_agent_async(
    gov: Governor, tools: dict[str, BaseTool], effects: Effects
) -> None:
    model = ScriptedChatModel(
        replies=[
            AIMessage(
                "",
                tool_calls=[
                    tool_call("lookup", {"customer_id": 9}, "x1"),
                    tool_call("delete_account", {"customer_id": 9}, "x2"),
                ],
            ),
            AIMessage("looked up; deletion refused"),
        ]
    )
    agent = create_agent(model, govern_tools([tools["lookup"], tools["delete_account"]], governor=gov, agent_id=AGENT))
    result = await agent.ainvoke({"messages": [HumanMessage("look up 9 and delete it")]})
    assert {k: m.status for k, m in tool_results(result).items()} == {"x1": "success", "x2": "error"}
    assert effects.names() == ["lookup"]


def test_tool_runtime_injection_survives_wrapping(gov: Governor, effects: Effects) -> None:
    @tool
    def account_note(note: str, runtime: ToolRuntime) -> str:
        """Store a note for the current conversation."""
        effects.append(("account_note", {"note": note, "messages": len(runtime.state["messages"])}))
        return f"noted {note!r} after {len(runtime.state['messages'])} messages"

    model = ScriptedChatModel(
        replies=[AIMessage("", tool_calls=[tool_call("account_note", {"note": "vip"}, "r1")]), AIMessage("ok")]
    )
    agent = create_agent(model, govern_tools([account_note], governor=gov, agent_id=AGENT, action="search:note"))
    result = agent.invoke({"messages": [HumanMessage("note it")]})
    assert tool_results(result)["r1"].content == "noted 'vip' after 2 messages"
    assert gov.audit.query(type="policy_decision")[0]["context"] == {"note": "vip"}
    assert effects.names() == ["account_note"]


def test_callback_handler_in_create_agent(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    model = ScriptedChatModel(
        replies=[
            AIMessage("", tool_calls=[tool_call("search", {"query": "x"}, "h1")]),
            AIMessage("", tool_calls=[tool_call("delete_records", {"table": "t"}, "h2")]),
            AIMessage("done"),
        ]
    )
    agent = create_agent(model, [tools["search"], tools["delete_records"]])
    with pytest.raises(ToolCallDenied):
        agent.invoke(
            {"messages": [HumanMessage("search then delete")]},
            config={"callbacks": [GovernanceCallbackHandler(gov, AGENT)]},
        )
    assert effects.names() == ["search"]
    assert [e["decision"]["outcome"] for e in gov.audit.query(type="policy_decision")] == ["allow", "deny"]
