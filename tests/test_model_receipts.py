"""Model-call receipts and model routes in the work contract (core API; adapters are tested end to end)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from claw_governance import Governor, Outcome
from claw_governance.jobs.receipts import ModelCall, content_hash, model_route

CONTRACT = """\
agent: billing-agent
permissions:
  allow: ["read:*"]
models:
  allow: ["openai/gpt-5*", "anthropic/*"]
  deny: ["anthropic/claude-legacy*"]
receipts: required
"""


def _entries(tmp_path: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for p in sorted((tmp_path / "logs" / "audit").rglob("*.jsonl"))
        for line in p.read_text().splitlines()
        if line.strip()
    ]


def test_model_routes_follow_the_contract(make_governor: Callable[..., Governor], tmp_path: Path) -> None:
    gov = make_governor(CONTRACT)
    assert gov.check_model("billing-agent", "gpt-5-mini", "openai").outcome is Outcome.ALLOW
    assert gov.check_model("billing-agent", "OpenAI/GPT-5 ").outcome is Outcome.ALLOW  # normalised
    assert gov.check_model("billing-agent", "anthropic/claude-x").outcome is Outcome.ALLOW
    outside = gov.check_model("billing-agent", "gpt-4o", "openai")
    assert outside.outcome is Outcome.DENY and "outside the work contract's models" in outside.reason
    denied = gov.check_model("billing-agent", "claude-legacy-2", "anthropic")
    assert denied.outcome is Outcome.DENY and 'models.deny "anthropic/claude-legacy*"' in denied.reason
    # look-alike characters cannot pass as an allowed route: the route must match after normalisation
    assert gov.check_model("billing-agent", "openai/gpt-4o\u200b").outcome is Outcome.DENY
    gov.close()
    violations = [e for e in _entries(tmp_path) if e["type"] == "model_call"]
    assert len(violations) == 3 and all(e["details"]["blocked"] for e in violations)


def test_no_contract_means_no_model_restriction(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor("agent: a\npermissions:\n  allow: ['*']\n")
    assert gov.check_model("a", "anything/at-all").outcome is Outcome.ALLOW


def test_a_receipt_holds_hashes_not_prompts(make_governor: Callable[..., Governor], tmp_path: Path) -> None:
    gov = make_governor(CONTRACT)
    job = gov.start_job("job-r", agent_id="billing-agent", scope=["read:*"])
    request = [{"role": "user", "content": "the secret plan is hunter2-plan"}]
    gov.record_model_call(
        ModelCall(
            "billing-agent",
            "gpt-5",
            "openai",
            request=request,
            response="ok, calling",
            usage={"input_tokens": 12, "output_tokens": 3, "bogus": "x"},  # type: ignore[dict-item]
            duration_ms=41.5,
            tool_call_ids=["call_1"],
            framework="langchain",
        ),
        job_token=job.token,
    )
    gov.record_model_call(ModelCall("billing-agent", "gpt-4o", "openai"))  # outside the contract: a violation
    gov.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "logs" / "audit").rglob("*.jsonl"))
    assert b"hunter2-plan" not in raw
    receipts = [e for e in _entries(tmp_path) if e["type"] == "model_call"]
    first, second = receipts
    d = first["details"]
    assert d["route"] == "openai/gpt-5" and d["request_hash"] == content_hash(request)
    assert d["response_hash"] == content_hash("ok, calling") and d["usage"] == {"input_tokens": 12, "output_tokens": 3}
    assert d["tool_call_ids"] == ["call_1"] and d["job_id"] == "job-r" and d["violation"] is None
    assert "outside the work contract" in second["details"]["violation"]


def test_route_normalisation() -> None:
    assert model_route("GPT-5", "OpenAI") == "openai/gpt-5"
    assert model_route("openrouter/meta/llama") == "openrouter/meta/llama"
    assert model_route("OpenAI/gpt-5", "openai") == "openai/gpt-5"  # an id that starts with its provider
    # the provider always leads: a model id cannot name another provider's route (red-team finding)
    assert model_route("openai/gpt-5", "openrouter") == "openrouter/openai/gpt-5"
    assert model_route("meta/llama", "ignored") == "ignored/meta/llama"


def test_a_model_id_with_a_slash_cannot_borrow_another_providers_route(
    make_governor: Callable[..., Governor],
) -> None:
    gov = make_governor(CONTRACT + "---\nagent: b\npermissions:\n  allow: ['*']\nmodels:\n  deny: ['openrouter/*']\n")
    for model, provider in [
        ("openai/gpt-5", "openrouter"),  # served by openrouter, not by openai
        ("openai/gpt-5", "deepseek"),
        ("openai/../deepseek-r1", "deepseek"),
        ("openai/../deepseek-r1", None),  # no provider: a dot segment is refused, not matched by openai/*
        ("openai//gpt-5", None),
        ("", "openai"),
    ]:
        decision = gov.check_model("billing-agent", model, provider)
        assert decision.outcome is Outcome.DENY, (model, provider, decision.reason)
    assert gov.check_model("b", "anthropic/claude-3", "openrouter").outcome is Outcome.DENY
    assert gov.check_model("b", "claude-3", "anthropic").outcome is Outcome.ALLOW


def test_a_closed_governor_refuses_model_calls(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(CONTRACT)
    gov.close()
    d = gov.check_model("billing-agent", "gpt-5", "openai")
    assert d.outcome is Outcome.DENY and d.reason == "governor is closed"
    gov.record_model_call(ModelCall("billing-agent", "gpt-5", "openai"))  # never raises
