"""Model-call receipts through real crewai kickoffs driven by a scripted LLM (crewai's model-call hooks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def receipts(run_crewai_python: Any, crewai_base: Path) -> dict[str, Any]:
    out = crewai_base / "receipts"
    out.mkdir()
    proc = run_crewai_python([str(HERE / "crewai_model_receipts.py"), str(out)])
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((out / "results.json").read_text())  # type: ignore[no-any-return]


def _model_calls(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in result["audit"] if e["type"] == "model_call"]


def test_every_crewai_model_call_is_receipted(receipts: dict[str, Any]) -> None:
    allowed = receipts["allowed"]
    assert allowed["error"] is None and allowed["output"] == "fine"
    calls = _model_calls(allowed)
    assert len(calls) == allowed["llm_calls"] == 2
    for entry in calls:
        d = entry["details"]
        assert d["route"] == "openai/gpt-5-mini" and d["framework"] == "crewai" and d["job_id"] == "crew-job"
        assert len(d["request_hash"]) == 64 and len(d["response_hash"]) == 64 and d["blocked"] is False


def test_a_crewai_model_outside_the_contract_is_blocked_before_it_is_called(receipts: dict[str, Any]) -> None:
    blocked = receipts["blocked"]
    assert blocked["llm_calls"] == 0  # the scripted model was never asked
    assert "outside the work contract's models" in (blocked["error"] or "")
    calls = _model_calls(blocked)
    assert len(calls) == 1 and calls[0]["details"]["blocked"] is True
    assert not [e for e in blocked["audit"] if e["type"] == "agent_action"]  # no tool ran either


def test_enable_with_a_job_token_scopes_tools_and_receipts_models(receipts: dict[str, Any]) -> None:
    enabled = receipts["enabled"]
    assert enabled["wiped"] is False  # outside the job's scope: never ran
    decisions = {e["action"]: e for e in enabled["audit"] if e["type"] == "policy_decision"}
    assert decisions["tool:lookup"]["decision"]["allowed"] is True
    wipe = decisions["tool:wipe"]["decision"]
    assert wipe["allowed"] is False and "outside the scope of job scoped-job" in wipe["reason"]
    assert all(e["details"]["job_id"] == "scoped-job" for e in decisions.values())
    models = _model_calls(enabled)
    assert models and all(m["details"]["job_id"] == "scoped-job" and not m["details"]["blocked"] for m in models)
