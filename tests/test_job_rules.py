"""The contract rules a proof bundle is checked against, over the entries of real governed runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from claw_governance import Governor
from claw_governance.jobs.receipts import ModelCall
from claw_governance.jobs.rules import check_job, job_entries

CONTRACT = """\
agent: billing-agent
permissions:
  allow: ["read:*", "write:*"]
  escalate: [send:email]
models: ["openai/gpt-5*"]
receipts: required
"""


def _entries(tmp_path: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for p in sorted((tmp_path / "logs" / "audit").rglob("*.jsonl"))
        for line in p.read_text().splitlines()
        if line.strip()
    ]


def _run(
    make_governor: Callable[..., Governor], tmp_path: Path, *, receipt: bool = True, stray_model: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any], Any]:
    gov = make_governor(CONTRACT)
    job = gov.start_job("job-7", agent_id="billing-agent", scope=["read:*", "send:*"])
    agent = gov.agent("billing-agent", job_token=job.token)
    if receipt:
        gov.record_model_call(
            ModelCall("billing-agent", "gpt-5", "openai", request="q", response="a", tool_call_ids=["t1"]),
            job_token=job.token,
        )
    if stray_model:
        gov.record_model_call(ModelCall("billing-agent", "gpt-4o", "openai"), job_token=job.token)
    agent.execute("read:invoice", {"n": 1}, lambda ctx: "ok")
    agent.check("write:ledger")  # denied: outside the job's scope
    agent.check("send:email")  # escalates
    gov.agent("billing-agent").check("read:other")  # not under the job: not part of its evidence
    contract = gov.policy.contract("billing-agent")
    claims = job.claims.as_dict()
    gov.close()
    return _entries(tmp_path), claims, contract


def test_a_clean_run_keeps_to_its_contract(make_governor: Callable[..., Governor], tmp_path: Path) -> None:
    entries, claims, contract = _run(make_governor, tmp_path)
    mine = job_entries(entries, "job-7")
    kinds = [e["type"] for e in mine]
    assert kinds.count("policy_decision") == 3 and "model_call" in kinds and "escalation" in kinds
    assert all(e.get("action") != "read:other" for e in mine)
    assert check_job(mine, claims, contract) == []


def test_missing_receipts_are_named(make_governor: Callable[..., Governor], tmp_path: Path) -> None:
    entries, claims, contract = _run(make_governor, tmp_path, receipt=False)
    problems = check_job(job_entries(entries, "job-7"), claims, contract)
    assert problems == ["receipts: required, but the job has tool calls and no model_call receipt"]


def test_a_model_call_outside_the_contract_is_named(make_governor: Callable[..., Governor], tmp_path: Path) -> None:
    entries, claims, contract = _run(make_governor, tmp_path, stray_model=True)
    problems = check_job(job_entries(entries, "job-7"), claims, contract)
    assert len(problems) == 1 and "model call outside the contract" in problems[0]


def test_forged_evidence_is_named(make_governor: Callable[..., Governor], tmp_path: Path) -> None:
    entries, claims, contract = _run(make_governor, tmp_path)
    mine = [dict(e) for e in job_entries(entries, "job-7")]
    denied = next(e for e in mine if e["type"] == "policy_decision" and e["action"] == "write:ledger")
    denied["decision"] = {**denied["decision"], "allowed": True, "outcome": "allow"}  # claim it was allowed
    other = next(e for e in mine if e["type"] == "policy_decision" and e["action"] == "read:invoice")
    other["policy_hash"] = "0" * 64
    problems = check_job(mine, claims, contract)
    assert any("'write:ledger' was allowed outside the job's scope" in p for p in problems)
    assert any("not the pinned" in p for p in problems)
    started = [e for e in mine if not (e["type"] == "job" and e["details"]["event"] == "started")]
    assert "the job's 'started' entry is missing" in check_job(started, claims, contract)
