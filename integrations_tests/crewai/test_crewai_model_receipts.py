"""Model-call receipts through real crewai kickoffs driven by a scripted LLM (crewai's model-call hooks)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import HERE, run_python


@pytest.fixture(scope="module")
def receipts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("crewai-receipts")
    out = base / "out"
    out.mkdir()
    proc = run_python([str(HERE / "crewai_model_receipts.py"), str(out)], base)
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
