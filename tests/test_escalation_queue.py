"""Escalation lifecycle through the Governor: storage, one-shot grants, expiry, waiting, errors."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from claw_governance import Governor
from claw_governance.errors import EscalationError
from claw_governance.model import EscalationStatus, Outcome

FAST = {"state_sync_interval": 0.1}
POLICY = """\
agent: bot
permissions:
  allow: ["read:*"]
  escalate:
    - action: refund
      condition: amount > 500
      reason: Refunds over $500 need finance approval
      timeout: 1h
    - action: quick
      timeout: 0.3
    - wipe
sensitive_fields: [customer_pin]
"""


@pytest.fixture
def gov(make_governor: Callable[..., Governor]) -> Governor:
    return make_governor(POLICY, **FAST)


def test_escalate_stores_a_redacted_escalation_and_audits_it(gov: Governor) -> None:
    d = gov.agent("bot").check("refund", {"amount": 600, "password": "hunter2", "customer_pin": "1234"})
    assert d.outcome is Outcome.ESCALATE and d.escalation_id
    esc = gov.escalations.get(d.escalation_id)
    assert esc is not None and esc.status is EscalationStatus.PENDING
    assert (esc.agent_id, esc.action) == ("bot", "refund")
    assert esc.reason.endswith("Refunds over $500 need finance approval")
    assert esc.rule is not None and esc.rule.endswith("policy.yaml:5")
    assert esc.context["amount"] == 600 and esc.context["password"] != "hunter2"
    assert esc.context["customer_pin"] != "1234"
    assert esc.expires - esc.created == pytest.approx(3600)
    assert [e.id for e in gov.escalations.pending()] == [esc.id]
    (entry,) = gov.audit.query(type="escalation")
    assert entry["details"]["escalation_id"] == esc.id and entry["details"]["event"] == "opened"
    assert "hunter2" not in str(entry)


def test_default_timeout_is_escalation_timeout_hours(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(POLICY, escalation_timeout_hours=2, **FAST)
    esc = gov.escalations.get(gov.agent("bot").check("wipe").escalation_id or "")
    assert esc is not None and esc.expires - esc.created == pytest.approx(7200)


def test_approval_allows_the_identical_call_once(gov: Governor) -> None:
    agent, runs = gov.agent("bot"), []
    args = {"orderId": "A-1", "amount": 750}
    first = agent.execute("refund", args, lambda c: runs.append(c["amount"]))
    assert first.requires_escalation and runs == []
    resolved = gov.resolve_escalation(
        first.escalation_id or "", "approved", notes="verified", resolver=gov.reviewers.ensure("alice")
    )
    assert (resolved.status, resolved.resolver, resolved.notes) == (EscalationStatus.APPROVED, "alice", "verified")
    other = agent.execute("refund", {"orderId": "A-1", "amount": 751}, lambda c: runs.append(c["amount"]))
    assert other.requires_escalation and runs == []  # different arguments: not covered
    again = agent.execute("refund", args, lambda c: runs.append(c["amount"]))
    assert again.success and again.decision.escalation_id == first.escalation_id and runs == [750]
    third = agent.execute("refund", args, lambda c: runs.append(c["amount"]))
    assert third.requires_escalation and third.escalation_id != first.escalation_id and runs == [750]
    (entry,) = gov.audit.query(type="escalation_resolved")
    assert entry["details"]["resolver"] == "alice" and entry["details"]["notes"] == "verified"


def test_denial_grants_nothing(gov: Governor) -> None:
    agent = gov.agent("bot")
    d = agent.check("wipe", {"disk": 1})
    gov.resolve_escalation(d.escalation_id or "", "denied", notes="no", resolver=gov.reviewers.ensure("bob"))
    assert agent.check("wipe", {"disk": 1}).outcome is Outcome.ESCALATE


def test_second_resolution_unknown_and_expired_ids_are_clear_errors(gov: Governor) -> None:
    agent = gov.agent("bot")
    d = agent.check("wipe")
    gov.resolve_escalation(d.escalation_id or "", "approved", notes="ok", resolver=gov.reviewers.ensure("alice"))
    with pytest.raises(EscalationError, match="already approved"):
        gov.resolve_escalation(
            d.escalation_id or "", "denied", notes="changed my mind", resolver=gov.reviewers.ensure("bob")
        )
    with pytest.raises(EscalationError, match="no escalation with id"):
        gov.resolve_escalation("0" * 32, "approved", notes="ok", resolver=gov.reviewers.ensure("alice"))
    with pytest.raises(EscalationError, match="resolver"):
        gov.resolve_escalation(d.escalation_id or "", "approved", notes="ok", resolver=" ")
    quick = agent.check("quick")
    time.sleep(0.35)
    with pytest.raises(EscalationError, match="expired"):
        gov.resolve_escalation(
            quick.escalation_id or "", "approved", notes="late", resolver=gov.reviewers.ensure("alice")
        )
    assert agent.check("quick").outcome is Outcome.ESCALATE  # no grant came of it


def test_expiry_denies_and_is_audited(gov: Governor) -> None:
    agent = gov.agent("bot")
    started = time.monotonic()
    r = agent.execute("quick", {}, lambda c: pytest.fail("must not run"), wait_for_approval=5)
    assert time.monotonic() - started < 2  # waiting stops at expiry, not at the 5 s limit
    assert r.decision.outcome is Outcome.DENY and "expired" in r.decision.reason
    esc = gov.escalations.get(r.escalation_id or "")
    assert esc is not None and esc.status is EscalationStatus.EXPIRED
    assert gov.escalations.pending() == []
    assert [e["details"]["event"] for e in gov.audit.query(type="escalation")] == ["opened", "expired"]


def test_waiting_caller_runs_once_after_approval_in_another_thread(gov: Governor) -> None:
    agent, runs = gov.agent("bot"), []

    def approve_when_pending() -> None:
        while not gov.escalations.pending():
            time.sleep(0.01)
        gov.resolve_escalation(
            gov.escalations.pending()[0].id, "approved", notes="ok", resolver=gov.reviewers.ensure("alice")
        )

    t = threading.Thread(target=approve_when_pending)
    t.start()
    r = agent.execute("refund", {"amount": 900}, lambda c: runs.append(1) or "refunded", wait_for_approval=10)
    t.join()
    assert r.success and r.output == "refunded" and runs == [1]


def test_waiting_gives_up_after_the_limit(gov: Governor) -> None:
    r = gov.agent("bot").execute("wipe", {}, lambda c: pytest.fail("must not run"), wait_for_approval=0.2)
    assert r.decision.outcome is Outcome.DENY and "no answer in time" in r.decision.reason
    esc = gov.escalations.get(r.escalation_id or "")
    assert esc is not None and esc.status is EscalationStatus.PENDING  # still open for a human


def test_denied_while_waiting(gov: Governor) -> None:
    def deny_when_pending() -> None:
        while not gov.escalations.pending():
            time.sleep(0.01)
        gov.resolve_escalation(
            gov.escalations.pending()[0].id, "denied", notes="no", resolver=gov.reviewers.ensure("bob")
        )

    threading.Thread(target=deny_when_pending).start()
    r = gov.agent("bot").execute("wipe", {}, lambda c: pytest.fail("must not run"), wait_for_approval=10)
    assert r.decision.outcome is Outcome.DENY and "denied" in r.decision.reason


def test_async_caller_awaits_approval(gov: Governor) -> None:
    async def main() -> list[int]:
        runs: list[int] = []

        async def tool(ctx: dict[str, object]) -> str:
            runs.append(1)
            return "ok"

        task = asyncio.create_task(gov.agent("bot").aexecute("wipe", {"x": 1}, tool, wait_for_approval=10))
        while not gov.escalations.pending():
            await asyncio.sleep(0.01)
        gov.resolve_escalation(
            gov.escalations.pending()[0].id, "approved", notes="ok", resolver=gov.reviewers.ensure("alice")
        )
        result = await task
        assert result.success
        return runs

    assert asyncio.run(main()) == [1]


def test_grant_is_consumed_once_under_concurrency(gov: Governor) -> None:
    agent = gov.agent("bot")
    d = agent.check("wipe", {"n": 1})
    gov.resolve_escalation(d.escalation_id or "", "approved", notes="ok", resolver=gov.reviewers.ensure("alice"))
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        results.append(agent.check("wipe", {"n": 1}).allowed)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
