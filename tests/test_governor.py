"""The Governor API of DESIGN.md: check, execute, aexecute, escalations, reload, trust gate, health."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from claw_governance import ConfigError, EscalationError, Governor, Outcome
from tests.conftest import SEED_POLICY

MakeGov = Callable[..., Governor]


def test_execute_runs_only_on_allow(make_governor: MakeGov) -> None:
    agent = make_governor().agent("customer-service-agent")
    calls: list[dict[str, object]] = []
    ok = agent.execute("read:customer_data", {"customerId": 12345}, lambda ctx: calls.append(ctx) or "data")
    assert ok.success and ok.output == "data" and ok.error is None
    assert ok.decision.allowed and not ok.requires_escalation
    assert calls == [{"customerId": 12345}]
    denied = agent.execute("delete:customer", {"customerId": 1}, lambda ctx: calls.append(ctx))
    assert not denied.success and denied.decision.outcome is Outcome.DENY and "delete:*" in (denied.error or "")
    escalated = agent.execute("refund_requests", {"amount": 900}, lambda ctx: calls.append(ctx))
    assert not escalated.success and escalated.requires_escalation and escalated.escalation_id
    assert len(calls) == 1


def test_outcomes_move_trust_and_are_audited(make_governor: MakeGov) -> None:
    gov = make_governor()
    agent = gov.agent("customer-service-agent")
    start = gov.trust_score("customer-service-agent")
    assert start == 100
    agent.execute("read:customer_data", {}, lambda ctx: 1)
    assert gov.trust_score("customer-service-agent") == start  # at the ceiling (100) a success adds nothing

    def fails(ctx: dict[str, object]) -> None:
        raise ValueError("backend down")

    result = agent.execute("read:customer_data", {}, fails)
    assert not result.success and result.error == "ValueError: backend down"
    assert gov.trust_score("customer-service-agent") == start - 5
    actions = [e for e in gov.audit.entries() if e["type"] == "agent_action"]
    assert [a["details"]["success"] for a in actions] == [True, False]
    assert actions[1]["details"]["error"] == "ValueError: backend down"


async def test_aexecute_with_async_and_sync_functions(make_governor: MakeGov) -> None:
    agent = make_governor().agent("customer-service-agent")

    async def fetch(ctx: dict[str, object]) -> str:
        await asyncio.sleep(0)
        return f"customer {ctx['customerId']}"

    result = await agent.aexecute("read:customer_data", {"customerId": 7}, fetch)
    assert result.success and result.output == "customer 7"
    result = await agent.aexecute("read:customer_data", {"customerId": 8}, lambda ctx: ctx["customerId"])
    assert result.output == 8
    denied = await agent.aexecute("update:payment_info", {}, fetch)
    assert not denied.success and denied.decision.outcome is Outcome.DENY


def test_execute_rejects_async_functions(make_governor: MakeGov) -> None:
    agent = make_governor().agent("customer-service-agent")

    async def fetch(ctx: dict[str, object]) -> int:
        return 1

    result = agent.execute("read:customer_data", {}, fetch)
    assert not result.success and "aexecute" in (result.error or "")


def test_escalation_lifecycle(make_governor: MakeGov) -> None:
    gov = make_governor()
    agent = gov.agent("customer-service-agent")
    ran: list[object] = []
    first = agent.execute("account_deletion", {"accountId": 1}, lambda ctx: ran.append(ctx))
    assert first.requires_escalation
    pending = gov.escalations.pending()
    assert [e.id for e in pending] == [first.escalation_id]
    with pytest.raises(EscalationError):
        gov.resolve_escalation(first.escalation_id or "", "approved", notes="ok")  # resolver is required
    gov.resolve_escalation(
        first.escalation_id or "",
        "approved",
        notes="verified by phone",
        resolver=gov.reviewers.ensure("alice@example.com"),
    )
    with pytest.raises(EscalationError):
        gov.resolve_escalation(
            first.escalation_id or "", "denied", resolver=gov.reviewers.ensure("bob@example.com"), notes="ok"
        )
    with pytest.raises(EscalationError):
        gov.resolve_escalation("no-such-id", "approved", resolver=gov.reviewers.ensure("bob@example.com"), notes="ok")
    other = agent.execute("account_deletion", {"accountId": 2}, lambda ctx: ran.append(ctx))
    assert other.requires_escalation  # other arguments: not covered
    retry = agent.execute("account_deletion", {"accountId": 1}, lambda ctx: ran.append(ctx))
    assert retry.success and retry.decision.escalation_id == first.escalation_id
    again = agent.execute("account_deletion", {"accountId": 1}, lambda ctx: ran.append(ctx))
    assert again.requires_escalation  # the grant was used once
    assert ran == [{"accountId": 1}]
    resolved = [e for e in gov.audit.entries() if e["type"] == "escalation_resolved"]
    assert resolved[0]["details"]["resolver"] == "alice@example.com"


def test_denied_escalation_stays_denied(make_governor: MakeGov) -> None:
    gov = make_governor()
    agent = gov.agent("customer-service-agent")
    d = agent.check("legal_inquiries", {"case": 9})
    gov.resolve_escalation(d.escalation_id or "", "denied", notes="no", resolver=gov.reviewers.ensure("carol"))
    assert agent.check("legal_inquiries", {"case": 9}).outcome is Outcome.ESCALATE  # a new request, not a grant


def test_wait_for_approval_sync_and_async(make_governor: MakeGov) -> None:
    gov = make_governor()
    agent = gov.agent("customer-service-agent")

    def approve_when_pending(decision: str) -> None:
        for _ in range(200):
            pending = gov.escalations.pending()
            if pending:
                gov.resolve_escalation(pending[0].id, decision, notes="n", resolver=gov.reviewers.ensure("r"))
                return
            time.sleep(0.01)

    threading.Thread(target=approve_when_pending, args=("approved",)).start()
    result = agent.execute("refund_requests", {"amount": 1}, lambda ctx: "refunded", wait_for_approval=10)
    assert result.success and result.output == "refunded"

    async def denied() -> None:
        threading.Thread(target=approve_when_pending, args=("denied",)).start()
        result = await agent.aexecute("refund_requests", {"amount": 2}, lambda ctx: "no", wait_for_approval=10)
        assert not result.success and "denied" in (result.error or "")

    asyncio.run(denied())
    timed_out = agent.execute("refund_requests", {"amount": 3}, lambda ctx: "no", wait_for_approval=0.2)
    assert not timed_out.success and timed_out.decision.outcome is Outcome.DENY


def test_reload_keeps_last_good_policy_and_reports(make_governor: MakeGov, tmp_path: Path) -> None:
    gov = make_governor("agent: a\npermissions: {allow: [x]}\n")
    agent = gov.agent("a")
    first_hash = gov.policy.hash
    assert agent.check("x").allowed
    (tmp_path / "policies" / "policy.yaml").write_text("agent: a\npermissions: {allow: [x, y}\n")
    result = gov.reload_policies()
    assert result.error and "policy.yaml:" in result.error and not result.changed
    assert gov.policy.hash == first_hash and agent.check("x").allowed and not agent.check("y").allowed
    health = gov.health_check()
    assert health["status"] == "degraded" and health["components"]["policy"]["last_reload_error"]
    (tmp_path / "policies" / "policy.yaml").write_text("agent: a\npermissions: {allow: [y]}\n")
    ok = gov.reload_policies()
    assert ok.changed and ok.error is None and gov.policy.hash != first_hash
    assert agent.check("y").allowed and not agent.check("x").allowed
    assert gov.health_check()["components"]["policy"]["status"] == "ok"
    reloads = [e for e in gov.audit.entries() if e["type"] == "policy_reload"]
    assert [r["details"]["ok"] for r in reloads] == [False, True]
    decisions = [e for e in gov.audit.entries() if e["type"] == "policy_decision"]
    assert decisions[0]["policy_hash"] == first_hash and decisions[-1]["policy_hash"] == ok.policy_hash


def test_reload_interval_picks_up_changes(make_governor: MakeGov, tmp_path: Path) -> None:
    gov = make_governor("agent: a\npermissions: {allow: [x]}\n", policy_reload_interval=0.05)
    agent = gov.agent("a")
    assert not agent.check("y").allowed
    time.sleep(0.02)
    (tmp_path / "policies" / "policy.yaml").write_text("agent: a\npermissions: {allow: [x, y]}\n")
    deadline = time.monotonic() + 5
    while not agent.check("y").allowed:
        assert time.monotonic() < deadline, "hot reload did not happen"
        time.sleep(0.05)


def test_trust_gate_uses_policy_min_score(make_governor: MakeGov) -> None:
    gov = make_governor("agent: a\npermissions: {allow: ['*']}\ntrust: {min_score: 90, failure: -20}\n")
    agent = gov.agent("a")

    def boom(ctx: dict[str, object]) -> None:
        raise RuntimeError("x")

    assert agent.execute("t", {}, boom).decision.allowed  # 100 -> 80
    denied = agent.check("t")
    assert denied.outcome is Outcome.DENY and denied.stage == "trust" and "below the minimum 90" in denied.reason


def test_sensitive_fields_are_redacted_in_the_trail(make_governor: MakeGov) -> None:
    gov = make_governor(SEED_POLICY.replace("audit:", "sensitive_fields: [customer_ssn]\naudit:"))
    gov.agent("customer-service-agent").execute(
        "read:customer_data",
        {"customer_ssn": "078-05-1120", "Api-Key": "k", "nested": [{"password": "p"}]},
        lambda ctx: {"token": "t", "note": "card 4111 1111 1111 1111"},
    )
    text = "\n".join(str(e) for e in gov.audit.entries())
    for secret in ("078-05-1120", "hunter", "'k'", "'p'", "'t'", "4111 1111 1111 1111"):
        assert secret not in text, secret


def test_rate_limits_are_enforced(make_governor: MakeGov) -> None:
    gov = make_governor("agent: a\npermissions: {allow: ['send:*']}\nrate_limits: {'send:*': 2/minute}\n")
    agent = gov.agent("a")
    assert agent.check("send:x").allowed and agent.check("send:y").allowed
    third = agent.check("send:z")
    assert third.outcome is Outcome.DENY and "Rate limit 2" in third.reason


def test_audit_level_metadata_keeps_arguments_out(make_governor: MakeGov) -> None:
    gov = make_governor("agent: a\npermissions: {allow: ['*']}\naudit: {level: metadata}\n")
    gov.agent("a").execute("t", {"customer": "Jane Roe"}, lambda ctx: "Jane's file")
    text = "\n".join(str(e) for e in gov.audit.entries())
    assert "Jane" not in text and "args_hash" in text


def test_from_env_reads_the_seed_variables(
    tmp_path: Path, write_policy: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_policy("agent: a\npermissions: {allow: [x]}\n")
    monkeypatch.setenv("POLICY_PATH", str(tmp_path / "policies"))
    monkeypatch.setenv("AUDIT_PATH", str(tmp_path / "audit"))
    monkeypatch.setenv("IDENTITY_PATH", str(tmp_path / "ids"))
    monkeypatch.setenv("POLICY_RELOAD_INTERVAL", "60000")
    monkeypatch.setenv("IDENTITY_MIN_TRUST_SCORE", "70")
    monkeypatch.setenv("ESCALATION_TIMEOUT_HOURS", "2")
    with Governor.from_env(load_entry_points=False) as gov:
        assert gov.config.policy_reload_interval == 60.0 and gov.config.min_trust_score == 70
        assert gov.config.escalation_timeout_hours == 2.0
        assert gov.agent("a").check("x").allowed
    monkeypatch.setenv("IDENTITY_MIN_TRUST_SCORE", "lots")
    with pytest.raises(ConfigError, match="IDENTITY_MIN_TRUST_SCORE"):
        Governor.from_env()


def test_bad_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="durability"):
        Governor(None, tmp_path / "a", tmp_path / "i", durability="sometimes")
    with pytest.raises(ConfigError, match="unknown"):
        Governor(None, tmp_path / "a", tmp_path / "i", no_such_setting=1)


def test_health_and_close(make_governor: MakeGov) -> None:
    gov = make_governor()
    health = gov.health_check()
    assert health["status"] == "ok"
    assert {"policy", "audit", "plugins"} <= set(health["components"])
    assert health["components"]["policy"]["rules"] == 8
    gov.close()
    gov.close()  # idempotent


def test_context_manager_closes(tmp_path: Path, write_policy: Callable[..., Path]) -> None:
    folder = write_policy(SEED_POLICY)
    with Governor(folder, tmp_path / "audit", tmp_path / "ids", load_entry_points=False) as gov:
        gov.agent("customer-service-agent").check("read:customer_data")
    assert gov.health_check()["closed"] is True
    assert gov.compliance_report("2000-01-01", "2100-01-01")["summary"]["total_decisions"] == 1
