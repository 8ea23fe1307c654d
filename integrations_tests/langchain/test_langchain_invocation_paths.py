"""Every way langchain-core can start a tool is governed: a refused tool's body never runs, whichever path
(``invoke`` / ``ainvoke`` with a dict or a ToolCall, ``batch`` / ``abatch``, ``stream`` / ``astream``,
``run`` / ``arun``, ``with_config``, sync-only tools on async paths and async-only tools on sync ones), and
every attempt is decided and audited. Real langchain-core, real tools."""

from __future__ import annotations

from typing import Any

import pytest
from claw_governance_langchain import GovernanceCallbackHandler, GovernedTool
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langchain_itest_support import AGENT, Effects

from claw_governance import Governor, ToolCallDenied


def tc(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"type": "tool_call", "name": name, "args": args, "id": call_id}


def decisions(gov: Governor, action: str) -> list[str]:
    return [e["decision"]["outcome"] for e in gov.audit.query(type="policy_decision", action=action)]


def refused(result: Any) -> bool:
    """A GovernedTool refusal as a result: the reason as text, or a ToolMessage with status "error"."""
    if isinstance(result, ToolMessage):
        return result.status == "error" and "was not run" in str(result.content)
    return isinstance(result, str) and "was not run" in result


def test_governed_tool_every_sync_path(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    sync_only = GovernedTool(tools["delete_records"], governor=gov, agent_id=AGENT)
    async_only = GovernedTool(tools["delete_account"], governor=gov, agent_id=AGENT)
    results: list[Any] = [
        sync_only.invoke({"table": "a"}),
        sync_only.invoke(tc("delete_records", {"table": "b"}, "c1")),
        *sync_only.batch([{"table": "c"}, tc("delete_records", {"table": "d"}, "c2")]),
        *sync_only.stream({"table": "e"}),
        sync_only.with_config(run_name="renamed").invoke({"table": "f"}),
        sync_only.run({"table": "g"}),
        async_only.invoke({"customer_id": 1}),
        *async_only.batch([{"customer_id": 2}]),
    ]
    assert all(refused(r) for r in results), results
    with pytest.raises(NotImplementedError):
        sync_only._run(table="h")  # the ungoverned entry point does not exist
    assert effects == []
    assert decisions(gov, "tool:delete_records") == ["deny"] * 7
    assert decisions(gov, "tool:delete_account") == ["deny"] * 2


async def test_governed_tool_every_async_path(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    sync_only = GovernedTool(tools["delete_records"], governor=gov, agent_id=AGENT)
    async_only = GovernedTool(tools["delete_account"], governor=gov, agent_id=AGENT)
    results: list[Any] = [
        await sync_only.ainvoke({"table": "a"}),
        await sync_only.ainvoke(tc("delete_records", {"table": "b"}, "c1")),
        *await sync_only.abatch([{"table": "c"}, tc("delete_records", {"table": "d"}, "c2")]),
        *[chunk async for chunk in sync_only.astream({"table": "e"})],
        await sync_only.arun({"table": "f"}),
        await async_only.ainvoke({"customer_id": 1}),
        *await async_only.abatch([{"customer_id": 2}, tc("delete_account", {"customer_id": 3}, "c3")]),
        *[chunk async for chunk in async_only.astream({"customer_id": 4})],
    ]
    assert all(refused(r) for r in results), results
    with pytest.raises(NotImplementedError):
        await sync_only._arun(table="g")
    assert effects == []
    assert decisions(gov, "tool:delete_records") == ["deny"] * 6
    assert decisions(gov, "tool:delete_account") == ["deny"] * 4


def test_handler_every_sync_path(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    config: RunnableConfig = {"callbacks": [GovernanceCallbackHandler(gov, AGENT)]}
    delete, delete_async = tools["delete_records"], tools["delete_account"]
    with pytest.raises(ToolCallDenied):
        delete.invoke(tc("delete_records", {"table": "a"}, "c1"), config=config)
    with pytest.raises(ToolCallDenied):
        delete.batch([{"table": "b"}, {"table": "c"}], config=config)
    out = delete.batch([{"table": "d"}], config=config, return_exceptions=True)
    assert isinstance(out[0], ToolCallDenied)
    with pytest.raises(ToolCallDenied):
        list(delete.stream({"table": "e"}, config=config))
    with pytest.raises(ToolCallDenied):
        delete.run({"table": "f"}, callbacks=config["callbacks"])
    with pytest.raises(ToolCallDenied):
        delete_async.invoke({"customer_id": 1}, config=config)
    assert effects == []
    assert "deny" in decisions(gov, "tool:delete_records") and "allow" not in decisions(gov, "tool:delete_records")


async def test_handler_every_async_path(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    config: RunnableConfig = {"callbacks": [GovernanceCallbackHandler(gov, AGENT)]}
    delete, delete_async = tools["delete_records"], tools["delete_account"]  # sync-only, async-only
    for tool, args in ((delete, {"table": "a"}), (delete_async, {"customer_id": 1})):
        with pytest.raises(ToolCallDenied):
            await tool.ainvoke(args, config=config)
        with pytest.raises(ToolCallDenied):
            await tool.abatch([args, args], config=config)
        out = await tool.abatch([args], config=config, return_exceptions=True)
        assert isinstance(out[0], ToolCallDenied)
        with pytest.raises(ToolCallDenied):
            _ = [chunk async for chunk in tool.astream(args, config=config)]
        with pytest.raises(ToolCallDenied):
            await tool.arun(args, callbacks=config["callbacks"])
    assert effects == []


async def test_process_wide_every_async_path(
    gov: Governor, tools: dict[str, BaseTool], effects: Effects, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAW_AGENT_ID", AGENT)
    gov.enable()
    try:
        for tool, args in ((tools["delete_records"], {"table": "a"}), (tools["delete_account"], {"customer_id": 1})):
            with pytest.raises(ToolCallDenied):
                await tool.ainvoke(args)
            out = await tool.abatch([args, args], return_exceptions=True)
            assert all(isinstance(o, ToolCallDenied) for o in out), out
            with pytest.raises(ToolCallDenied):
                _ = [chunk async for chunk in tool.astream(args)]
        with pytest.raises(ToolCallDenied):
            list(tools["delete_records"].stream({"table": "b"}))
        out = tools["delete_account"].batch([{"customer_id": 2}], return_exceptions=True)
        assert isinstance(out[0], ToolCallDenied)
    finally:
        gov.disable()
    assert effects == []


def test_nested_run_of_the_same_name_is_governed(gov: Governor, effects: Effects) -> None:
    """A GovernedTool lets its own inner run through the handlers once; a second run of a tool with the same
    name started inside the inner body (a recursive or agent-as-tool tool) is decided on its own."""
    from langchain_core.tools import tool

    @tool("cleanup")
    def inner_cleanup(table: str) -> str:
        """Delete a table (the nested tool)."""
        effects.append(("cleanup", {"table": table}))
        return "deleted"

    @tool
    def cleanup(table: str) -> str:
        """Clean up: runs a nested tool of the same name."""
        return str(inner_cleanup.invoke({"table": table}))

    handler = GovernanceCallbackHandler(gov, AGENT)
    wrapped = GovernedTool(cleanup, governor=gov, agent_id=AGENT, action="search:cleanup")  # allowed
    with pytest.raises(ToolCallDenied):  # the nested "cleanup" is tool:cleanup: not allowed for the agent
        wrapped.invoke(tc("cleanup", {"table": "t"}, "c1"), config={"callbacks": [handler]})
    assert effects == []
    assert decisions(gov, "search:cleanup") == ["allow"] and decisions(gov, "tool:cleanup") == ["deny"]


def test_arguments_outside_the_schema_are_governed_and_audited(gov: Governor, effects: Effects) -> None:
    """A tool with a JSON-schema ``args_schema`` (MCP tools, for one) gets every argument the model sends, also
    those its schema does not list. What the tool receives is what policy conditions see and what the audit
    trail records, through GovernedTool as through the callback handler; only injected values are left out."""

    class Lookup(BaseTool):
        name: str = "lookup"
        description: str = "Look a customer up."
        args_schema: dict[str, Any] = {  # noqa: RUF012 (a pydantic field: copied per instance)
            "type": "object",
            "properties": {"customer_id": {"type": "integer"}},
            "required": ["customer_id"],
        }

        def _run(self, customer_id: int, **extra: Any) -> str:
            effects.append(("lookup", {"customer_id": customer_id, **extra}))
            return "found"

    args = {"customer_id": 7, "export_to": "https://attacker.example/upload"}
    GovernedTool(Lookup(), governor=gov, agent_id=AGENT).invoke(tc("lookup", args, "g1"))
    Lookup().invoke(tc("lookup", args, "h1"), config={"callbacks": [GovernanceCallbackHandler(gov, AGENT)]})
    assert effects == [("lookup", args), ("lookup", args)]  # the tool got the extra argument both times
    audited = [e["context"] for e in gov.audit.query(type="policy_decision", action="tool:lookup")]
    assert audited == [args, args]
