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
    return [e for p in sorted((tmp_path / "audit").rglob("*.jsonl")) for line in p.read_text().splitlines()
            if line.strip() and (e := json.loads(line))["type"] == "model_call"]


@tool
def search(query: str) -> str:
    """Search the web."""
    return f"results for {query}"


def test_every_model_call_of_an_agent_run_is_receipted(tmp_path: Path) -> None:
    gov = _governor(tmp_path, '["scriptedchatmodel/*"]')
    job = gov.start_job("job-lc", agent_id=AGENT, scope=["tool:*"])
    model = ScriptedChatModel(replies=[
        AIMessage("", tool_calls=[tool_call("search", {"query": "secret plan"}, "call_a")],
                  usage_metadata={"input_tokens": 10, "output_tokens": 4, "total_tokens": 14}),
        AIMessage("done"),
    ])
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
        agent.invoke({"messages": [HumanMessage("hi")]},
                     config={"callbacks": [ModelReceiptHandler(gov, AGENT)]})
    assert model.seen == []  # the request was never sent
    gov.close()
    receipts = _receipts(tmp_path)
    assert len(receipts) == 1 and receipts[0]["details"]["blocked"] is True  # type: ignore[index]
