"""Model-call receipts through real LangChain runs: every chat model call becomes a ``model_call`` entry,
and a model outside the work contract is refused before the request is sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from claw_governance_langchain import govern_tools
from claw_governance_langchain.models import ModelCallBlocked, ModelReceiptHandler
from claw_governance_langchain.testing import ScriptedChatModel, tool_call
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

from claw_governance import Governor
from claw_governance.jobs.receipts import content_hash

AGENT = "research-agent"


def _governor(tmp_path: Path, models: str) -> Governor:
    (tmp_path / "policies").mkdir(exist_ok=True)
    (tmp_path / "policies" / "p.yaml").write_text(f"""\
agent: {AGENT}
permissions:
  allow: ["tool:search"]
models:
  allow: {models}
receipts: required
""")
    return Governor(tmp_path / "policies", tmp_path / "audit", tmp_path / "ids", load_entry_points=False)


def _receipts(tmp_path: Path) -> list[dict[str, object]]:
    return [
        e
        for p in sorted((tmp_path / "audit").rglob("*.jsonl"))
        for line in p.read_text().splitlines()
        if line.strip() and (e := json.loads(line))["type"] == "model_call"
    ]


@tool
def search(query: str) -> str:
    """Search the web."""
    return f"results for {query}"


def test_every_model_call_of_an_agent_run_is_receipted(tmp_path: Path) -> None:
    gov = _governor(tmp_path, '["scriptedchatmodel/*"]')
    job = gov.start_job("job-lc", agent_id=AGENT, scope=["tool:*"])
    model = ScriptedChatModel(
        replies=[
            AIMessage(
                "",
                tool_calls=[tool_call("search", {"query": "secret plan"}, "call_a")],
                usage_metadata={"input_tokens": 10, "output_tokens": 4, "total_tokens": 14},
            ),
            AIMessage("done"),
        ]
    )
    agent = create_agent(model, govern_tools([search], governor=gov, agent_id=AGENT))
    handler = ModelReceiptHandler(gov, AGENT, job_token=job.token)
    agent.invoke({"messages": [HumanMessage("find the secret plan")]}, config={"callbacks": [handler]})
    gov.close()
    receipts = _receipts(tmp_path)
    assert len(receipts) == len(model.seen) == 2
    first = receipts[0]["details"]
    assert isinstance(first, dict)
    assert first["route"].startswith("scriptedchatmodel/") and first["blocked"] is False
    assert first["tool_call_ids"] == ["call_a"] and first["job_id"] == "job-lc"
    assert first["usage"] == {"input_tokens": 10, "output_tokens": 4, "total_tokens": 14}
    assert first["response_hash"] == content_hash([""])  # the content of the tool-calling answer
    raw = b"".join(p.read_bytes() for p in (tmp_path / "audit").rglob("*.jsonl"))
    assert b"find the secret plan" not in raw  # the prompt itself is never stored


def test_a_model_outside_the_contract_is_never_called(tmp_path: Path) -> None:
    gov = _governor(tmp_path, '["openai/gpt-5*"]')
    model = ScriptedChatModel(replies=[AIMessage("I should not be asked")])
    agent = create_agent(model, govern_tools([search], governor=gov, agent_id=AGENT))
    with pytest.raises(ModelCallBlocked, match="outside the work contract's models"):
        agent.invoke({"messages": [HumanMessage("hi")]}, config={"callbacks": [ModelReceiptHandler(gov, AGENT)]})
    assert model.seen == []  # the request was never sent
    gov.close()
    receipts = _receipts(tmp_path)
    assert len(receipts) == 1 and receipts[0]["details"]["blocked"] is True  # type: ignore[index]


def test_job_tokens_reach_the_governor_through_the_langchain_adapter(tmp_path: Path) -> None:
    """GovernedTool(job_token=...) and GovernanceCallbackHandler(job_token=...) carry the token: a call outside
    the job's scope is denied though the policy allows it, and a revoked job stops the agent."""
    from claw_governance_langchain import GovernanceCallbackHandler, GovernedTool
    from langchain_core.messages import ToolMessage

    gov = _governor(tmp_path, '["scriptedchatmodel/*"]')
    (tmp_path / "policies" / "p.yaml").write_text(f"agent: {AGENT}\npermissions:\n  allow: ['tool:*']\n")
    gov.reload_policies()

    @tool
    def wipe(table: str) -> str:
        """Delete a table."""
        raise AssertionError("must never run")

    job = gov.start_job("job-scope", agent_id=AGENT, scope=["tool:search"])
    governed = [GovernedTool(t, governor=gov, agent_id=AGENT, job_token=job.token) for t in (search, wipe)]
    model = ScriptedChatModel(
        replies=[
            AIMessage(
                "", tool_calls=[tool_call("search", {"query": "q"}, "c1"), tool_call("wipe", {"table": "t"}, "c2")]
            ),
            AIMessage("done"),
        ]
    )
    result = create_agent(model, governed).invoke({"messages": [HumanMessage("go")]})
    messages = {m.tool_call_id: m for m in result["messages"] if isinstance(m, ToolMessage)}
    assert messages["c1"].status != "error" and "results for q" in str(messages["c1"].content)
    assert messages["c2"].status == "error" and "outside the scope of job job-scope" in str(messages["c2"].content)

    gov.revoke_job("job-scope")
    handler = GovernanceCallbackHandler(gov, AGENT, job_token=job.token)
    with pytest.raises(Exception, match="was revoked"):
        search.invoke({"query": "again"}, config={"callbacks": [handler]})
    gov.close()
