"""GovernanceCallbackHandler and the process-wide path (gov.enable()) against real langchain-core."""

from __future__ import annotations

import importlib.metadata
import threading
import time
from typing import Any

import pytest
from claw_governance_langchain import (
    GovernanceCallbackHandler,
    GovernedTool,
    active_handler,
    disable_langchain_governance,
    enable_langchain_governance,
)
from claw_governance_langchain.testing import ScriptedChatModel, run_tool_loop, tool_call
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool, tool
from langchain_itest_support import AGENT, Effects

from claw_governance import EscalationRequired, Governor, ToolCallDenied


def tc(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    """A LangChain ToolCall."""
    return {"type": "tool_call", "name": name, "args": args, "id": call_id}


def outcomes(gov: Governor) -> list[tuple[str, str]]:
    """(action, outcome) of every policy decision so far."""
    return [(e["action"], e["decision"]["outcome"]) for e in gov.audit.query(type="policy_decision")]


def research_chain(tools: dict[str, BaseTool]) -> RunnableLambda[str, str]:
    """An existing application: a chain whose steps call tools (config reaches them implicitly)."""

    def step(topic: str) -> str:
        found = tools["search"].invoke({"query": topic})
        tools["delete_records"].invoke({"table": f"cache_{topic}"})
        return str(found)

    return RunnableLambda(step)


# --------------------------------------------------------------------------------------- explicit handler


def test_handler_allows_and_reports_outcome(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    handler = GovernanceCallbackHandler(gov, AGENT)
    assert handler.raise_error is True
    out = tools["search"].invoke(tc("search", {"query": "llms"}, "c1"), config={"callbacks": [handler]})
    assert out.status == "success" and effects.names() == ["search"]
    [decision] = gov.audit.query(type="policy_decision")
    assert decision["decision"]["outcome"] == "allow" and decision["details"]["call_id"] == "c1"
    [action] = gov.audit.query(type="agent_action")
    assert action["details"]["success"] is True and action["details"]["call_id"] == "c1"


def test_handler_blocks_denied_tool_in_a_chain(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    chain = research_chain(tools)
    with pytest.raises(ToolCallDenied, match=r'deny rule "tool:delete_\*"'):
        chain.invoke("llms", config={"callbacks": [GovernanceCallbackHandler(gov, AGENT)]})
    assert effects.names() == ["search"]  # the search ran; the delete body never did
    assert outcomes(gov) == [("tool:search", "allow"), ("tool:delete_records", "deny")]
    assert [e["action"] for e in gov.audit.query(type="agent_action")] == ["tool:search"]


def test_handler_blocks_in_an_agent_loop(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    model = ScriptedChatModel(
        replies=[
            AIMessage("", tool_calls=[tool_call("search", {"query": "x"}, "c1")]),
            AIMessage("", tool_calls=[tool_call("send_email", {"to": "a@example.com", "body": "b"}, "c2")]),
            AIMessage("done"),
        ]
    )
    config: RunnableConfig = {"callbacks": [GovernanceCallbackHandler(gov, AGENT)]}
    with pytest.raises(EscalationRequired) as held:
        run_tool_loop(model, [tools["search"], tools["send_email"]], "email the results", config=config)
    assert held.value.escalation_id == gov.escalations.pending()[0].id
    assert effects.names() == ["search"]


def test_handler_waits_for_approval(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    handler = GovernanceCallbackHandler(gov, AGENT, wait_for_approval=10)

    def approver() -> None:
        for _ in range(500):
            pending = gov.escalations.pending()
            if pending:
                gov.resolve_escalation(
                    pending[0].id, "approved", resolver=gov.reviewers.ensure("alice@example.com"), notes="ok"
                )
                return
            time.sleep(0.02)

    thread = threading.Thread(target=approver)
    thread.start()
    out = tools["send_email"].invoke({"to": "a@example.com", "body": "b"}, config={"callbacks": [handler]})
    thread.join()
    assert out == "sent to a@example.com" and effects.names() == ["send_email"]
    assert [o for _, o in outcomes(gov)] == ["escalate", "allow"]


def test_handler_reports_tool_failures(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    handler = GovernanceCallbackHandler(gov, AGENT)
    with pytest.raises(RuntimeError):
        tools["crash"].invoke({"n": 1}, config={"callbacks": [handler]})
    handled = tools["flaky"].invoke(tc("flaky", {"n": 2}, "c2"), config={"callbacks": [handler]})
    assert handled.status == "error"
    results = [(e["action"], e["details"]["success"]) for e in gov.audit.query(type="agent_action")]
    assert results == [("tool:crash", False), ("tool:flaky", False)]
    assert effects.names() == ["crash", "flaky"]


async def test_handler_blocks_on_the_async_path(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    config: RunnableConfig = {"callbacks": [GovernanceCallbackHandler(gov, AGENT)]}
    # A sync-only tool awaited: the path on which an async handler's error would be swallowed (fail open).
    with pytest.raises(ToolCallDenied):
        await tools["delete_records"].ainvoke({"table": "t"}, config=config)
    with pytest.raises(ToolCallDenied):
        await tools["delete_account"].ainvoke({"customer_id": 3}, config=config)
    assert await tools["lookup"].ainvoke({"customer_id": 3}, config=config) == "customer 3"
    assert effects.names() == ["lookup"]
    assert outcomes(gov) == [("tool:delete_records", "deny"), ("tool:delete_account", "deny"), ("tool:lookup", "allow")]
    assert [e["details"]["success"] for e in gov.audit.query(type="agent_action")] == [True]


def test_handler_and_governed_tool_decide_once(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    governed = GovernedTool(tools["search"], governor=gov, agent_id=AGENT)
    handler = GovernanceCallbackHandler(gov, AGENT)
    enable_langchain_governance(gov, AGENT)  # a second handler, process-wide, for the same governor
    try:
        msg = governed.invoke(tc("search", {"query": "x"}, "c1"), config={"callbacks": [handler]})
        assert msg.status == "success"
        assert outcomes(gov) == [("tool:search", "allow")]
        assert len(gov.audit.query(type="agent_action")) == 1

        # A tool run nested inside a governed tool's body is still governed on its own.
        @tool
        def cleanup(table: str) -> str:
            """Search, then delete a table."""
            tools["delete_records"].invoke({"table": table})
            return "cleaned"

        wrapped = GovernedTool(cleanup, governor=gov, agent_id=AGENT, action="search:cleanup")
        with pytest.raises(ToolCallDenied):
            wrapped.invoke(tc("cleanup", {"table": "t"}, "c2"), config={"callbacks": [handler]})
    finally:
        disable_langchain_governance(gov)
    assert outcomes(gov)[1:] == [("search:cleanup", "allow"), ("tool:delete_records", "deny")]
    assert effects.names() == ["search"]
    failed = gov.audit.query(type="agent_action", action="search:cleanup")
    assert failed[0]["details"]["success"] is False and "ToolCallDenied" in failed[0]["details"]["error"]


def test_run_metadata_names_the_agent(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    handler = GovernanceCallbackHandler(gov, "some-other-agent")
    out = tools["search"].invoke({"query": "x"}, config={"callbacks": [handler], "metadata": {"claw_agent_id": AGENT}})
    assert out == "3 results for 'x'"
    with pytest.raises(ToolCallDenied):  # some-other-agent has no policy: default deny
        tools["search"].invoke({"query": "y"}, config={"callbacks": [handler]})
    assert [e["agent_id"] for e in gov.audit.query(type="policy_decision")] == [AGENT, "some-other-agent"]


# ------------------------------------------------------------------------------------------ process-wide


def test_adapter_is_an_installed_plugin(gov: Governor) -> None:
    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="claw_governance")}
    assert eps["langchain"] == "claw_governance_langchain.plugin"
    health = gov.health_check()
    assert "langchain" in health["components"]["plugins"]["loaded"]
    assert health["components"]["langchain"]["process_wide"] is False


def test_enable_governs_an_unchanged_application(
    gov: Governor, tools: dict[str, BaseTool], effects: Effects, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAW_AGENT_ID", AGENT)
    chain = research_chain(tools)  # no governance anywhere in the application
    assert chain.invoke("before") == "3 results for 'before'"
    assert effects.names() == ["search", "delete_records"]  # ungoverned: the delete ran
    effects.clear()

    gov.enable()
    try:
        assert active_handler() is not None and active_handler().governor is gov  # type: ignore[union-attr]
        assert gov.health_check()["components"]["langchain"]["process_wide"] is True
        with pytest.raises(ToolCallDenied):
            chain.invoke("during")
        assert effects.names() == ["search"]

        # A run started in a thread that did not inherit any context is governed too.
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                tools["delete_records"].invoke({"table": "from_thread"})
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert len(errors) == 1 and isinstance(errors[0], ToolCallDenied)
        assert effects.names() == ["search"]

        # An agent loop with no callbacks configured is governed as well.
        model = ScriptedChatModel(
            replies=[
                AIMessage("", tool_calls=[tool_call("send_email", {"to": "a@example.com", "body": "b"}, "e1")]),
                AIMessage("done"),
            ]
        )
        with pytest.raises(EscalationRequired):
            run_tool_loop(model, [tools["send_email"]], "send it")
        assert effects.names() == ["search"]

        gov.enable()  # idempotent: still one handler
        governed = GovernedTool(tools["search"], governor=gov, agent_id=AGENT)
        governed.invoke(tc("search", {"query": "once"}, "g1"))  # decided once, not by both
    finally:
        gov.disable()
    assert active_handler() is None
    assert [a for a, _ in outcomes(gov)] == [
        "tool:search",
        "tool:delete_records",
        "tool:delete_records",
        "tool:send_email",
        "tool:search",
    ]
    assert all(e["agent_id"] == AGENT for e in gov.audit.query(type="policy_decision"))

    effects.clear()
    assert chain.invoke("after") == "3 results for 'after'"  # disabled: ungoverned again
    assert effects.names() == ["search", "delete_records"]
    assert len(gov.audit.query(type="policy_decision")) == 5


def test_close_keeps_denying_and_only_disable_hands_over(
    tmp_path: Any, gov: Governor, tools: dict[str, BaseTool], effects: Effects
) -> None:
    other = Governor(audit_path=tmp_path / "other-audit")  # no policy: denies everything
    try:
        enable_langchain_governance(gov, AGENT)
        other.enable()
        with pytest.raises(ToolCallDenied):
            tools["search"].invoke({"query": "x"})
        other.close()  # close() never opens a door: the closed governor still governs, and denies
        with pytest.raises(ToolCallDenied, match="governor is closed"):
            tools["search"].invoke({"query": "closed"})
        other.disable()  # only an explicit disable() takes it out: the earlier governor governs again
        assert tools["search"].invoke({"query": "y"}) == "3 results for 'y'"
    finally:
        other.disable()
        other.close()
        disable_langchain_governance(gov)
    assert active_handler() is None
    assert effects.names() == ["search"]
