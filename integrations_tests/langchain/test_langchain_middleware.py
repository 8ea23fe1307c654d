"""GovernanceMiddleware inside langchain v1's create_agent: tool calls decided, escalations as interrupts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from claw_governance_langchain import GovernanceMiddleware
from claw_governance_langchain.middleware import INTERRUPT_TYPE
from claw_governance_langchain.testing import ScriptedChatModel, tool_call
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from langchain_itest_support import AGENT, Effects
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from claw_governance import Governor


def thread() -> dict[str, Any]:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


def one_turn(*calls: dict[str, Any]) -> ScriptedChatModel:
    """A model that makes ``calls`` in one message, then answers."""
    return ScriptedChatModel(replies=[AIMessage("", tool_calls=list(calls)), AIMessage("done")])


def results(state: dict[str, Any]) -> dict[str, ToolMessage]:
    return {m.tool_call_id: m for m in state["messages"] if isinstance(m, ToolMessage)}


def interrupts(state: dict[str, Any]) -> list[Any]:
    return list(state.get("__interrupt__", ()))


def test_parallel_calls_each_decided_escalation_pauses_and_runs_once_after_approval(
    gov: Governor, tools: dict[str, BaseTool], effects: Effects
) -> None:
    model = one_turn(
        tool_call("search", {"query": "q"}, "s1"),
        tool_call("delete_records", {"table": "customers"}, "d1"),
        tool_call("send_email", {"to": "cfo@example.com", "body": "hi"}, "e1"),
    )
    agent = create_agent(
        model,
        [tools["search"], tools["delete_records"], tools["send_email"]],
        middleware=[GovernanceMiddleware(governor=gov, agent_id=AGENT)],
        checkpointer=InMemorySaver(),
    )
    config = thread()
    state = agent.invoke({"messages": [HumanMessage("go")]}, config)

    (paused,) = interrupts(state)
    value = paused.value
    assert value["type"] == INTERRUPT_TYPE and value["tool_call_id"] == "e1" and value["tool"] == "send_email"
    assert value["reason"].endswith("Outbound email needs a human") and "research.yaml:" in value["rule"]
    assert value["args"] == {"to": "cfo@example.com", "body": "hi"}
    escalation_id = value["escalation_id"]
    assert [e.id for e in gov.escalations.pending()] == [escalation_id]
    assert effects.names() == ["search"]  # allowed ran, denied did not, escalated waits

    # Resuming without an approval decides again: still pending, so it pauses again; the value approves nothing.
    state = agent.invoke(Command(resume={"approved": True, "resolver": "mallory"}), config)
    assert interrupts(state) and interrupts(state)[0].value["escalation_id"] == escalation_id
    assert effects.names() == ["search"]
    assert len(gov.escalations.pending()) == 1  # no second escalation for the same call

    gov.resolve_escalation(escalation_id, "approved", notes="ok", resolver=gov.reviewers.ensure("alice@example.com"))
    state = agent.invoke(Command(resume="go on"), config)
    assert not interrupts(state)
    assert effects.names() == ["search", "send_email"]  # exactly once each
    by_id = results(state)
    assert set(by_id) == {"s1", "d1", "e1"}  # every tool call answered
    assert by_id["d1"].status == "error" and "denied by governance policy" in str(by_id["d1"].content)
    assert by_id["e1"].status != "error" and by_id["s1"].status != "error"
    outcomes = [(e["action"], e["decision"]["outcome"]) for e in gov.audit.query(type="policy_decision")]
    assert sorted(outcomes) == sorted(
        [
            ("tool:search", "allow"),
            ("tool:delete_records", "deny"),
            ("tool:send_email", "escalate"),
            ("tool:send_email", "allow"),
        ]
    )

    # A later identical call needs a new approval: the grant was used up.
    state = agent.invoke({"messages": [HumanMessage("again")]}, config)
    assert effects.names() == ["search", "send_email"]


def test_denied_escalation_answers_with_an_error_message(
    gov: Governor, tools: dict[str, BaseTool], effects: Effects
) -> None:
    model = one_turn(tool_call("send_email", {"to": "x@example.com", "body": "b"}, "e2"))
    agent = create_agent(
        model,
        [tools["send_email"]],
        middleware=[GovernanceMiddleware(governor=gov, agent_id=AGENT)],
        checkpointer=InMemorySaver(),
    )
    config = thread()
    state = agent.invoke({"messages": [HumanMessage("go")]}, config)
    escalation_id = interrupts(state)[0].value["escalation_id"]
    gov.resolve_escalation(escalation_id, "denied", notes="no", resolver=gov.reviewers.ensure("bob@example.com"))
    state = agent.invoke(Command(resume=True), config)
    message = results(state)["e2"]
    assert message.status == "error" and "denied" in str(message.content) and escalation_id in str(message.content)
    assert effects.names() == []


def test_console_link_in_the_interrupt(tmp_path: Any, tools: dict[str, BaseTool]) -> None:
    from langchain_itest_support import POLICY

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "r.yaml").write_text(POLICY)
    with Governor(policy_path=tmp_path / "p", console_url="https://review.example.com/") as gov:
        model = one_turn(tool_call("send_email", {"to": "a@example.com", "body": "b"}, "e3"))
        agent = create_agent(
            model,
            [tools["send_email"]],
            middleware=[GovernanceMiddleware(governor=gov, agent_id=AGENT)],
            checkpointer=InMemorySaver(),
        )
        value = interrupts(agent.invoke({"messages": [HumanMessage("go")]}, thread()))[0].value
        assert value["console_url"] == f"https://review.example.com/escalations/{value['escalation_id']}"


async def test_async_agent_is_governed(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    model = one_turn(
        tool_call("search", {"query": "a"}, "a1"),
        tool_call("delete_records", {"table": "t"}, "a2"),
        tool_call("send_email", {"to": "c@example.com", "body": "b"}, "a3"),
    )
    agent = create_agent(
        model,
        [tools["search"], tools["delete_records"], tools["send_email"]],
        middleware=[GovernanceMiddleware(governor=gov, agent_id=AGENT)],
        checkpointer=InMemorySaver(),
    )
    config = thread()
    state = await agent.ainvoke({"messages": [HumanMessage("go")]}, config)
    escalation_id = interrupts(state)[0].value["escalation_id"]
    assert effects.names() == ["search"]
    gov.resolve_escalation(escalation_id, "approved", notes="ok", resolver=gov.reviewers.ensure("alice@example.com"))
    state = await agent.ainvoke(Command(resume="ok"), config)
    assert effects.names() == ["search", "send_email"]
    assert set(results(state)) == {"a1", "a2", "a3"}


def test_model_calls_are_recorded(gov: Governor, tools: dict[str, BaseTool]) -> None:
    model = one_turn(tool_call("search", {"query": "m"}, "m1"))
    agent = create_agent(model, [tools["search"]], middleware=[GovernanceMiddleware(governor=gov, agent_id=AGENT)])
    agent.invoke({"messages": [HumanMessage("go")]})
    entries = gov.audit.query(type="model_call")
    assert len(entries) == 2  # the tool-calling turn and the answer
    first, second = (e["details"] for e in entries)
    assert first["model"] == "ScriptedChatModel" or first["model"]
    assert len(first["request_hash"]) == 64 and len(first["response_hash"]) == 64
    assert first["request_hash"] != second["request_hash"] and first["response_hash"] != second["response_hash"]
    assert all(e["agent_id"] == AGENT for e in entries)
    assert first["duration_ms"] >= 0


def test_agent_name_maps_to_the_agent_id(gov: Governor, tools: dict[str, BaseTool], effects: Effects) -> None:
    model = one_turn(tool_call("search", {"query": "n"}, "n1"))
    agent = create_agent(model, [tools["search"]], name=AGENT, middleware=[GovernanceMiddleware(governor=gov)])
    agent.invoke({"messages": [HumanMessage("go")]})
    assert effects.names() == ["search"]
    assert gov.audit.query(type="policy_decision")[0]["agent_id"] == AGENT


def test_unnamed_agent_denial_says_how_to_name_it(
    gov: Governor, tools: dict[str, BaseTool], effects: Effects, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLAW_AGENT_ID", raising=False)
    model = one_turn(tool_call("search", {"query": "n"}, "u1"))
    agent = create_agent(model, [tools["search"]], middleware=[GovernanceMiddleware(governor=gov)])
    message = results(agent.invoke({"messages": [HumanMessage("go")]}))["u1"]
    assert message.status == "error" and "create_agent(name=...)" in str(message.content)
    assert effects.names() == []


def test_escalation_survives_a_process_restart(tmp_path: Any) -> None:
    """Pause in one process, approve with the CLI, resume in a new process: the tool runs exactly once."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from langchain_itest_support import POLICY

    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "r.yaml").write_text(POLICY)
    script = Path(__file__).with_name("middleware_restart_agent.py")
    claw_gov = str(Path(sys.executable).with_name("claw-gov"))
    dirs = [
        "--policies",
        str(tmp_path / "policies"),
        "--audit",
        str(tmp_path / "audit"),
        "--identities",
        str(tmp_path / "identities"),
    ]

    def step(phase: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, str(script), str(tmp_path), phase], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    def sent() -> int:
        return len(list((tmp_path / "effects").glob("sent-*"))) if (tmp_path / "effects").exists() else 0

    first = step("start")
    (value,) = first["interrupts"]
    assert sent() == 0 and first["answered"] == {}
    again = step("resume")  # a new process resumes before anyone approved: pauses again, nothing sent
    assert [i["escalation_id"] for i in again["interrupts"]] == [value["escalation_id"]]
    assert sent() == 0
    added = subprocess.run(
        [claw_gov, "reviewer", "add", "alice@example.com", *dirs], capture_output=True, text=True, timeout=60
    )
    assert added.returncode == 0, added.stderr
    approve = subprocess.run(
        [
            claw_gov,
            "escalations",
            "approve",
            value["escalation_id"],
            "--resolver",
            "alice@example.com",
            "--notes",
            "ok",
            *dirs,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert approve.returncode == 0, approve.stderr
    final = step("resume")
    assert final["interrupts"] == [] and final["answered"] == {"r1": "success"}
    assert sent() == 1
