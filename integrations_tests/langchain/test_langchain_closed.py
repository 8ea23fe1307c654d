"""Closing the governor never opens a door (issue 13, class 6), against real langchain-core.

After ``gov.enable()`` then ``gov.close()``, the process-wide handler, an explicit handler and every
GovernedTool that holds the governor deny with "governor is closed", and the tool body never runs. Before
this change ``close()`` removed the process-wide handler, so the same agent loop ran the denied tool,
unaudited (these tests failed on that code: the delete ran, no ToolCallDenied).
"""

from __future__ import annotations

import pytest
from claw_governance_langchain import GovernanceCallbackHandler, GovernedTool, active_handler
from claw_governance_langchain.testing import ScriptedChatModel, arun_tool_loop, run_tool_loop, tool_call
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool
from langchain_itest_support import AGENT, Effects

from claw_governance import Governor, ToolCallDenied


def _model(*calls: tuple[str, dict[str, object]]) -> ScriptedChatModel:
    return ScriptedChatModel(
        replies=[
            AIMessage("", tool_calls=[tool_call(name, dict(args), f"c{i}") for i, (name, args) in enumerate(calls)]),
            AIMessage("done"),
        ]
    )


def test_process_wide_handler_denies_after_close(
    gov: Governor, tools: dict[str, BaseTool], effects: Effects, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAW_AGENT_ID", AGENT)
    gov.enable()
    entries_before_close = len(list(gov.audit.entries()))
    gov.close()
    try:
        assert active_handler() is not None and active_handler().governor is gov  # type: ignore[union-attr]
        # an agent calls a denied tool and an allowed one: neither may run once the governor is closed
        for name, args in (("delete_records", {"table": "users"}), ("search", {"query": "x"})):
            with pytest.raises(ToolCallDenied, match="governor is closed"):
                run_tool_loop(_model((name, args)), [tools[name]], "go")
        with pytest.raises(ToolCallDenied, match="governor is closed"):
            tools["delete_records"].invoke({"table": "direct"})
        assert effects == []
        assert gov.health_check()["closed"] is True
    finally:
        gov.disable()  # the explicit way out
    assert active_handler() is None
    assert tools["search"].invoke({"query": "free"}) == "3 results for 'free'"  # disabled: ungoverned again
    assert effects.names() == ["search"]
    # nothing was appended to the closed trail
    reopened = Governor(audit_path=gov.config.audit_path, identity_path=gov.config.identity_path)
    try:
        assert len([e for e in reopened.audit.entries() if e["type"] != "checkpoint"]) <= entries_before_close
    finally:
        reopened.close()


async def test_process_wide_handler_denies_after_close_async(
    gov: Governor, tools: dict[str, BaseTool], effects: Effects, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAW_AGENT_ID", AGENT)
    gov.enable()
    gov.close()
    try:
        with pytest.raises(ToolCallDenied, match="governor is closed"):
            await arun_tool_loop(_model(("delete_account", {"customer_id": 7})), [tools["delete_account"]], "go")
        with pytest.raises(ToolCallDenied, match="governor is closed"):
            await tools["delete_records"].ainvoke({"table": "a"})
    finally:
        gov.disable()
    assert effects == []


def test_governed_tool_and_explicit_handler_deny_after_close(
    gov: Governor, tools: dict[str, BaseTool], effects: Effects
) -> None:
    governed = GovernedTool(tools["search"], governor=gov, agent_id=AGENT)
    handler = GovernanceCallbackHandler(gov, AGENT)
    assert governed.invoke({"query": "before"}) == "3 results for 'before'"
    gov.close()
    model = _model(("search", {"query": "after"}))
    messages = run_tool_loop(model, [governed], "go")
    refusals = [m for m in messages if isinstance(m, ToolMessage)]
    assert len(refusals) == 1 and refusals[0].status == "error"
    assert "governor is closed" in str(refusals[0].content)
    with pytest.raises(ToolCallDenied, match="governor is closed"):
        tools["search"].invoke({"query": "cb"}, config={"callbacks": [handler]})
    # a GovernedTool built after close() (agent() no longer touches the closed stores) denies as well
    late = GovernedTool(tools["delete_records"], governor=gov, agent_id="new-agent")
    assert "governor is closed" in late.invoke({"table": "t"})
    assert effects.names() == ["search"]  # only the call made before close() ran
