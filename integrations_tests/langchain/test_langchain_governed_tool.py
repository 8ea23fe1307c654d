"""GovernedTool against real langchain-core: same tool for the model, governed agent loops, sync and async."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from claw_governance_langchain import GovernedTool, govern_tools
from claw_governance_langchain.testing import ScriptedChatModel, arun_tool_loop, run_tool_loop, tool_call
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool, Tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_itest_support import AGENT, Effects

from claw_governance import EscalationRequired, Governor, ToolCallDenied


def tc(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    """A LangChain ToolCall."""
    return {"type": "tool_call", "name": name, "args": args, "id": call_id}


def outcome_of(entry: dict[str, Any]) -> str:
    """The outcome recorded in a policy_decision entry."""
    return str(entry["decision"]["outcome"])


KINDS = ["search", "send_email", "delete_records", "read_file", "fetch_page", "whoami", "lookup", "flaky"]


@pytest.mark.parametrize("name", KINDS)
def test_model_sees_exactly_the_same_tool(gov: Governor, tools: dict[str, BaseTool], name: str) -> None:
    inner = tools[name]
    governed = GovernedTool(inner, governor=gov, agent_id=AGENT)
    assert convert_to_openai_tool(governed) == convert_to_openai_tool(inner)
    assert governed.name == inner.name and governed.description == inner.description
    assert governed.args == inner.args
    assert governed.response_format == inner.response_format


def test_legacy_single_string_tool_keeps_its_shape(gov: Governor, effects: Effects) -> None:
    def echo(text: str) -> str:
        effects.append(("echo", {"s": text}))
        return text

    legacy = Tool(name="echo", description="Echo text.", func=echo)
    governed = GovernedTool(legacy, governor=gov, agent_id=AGENT, action="search:echo")
    inner_fn = convert_to_openai_tool(legacy)["function"]
    outer_fn = convert_to_openai_tool(governed)["function"]
    assert outer_fn["name"] == inner_fn["name"] and outer_fn["description"] == inner_fn["description"]
    assert list(outer_fn["parameters"]["properties"]) == ["__arg1"] == outer_fn["parameters"]["required"]
    msg = governed.invoke(tc("echo", {"__arg1": "hi"}, "c-echo"))
    assert msg.content == "hi" and effects.names() == ["echo"]


def test_agent_loop_allow_deny_escalate(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    model = ScriptedChatModel(
        replies=[
            AIMessage("", tool_calls=[tool_call("search", {"query": "q3 revenue"}, "c1")]),
            AIMessage("", tool_calls=[tool_call("delete_records", {"table": "customers"}, "c2")]),
            AIMessage("", tool_calls=[tool_call("send_email", {"to": "cfo@example.com", "body": "hi"}, "c3")]),
            AIMessage("Done: searched; deletion and email were not done."),
        ]
    )
    governed = govern_tools(
        [tools["search"], tools["delete_records"], tools["send_email"]], governor=gov, agent_id=AGENT
    )
    messages = run_tool_loop(model, governed, "report on revenue, then clean up")

    # The model was offered exactly the ungoverned tools.
    assert model.bound_tools == [
        convert_to_openai_tool(t) for t in (tools["search"], tools["delete_records"], tools["send_email"])
    ]
    # Allowed ran; denied and escalated bodies never ran.
    assert effects.names() == ["search"]
    by_id = {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}
    assert by_id["c1"].status == "success" and "q3 revenue" in str(by_id["c1"].content)
    assert by_id["c2"].status == "error" and 'deny rule "tool:delete_*"' in str(by_id["c2"].content)
    assert by_id["c3"].status == "error" and "Outbound email needs a human" in str(by_id["c3"].content)
    escalation_id = by_id["c3"].response_metadata["claw_governance"]["escalation_id"]
    assert escalation_id and escalation_id in str(by_id["c3"].content)
    assert [e.id for e in gov.escalations.pending()] == [escalation_id]
    # The model read the reasons and carried on to its final answer.
    assert [m.tool_call_id for m in model.tool_messages()] == ["c1", "c2", "c3"]
    assert isinstance(messages[-1], AIMessage) and messages[-1].content.startswith("Done")

    # The audit trail has one decision per call (by tool-call id) and an action entry for the one that ran.
    entries = {e["details"]["call_id"]: e for e in gov.audit.query(agent_id=AGENT, type="policy_decision")}
    assert {k: outcome_of(v) for k, v in entries.items()} == {"c1": "allow", "c2": "deny", "c3": "escalate"}
    assert all(e["details"]["framework"] == "langchain" for e in entries.values())
    ran = gov.audit.query(agent_id=AGENT, type="agent_action")
    assert [(e["action"], e["details"]["success"], e["details"]["call_id"]) for e in ran] == [
        ("tool:search", True, "c1")
    ]
    assert gov.audit.verify().valid


def test_escalation_approved_then_retried_runs_exactly_once(
    gov: Governor, tools: dict[str, BaseTool], effects: Effects
) -> None:
    send = GovernedTool(tools["send_email"], governor=gov, agent_id=AGENT)
    args = {"to": "cfo@example.com", "body": "Q3 numbers"}
    first = send.invoke(tc("send_email", args, "c1"))
    escalation_id = first.response_metadata["claw_governance"]["escalation_id"]
    assert first.status == "error" and effects == []

    gov.resolve_escalation(
        escalation_id, "approved", notes="ok to send", resolver=gov.reviewers.ensure("alice@example.com")
    )
    retried = send.invoke(tc("send_email", args, "c2"))
    assert retried.status == "success" and retried.content == "sent to cfo@example.com"
    assert effects.names() == ["send_email"]

    again = send.invoke(tc("send_email", args, "c3"))  # the approval was used up
    assert again.status == "error" and "needs human approval" in str(again.content)
    assert effects.names() == ["send_email"]
    assert [outcome_of(e) for e in gov.audit.query(type="policy_decision", action="tool:send_email")] == [
        "escalate",
        "allow",
        "escalate",
    ]
    assert len(gov.audit.query(type="escalation_resolved")) == 1


def test_wait_for_approval_runs_once_approved(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    send = GovernedTool(tools["send_email"], governor=gov, agent_id=AGENT, wait_for_approval=10)

    def approver() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pending = gov.escalations.pending()
            if pending:
                gov.resolve_escalation(
                    pending[0].id, "approved", resolver=gov.reviewers.ensure("bob@example.com"), notes="ok"
                )
                return
            time.sleep(0.02)

    thread = threading.Thread(target=approver)
    thread.start()
    msg = send.invoke(tc("send_email", {"to": "a@example.com", "body": "x"}, "c1"))
    thread.join()
    assert msg.status == "success" and effects.names() == ["send_email"]


def test_parallel_tool_calls_are_decided_one_by_one(
    gov: Governor, tools: dict[str, BaseTool], effects: Effects
) -> None:
    model = ScriptedChatModel(
        replies=[
            AIMessage(
                "",
                tool_calls=[
                    tool_call("search", {"query": "a"}, "p1"),
                    tool_call("delete_records", {"table": "t"}, "p2"),
                    tool_call("send_email", {"to": "x@example.com", "body": "b"}, "p3"),
                    tool_call("search", {"query": "b"}, "p4"),
                ],
            ),
            AIMessage("ok"),
        ]
    )
    governed = govern_tools(
        [tools["search"], tools["delete_records"], tools["send_email"]], governor=gov, agent_id=AGENT
    )
    run_tool_loop(model, governed, "do four things")
    statuses = {m.tool_call_id: m.status for m in model.tool_messages()}
    assert statuses == {"p1": "success", "p2": "error", "p3": "error", "p4": "success"}
    assert effects == [("search", {"query": "a", "limit": 3}), ("search", {"query": "b", "limit": 3})]
    recorded = [
        (e["details"]["call_id"], outcome_of(e), e["context"])
        for e in gov.audit.query(type="policy_decision", agent_id=AGENT)
    ]
    assert recorded == [
        ("p1", "allow", {"query": "a"}),
        ("p2", "deny", {"table": "t"}),
        ("p3", "escalate", {"to": "x@example.com", "body": "b"}),
        ("p4", "allow", {"query": "b"}),
    ]


def test_refusals_can_raise(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    delete = GovernedTool(tools["delete_records"], governor=gov, agent_id=AGENT, on_deny="raise")
    with pytest.raises(ToolCallDenied, match=r'deny rule "tool:delete_\*"') as denied:
        delete.invoke(tc("delete_records", {"table": "t"}, "c1"))
    assert denied.value.decision is not None
    send = GovernedTool(tools["send_email"], governor=gov, agent_id=AGENT, on_escalate="raise")
    with pytest.raises(EscalationRequired) as held:
        send.invoke(tc("send_email", {"to": "a@example.com", "body": "x"}, "c2"))
    assert held.value.escalation_id == gov.escalations.pending()[0].id
    assert effects == []


def test_plain_dict_invoke_returns_the_reason(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    delete = GovernedTool(tools["delete_records"], governor=gov, agent_id=AGENT)
    out = delete.invoke({"table": "t"})
    assert isinstance(out, str) and "denied by governance policy" in out
    search = GovernedTool(tools["search"], governor=gov, agent_id=AGENT)
    assert search.invoke({"query": "x"}) == "3 results for 'x'"
    assert effects.names() == ["search"]


def test_action_override_string_and_function(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    # A string: delete_records governed as a search action -> allowed by "search:*".
    renamed = GovernedTool(tools["delete_records"], governor=gov, agent_id=AGENT, action="search:archive")
    assert renamed.invoke(tc("delete_records", {"table": "old"}, "c1")).status == "success"

    # A function of the call: the action depends on the arguments.
    def by_table(call: dict[str, Any]) -> str:
        if call["args"]["table"].startswith("tmp_"):
            return "search:read_only"
        return f"tool:delete_{call['name']}"

    routed = GovernedTool(tools["delete_records"], governor=gov, agent_id=AGENT, action=by_table)
    assert routed.invoke(tc("delete_records", {"table": "tmp_1"}, "c2")).status == "success"
    assert routed.invoke(tc("delete_records", {"table": "users"}, "c3")).status == "error"
    assert [t["table"] for _, t in effects] == ["old", "tmp_1"]
    assert [e["action"] for e in gov.audit.query(type="policy_decision")] == [
        "search:archive",
        "search:read_only",
        "tool:delete_delete_records",
    ]


def test_injected_id_artifact_and_schema_tools_pass_through(
    gov: Governor, tools: dict[str, BaseTool], effects: Effects
) -> None:
    whoami = GovernedTool(tools["whoami"], governor=gov, agent_id=AGENT)
    msg = whoami.invoke(tc("whoami", {"note": "hello"}, "id-42"))
    assert msg.content == "hello from id-42" and msg.tool_call_id == "id-42"
    # The injected tool-call id is not part of the governed (audited) arguments.
    assert gov.audit.query(type="policy_decision", action="tool:whoami")[0]["context"] == {"note": "hello"}

    fetch = GovernedTool(tools["fetch_page"], governor=gov, agent_id=AGENT)
    page = fetch.invoke(tc("fetch_page", {"url": "https://example.com"}, "id-43"))
    assert page.artifact == {"url": "https://example.com", "html": "<p>hello</p>"}
    assert page.content == "page https://example.com (120 words)"

    read = GovernedTool(tools["read_file"], governor=gov, agent_id=AGENT)
    assert read.invoke(tc("read_file", {"path": "notes.txt"}, "id-44")).content == "contents of notes.txt"
    assert effects.names() == ["whoami", "fetch_page", "read_file"]


def test_outcomes_go_back_to_the_governor(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    flaky = GovernedTool(tools["flaky"], governor=gov, agent_id=AGENT)
    handled = flaky.invoke(tc("flaky", {"n": 1}, "c1"))
    assert handled.status == "error" and "backend unavailable" in str(handled.content)
    crash = GovernedTool(tools["crash"], governor=gov, agent_id=AGENT)
    with pytest.raises(RuntimeError, match="crashed on 2"):
        crash.invoke(tc("crash", {"n": 2}, "c2"))
    search = GovernedTool(tools["search"], governor=gov, agent_id=AGENT)
    search.invoke(tc("search", {"query": "x"}, "c3"))
    ran = [
        (e["action"], e["details"]["success"], e["details"]["error"])
        for e in gov.audit.query(type="agent_action", agent_id=AGENT)
    ]
    assert ran[0][:2] == ("tool:flaky", False) and "backend unavailable" in ran[0][2]
    assert ran[1][:2] == ("tool:crash", False) and "RuntimeError: crashed on 2" in ran[1][2]
    assert ran[2] == ("tool:search", True, None)
    assert effects.names() == ["flaky", "crash", "search"]
    # Failures cost trust (default -5 each, +1 per success).
    assert gov.trust_score(AGENT) < 100


def test_unknown_agent_identity_is_created_at_construction(gov: Governor, tools: dict[str, BaseTool]) -> None:
    GovernedTool(tools["search"], governor=gov, agent_id="new-agent")
    assert gov.audit.query(agent_id="new-agent", type="identity")
    stranger = GovernedTool(tools["search"], governor=gov, agent_id="new-agent")
    msg = stranger.invoke(tc("search", {"query": "x"}, "c"))
    assert msg.status == "error" and "denied" in str(msg.content)  # no policy for new-agent: default deny


async def test_async_agent_loop(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    model = ScriptedChatModel(
        replies=[
            AIMessage(
                "",
                tool_calls=[
                    tool_call("lookup", {"customer_id": 7}, "a1"),
                    tool_call("delete_account", {"customer_id": 7}, "a2"),
                    tool_call("search", {"query": "sync tool on the async path"}, "a3"),
                    tool_call("send_email", {"to": "x@example.com", "body": "b"}, "a4"),
                ],
            ),
            AIMessage("finished"),
        ]
    )
    governed = govern_tools(
        [tools[n] for n in ("lookup", "delete_account", "search", "send_email")], governor=gov, agent_id=AGENT
    )
    messages = await arun_tool_loop(model, governed, "look up customer 7 and delete the account")
    statuses = {m.tool_call_id: m.status for m in messages if isinstance(m, ToolMessage)}
    assert statuses == {"a1": "success", "a2": "error", "a3": "success", "a4": "error"}
    assert sorted(effects.names()) == ["lookup", "search"]
    assert {e["details"]["call_id"]: outcome_of(e) for e in gov.audit.query(type="policy_decision")} == {
        "a1": "allow",
        "a2": "deny",
        "a3": "allow",
        "a4": "escalate",
    }
    assert len(gov.audit.query(type="agent_action")) == 2


async def test_async_wait_for_approval_does_not_block_the_loop(
    gov: Governor, tools: dict[str, BaseTool], effects: Effects
) -> None:
    send = GovernedTool(tools["send_email"], governor=gov, agent_id=AGENT, wait_for_approval=10)
    task = asyncio.create_task(send.ainvoke(tc("send_email", {"to": "a@example.com", "body": "x"}, "c1")))
    for _ in range(500):  # the event loop keeps running while the call waits
        await asyncio.sleep(0.01)
        if gov.escalations.pending():
            break
    assert not task.done() and effects == []
    gov.resolve_escalation(
        gov.escalations.pending()[0].id, "approved", resolver=gov.reviewers.ensure("carol@example.com"), notes="ok"
    )
    msg = await asyncio.wait_for(task, 10)
    assert msg.status == "success" and effects.names() == ["send_email"]


async def test_async_denial_can_raise(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    delete = GovernedTool(tools["delete_account"], governor=gov, agent_id=AGENT, on_deny="raise")
    with pytest.raises(ToolCallDenied):
        await delete.ainvoke(tc("delete_account", {"customer_id": 1}, "c1"))
    assert effects == []
