"""The seed JavaScript toolkit's own policy files, example and integration test, as a user moving over runs them.

The policy files in tests/data/seed-toolkit/ are the seed's, byte for byte (checked below). The scenarios of
its ``examples/basic-usage.js`` and ``test/integration-test.js`` are ported one for one; where the seed only
printed, these assert (its test "passed" with a compliance report counting zero decisions).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from claw_governance import Governor, Outcome
from claw_governance.cli import build_cli
from claw_governance.cli.policy import lint_path
from claw_governance.errors import PolicyError
from claw_governance.identity import keys as K
from claw_governance.policy import load_policy_set

SEED = Path(__file__).parent / "data" / "seed-toolkit"
CUSTOMER = SEED / "policies" / "customer-service-agent.yaml"
CODE_REVIEW = SEED / "policies" / "code-review-agent.yaml"
SHA256 = {
    CUSTOMER: "208553a105c958e71f230f50f1ca84638b50b106e8f13d7ee9443b31ce806670",
    CODE_REVIEW: "85e1b2845f1b86785560d52768dd5e395a3df16996b204921a3d423143fd1869",
}


class Clock:
    """A monotonic clock the rate limits read; tests move it instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def seed_governor(tmp_path: Path) -> Iterator[Callable[..., Governor]]:
    made: list[Governor] = []

    def make(policy: Path = CUSTOMER, **settings: object) -> Governor:
        folder = tmp_path / "policies"
        folder.mkdir(exist_ok=True)
        shutil.copyfile(policy, folder / policy.name)  # as the seed's test copies its policy into place
        settings.setdefault("load_entry_points", False)
        gov = Governor(folder, tmp_path / "audit", tmp_path / "identities", **settings)
        made.append(gov)
        return gov

    yield make
    for gov in made:
        gov.close()


def test_the_files_are_the_seeds_verbatim() -> None:
    for path, digest in SHA256.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{path} was edited"
    assert "Permission is hereby granted" in (SEED / "LICENSE").read_text()


# ------------------------------------------------------------------------------------- the files load


def test_customer_service_policy_loads_unchanged_and_means_what_it_says() -> None:
    policy = load_policy_set(CUSTOMER)
    agent = policy.for_agent("customer-service-agent")
    assert agent is not None
    assert (agent.trust.min_score, agent.trust.recovery_score) == (70, 80)  # minimum_score, recovery_threshold
    assert {"credit_card", "ssn", "password"} <= agent.sensitive_fields  # audit.sensitive_fields
    assert policy.metadata("customer-service-agent") == {
        "name": "Customer Service Agent",
        "description": "Handles customer support tickets and inquiries",
        "version": "1.0",
        "owner": "support-team",
    }
    (limit,) = agent.rate_limits.lookup("anything:at_all")  # actions_per_minute: every call, any action
    assert (limit.limit, limit.period_seconds, limit.source) == (100, 60, f"{CUSTOMER}:52")
    (escalations,) = agent.escalation_limits
    assert (escalations.limit, escalations.period_seconds, escalations.source) == (10, 3600, f"{CUSTOMER}:53")
    assert [f for f in lint_path(CUSTOMER) if f.level == "error"] == []


def test_code_review_policy_is_refused_with_what_to_write_instead(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy_set(CODE_REVIEW)
    message = str(caught.value)
    assert message.startswith(f"{CODE_REVIEW}:54: rate_limits.reviews_per_hour is not supported")
    assert '"update:review_status": "50/hour"' in message and "\n" not in message
    errors = [f for f in lint_path(CODE_REVIEW) if f.level == "error"]  # lint reports every error of the file
    assert str(errors[0]) == f"{CODE_REVIEW}:54: error: {caught.value.detail}" and len(errors) == 2

    # Doing what the message says (twice: the second key has its own message) makes the file load.
    text = CODE_REVIEW.read_text()
    fixed = tmp_path / "code-review-agent.yaml"
    fixed.write_text(text.replace("reviews_per_hour: 50", '"update:review_status": "50/hour"'))
    with pytest.raises(
        PolicyError,
        match=r":55: rate_limits.comments_per_review is not supported.*"
        r'"create:review_comment": "100/hour"',
    ):
        load_policy_set(fixed)
    fixed.write_text(
        text.replace("reviews_per_hour: 50", '"update:review_status": "50/hour"').replace(
            "comments_per_review: 100", '"create:review_comment": "100/hour"'
        )
    )
    policy = load_policy_set(fixed)
    agent = policy.for_agent("code-review-agent")
    assert agent is not None and (agent.trust.min_score, agent.trust.recovery_score) == (80, 90)
    assert {"api_key", "token", "secret"} <= agent.sensitive_fields
    assert policy.metadata("code-review-agent")["owner"] == "engineering-team"
    assert [rl.limit for rl in agent.rate_limits.lookup("update:review_status")] == [50]


@pytest.mark.parametrize(
    ("snippet", "line", "message"),
    [
        ("rate_limits: {reviews_per_hour: 5}", 2, "rate_limits.reviews_per_hour is not supported"),
        ("rate_limits: {actions_per_minute: 0}", 2, "actions_per_minute must be a whole number of at least 1"),
        ("rate_limits: {actions_per_minute: 10/minute}", 2, "actions_per_minute must be a whole number"),
        ("rate_limits: {'send:*': 10}", 2, 'must look like "10/minute" (a bare number is only understood for'),
        ("rate_limits: {tickets_per_day: 10}", 2, 'must look like "10/minute"'),
        ("trust: {minimum_score: 70, min_score: 60}", 2, "trust.minimum_score and trust.min_score are the same"),
        ("trust: {recovery_threshold: 'high'}", 2, "trust.recovery_score must be a whole number"),
        ("metadata: [a, b]", 2, "'metadata' must be a mapping"),
        ("audit: {sensitive_fields: secret}", 2, "'audit.sensitive_fields' must be a list"),
    ],
)
def test_seed_keys_with_bad_values_are_one_line_errors(tmp_path: Path, snippet: str, line: int, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(f"agent: a\n{snippet}\npermissions: {{allow: [x]}}\n")
    with pytest.raises(PolicyError) as caught:
        load_policy_set(path)
    assert str(caught.value).startswith(f"{path}:{line}: ") and message in str(caught.value)


def test_audit_sensitive_fields_are_redacted_in_the_trail(
    seed_governor: Callable[..., Governor], tmp_path: Path
) -> None:
    # Before this change `sensitive_fields` under `audit:` was refused; the seed never read it at all.
    policy = tmp_path / "notes.yaml"
    policy.write_text("agent: a\npermissions: {allow: ['*']}\naudit:\n  sensitive_fields: [customer_notes]\n")
    gov = seed_governor(policy)
    gov.agent("a").execute("read:x", {"customer_notes": "owes us 4 cows"}, lambda ctx: {"customer_notes": "moo"})
    text = json.dumps(list(gov.audit.entries()))
    assert "4 cows" not in text and "moo" not in text


# ------------------------------------------------------------------------------- examples/basic-usage.js


def test_basic_usage_example(seed_governor: Callable[..., Governor]) -> None:
    gov = seed_governor()
    # new ProductionAgent('customer-service-agent', {name, role, owner}) creates the identity with metadata
    gov.identities.create(
        "customer-service-agent", metadata={"name": "Customer Service Bot", "role": "support", "owner": "support-team"}
    )
    agent = gov.agent("customer-service-agent")

    # Example 1: allowed
    r1 = agent.execute(
        "read:customer_data",
        {"customerId": 12345, "requestedBy": "user@example.com"},
        lambda ctx: {"customerId": ctx["customerId"], "name": "John Doe", "tier": "premium"},
    )
    assert r1.success and r1.output["customerId"] == 12345

    # Example 2: denied (the seed's executor-less call): never runs
    ran: list[str] = []
    r2 = agent.execute("delete:customer_data", {"customerId": 12345}, lambda ctx: ran.append("ran"))
    assert not r2.success and r2.decision.outcome is Outcome.DENY and ran == []
    assert r2.decision.rule is not None and r2.decision.rule.pattern == "delete:*"

    # Example 3: escalation
    r3 = agent.execute(
        "refund_requests",
        {"customerId": 12345, "amount": 599.99, "reason": "Product defect"},
        lambda ctx: ran.append("refund"),
    )
    assert r3.requires_escalation and r3.escalation_id and ran == []

    # Example 4: check without executing (the seed's checkPermission; evaluate() writes nothing)
    assert agent.evaluate("update:ticket_status", {"ticketId": 789}).allowed

    # Example 5: health
    health = gov.health_check()
    assert health["status"] == "ok" and health["escalations_pending"] == 1

    # Example 6: audit history
    history = gov.audit.query(agent_id="customer-service-agent")
    assert [e["type"] for e in history if e["type"] == "policy_decision"] == ["policy_decision"] * 3
    assert history[-1]["type"] == "policy_decision" and history[-1]["action"] == "refund_requests"

    # Example 7: identity
    record = gov.identities.require("customer-service-agent")
    assert record.status == "active" and agent.trust_score == 100
    assert dict(record.metadata) == {"name": "Customer Service Bot", "role": "support", "owner": "support-team"}

    # Example 8: sign a message for non-repudiation, verified with the agent's public key
    message = b"I approved refund #12345 for $599.99"
    loaded = gov.identities.load_private_key("customer-service-agent")
    signature = K.sign(loaded.key, message)
    (public,) = gov.identities.keys("customer-service-agent")
    assert K.load_public(public.public_key).verify(signature, message)
    assert not K.load_public(public.public_key).verify(signature, message + b"0")


# --------------------------------------------------------------------------- test/integration-test.js


def test_integration_test(seed_governor: Callable[..., Governor], tmp_path: Path) -> None:
    gov = seed_governor()  # Test 1
    gov.identities.create(
        "customer-service-agent",
        metadata={"name": "Test Customer Service Agent", "role": "support", "owner": "test@example.com"},
    )
    agent = gov.agent("customer-service-agent")

    # Test 2: identity
    assert gov.identities.require("customer-service-agent").status == "active" and agent.trust_score == 100

    # Test 3: allowed action runs, output returned
    r1 = agent.execute(
        "read:customer_data",
        {"customerId": 12345, "requestedBy": "test@example.com"},
        lambda ctx: {"customerId": ctx["customerId"], "status": "active"},
    )
    assert r1.success and r1.output == {"customerId": 12345, "status": "active"}

    # Test 4: denied by policy
    r2 = agent.execute("delete:customer_data", {"customerId": 12345}, lambda ctx: None)
    assert not r2.success and r2.decision.outcome is Outcome.DENY and "delete:*" in (r2.error or "")

    # Test 5: escalation, approved by a human; the same call retried is then allowed once
    refund = {"customerId": 12345, "amount": 599.99, "reason": "Product defect"}
    r3 = agent.execute("refund_requests", refund, lambda ctx: "refunded")
    assert r3.requires_escalation and r3.escalation_id
    gov.resolve_escalation(
        r3.escalation_id, "approved", notes="Refund approved by manager", resolver=gov.reviewers.ensure("test-manager")
    )
    retried = agent.execute("refund_requests", refund, lambda ctx: "refunded")
    assert retried.success and retried.output == "refunded"
    assert agent.execute("refund_requests", refund, lambda ctx: "again").requires_escalation  # used once

    # Test 6: permission check
    assert agent.check("update:ticket_status", {"ticketId": 789, "newStatus": "resolved"}).allowed

    # Test 7: wildcard deny
    denied = agent.check("delete:ticket", {"ticketId": 123})
    assert denied.outcome is Outcome.DENY and denied.rule is not None and denied.rule.pattern == "delete:*"
    assert agent.check("Delete:Ticket ").outcome is Outcome.DENY  # and its spelling variants

    # Test 8: audit history names each outcome
    outcomes = [
        e["decision"]["outcome"] for e in gov.audit.query(agent_id="customer-service-agent", type="policy_decision")
    ]
    assert outcomes == ["allow", "deny", "escalate", "allow", "escalate", "allow", "deny", "deny"]

    # Test 9: trust after 5 successes stays at the ceiling (100)
    before = agent.trust_score
    for i in range(5):
        assert agent.execute("read:customer_data", {"customerId": i}, lambda ctx: {"data": "ok"}).success
    assert agent.trust_score >= before

    # Test 11: health
    assert gov.health_check()["status"] == "ok"

    # Test 12: the compliance report counts what happened (the seed's counted zero decisions)
    today = datetime.now(UTC).date()
    report = gov.compliance_report(today - timedelta(days=1), today)
    summary = report["summary"]
    assert (summary["total_decisions"], summary["allowed"], summary["denied"], summary["escalations"]) == (13, 8, 3, 2)
    assert summary["escalations_resolved"] == 1 and summary["actions_succeeded"] == 7
    assert report["policy_metadata"]["customer-service-agent"]["owner"] == "support-team"
    assert report["chain"]["valid"]


# ------------------------------------------------------------------------ trust: block < 70, resume at 80


def test_trust_blocks_below_70_and_a_human_resumes_the_agent_at_80(
    seed_governor: Callable[..., Governor], tmp_path: Path
) -> None:
    gov = seed_governor()
    agent = gov.agent("customer-service-agent")

    def fail(ctx: dict[str, object]) -> None:
        raise RuntimeError("backend down")

    for _ in range(6):  # 100 -> 70: at the minimum, still allowed
        agent.execute("read:customer_data", {}, fail)
    assert agent.trust_score == 70 and agent.check("read:customer_data").allowed
    agent.execute("read:customer_data", {}, fail)  # 65: below 70
    blocked = agent.check("read:customer_data")
    assert agent.trust_score == 65
    assert blocked.outcome is Outcome.DENY and blocked.stage == "trust" and "below the minimum 70" in blocked.reason
    assert gov.minimum_trust("customer-service-agent") == 70
    gov.close()

    folder = tmp_path / "policies"
    paths = [
        "--policies",
        str(folder),
        "--audit",
        str(tmp_path / "audit"),
        "--identities",
        str(tmp_path / "identities"),
    ]
    runner = CliRunner()
    result = runner.invoke(
        build_cli(),
        ["identity", "reinstate", "customer-service-agent", "--by", "alice", "--reason", "backend fixed", *paths],
    )
    assert result.exit_code == 0, result.output
    assert "trust score 80" in result.output
    again = runner.invoke(build_cli(), ["identity", "reinstate", "customer-service-agent", "--by", "alice", *paths])
    assert again.exit_code == 2 and "is not revoked (nor blocked: trust 80, minimum 70)" in again.output

    with Governor(folder, tmp_path / "audit", tmp_path / "identities", load_entry_points=False) as resumed:
        handle = resumed.agent("customer-service-agent")
        assert handle.trust_score == 80 and handle.check("read:customer_data").allowed
        changes = resumed.audit.query(agent_id="customer-service-agent", type="trust_change")
        assert changes[-1]["details"]["new"] == 80 and "resumed by alice" in changes[-1]["details"]["reason"]


# ------------------------------------------------------------------------------------------ rate limits


def test_actions_per_minute_counts_every_allowed_call_in_a_sliding_minute(
    seed_governor: Callable[..., Governor],
) -> None:
    gov = seed_governor()
    clock = Clock()
    gov._policy_plugin.clock = clock
    agent = gov.agent("customer-service-agent")
    actions = ["read:customer_data", "read:ticket", "update:ticket_status", "read:knowledge_base"]
    for i in range(100):  # any action counts
        assert agent.check(actions[i % 4]).allowed, i
        if i == 49:
            clock.now += 30
        assert agent.check("delete:customer_data").outcome is Outcome.DENY  # denied calls ran nothing: not counted
    over = agent.check("read:ticket")
    assert over.outcome is Outcome.DENY and over.stage == "rate_limit"
    assert "Rate limit 100 per 60s" in over.reason and f"{CUSTOMER.name}:52" in over.reason
    assert gov.agent("another-agent").check("read:ticket").outcome is Outcome.DENY  # no policy: default deny anyway
    clock.now += 29.9  # 59.9 s after the first 50: still full
    assert agent.check("read:ticket").stage == "rate_limit"
    clock.now += 0.1  # the first 50 leave the window
    for _ in range(50):
        assert agent.check("read:ticket").allowed
    assert agent.check("read:ticket").stage == "rate_limit"


def test_escalations_per_hour_counts_escalations_opened(seed_governor: Callable[..., Governor]) -> None:
    gov = seed_governor()
    clock = Clock()
    gov._policy_plugin.clock = clock
    agent = gov.agent("customer-service-agent")
    opened = [agent.check("refund_requests", {"customerId": i, "amount": 10}) for i in range(10)]
    assert all(d.outcome is Outcome.ESCALATE and d.escalation_id for d in opened)
    eleventh = agent.check("legal_inquiries", {"customerId": 99})
    assert eleventh.outcome is Outcome.DENY and eleventh.stage == "rate_limit"
    assert "Escalation limit 10 per 3600s" in eleventh.reason and f"{CUSTOMER.name}:53" in eleventh.reason
    assert len(gov.escalations.pending()) == 10  # the eleventh opened nothing
    assert agent.check("read:ticket").allowed  # other calls are not affected

    # An approved call retried consumes its grant: that opens no escalation, so the limit does not stop it.
    first = opened[0]
    assert first.escalation_id is not None
    gov.resolve_escalation(first.escalation_id, "approved", notes="verified", resolver=gov.reviewers.ensure("manager"))
    assert agent.check("refund_requests", {"customerId": 0, "amount": 10}).allowed

    clock.now += 3599
    assert agent.check("legal_inquiries", {"customerId": 99}).stage == "rate_limit"
    clock.now += 1
    assert agent.check("legal_inquiries", {"customerId": 99}).outcome is Outcome.ESCALATE


# ------------------------------------------------------------------------------ metadata where it shows


def test_metadata_is_shown_by_lint_and_the_report_command(
    seed_governor: Callable[..., Governor], tmp_path: Path
) -> None:
    runner = CliRunner()
    lint = runner.invoke(build_cli(), ["policy", "lint", str(CUSTOMER)])
    assert lint.exit_code == 0
    assert (
        f'{CUSTOMER}:8: info: agent "customer-service-agent": "Customer Service Agent" v1.0 (owner support-team)'
        ": Handles customer support tickets and inquiries"
    ) in lint.output
    assert "0 error(s), 5 warning(s)" in lint.output  # info lines are not warnings (--strict is unaffected)

    gov = seed_governor()
    gov.agent("customer-service-agent").check("read:ticket")
    gov.close()
    today = datetime.now(UTC).date().isoformat()
    report = runner.invoke(
        build_cli(),
        [
            "audit",
            "report",
            "--audit",
            str(tmp_path / "audit"),
            "--identities",
            str(tmp_path / "identities"),
            "--from",
            today,
            "--to",
            today,
            "--policies",
            str(tmp_path / "policies"),
        ],
    )
    assert report.exit_code == 0, report.output
    assert json.loads(report.output)["policy_metadata"] == {
        "customer-service-agent": {
            "name": "Customer Service Agent",
            "description": "Handles customer support tickets and inquiries",
            "version": "1.0",
            "owner": "support-team",
        }
    }
    md = runner.invoke(
        build_cli(),
        [
            "audit",
            "report",
            "--audit",
            str(tmp_path / "audit"),
            "--identities",
            str(tmp_path / "identities"),
            "--from",
            today,
            "--to",
            today,
            "--format",
            "md",
            "--policies",
            str(tmp_path / "policies"),
        ],
    )
    assert "| customer-service-agent | Customer Service Agent | 1.0 | support-team |" in md.output


def test_metadata_set_twice_for_one_agent_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("agent: a\nmetadata: {owner: x}\npermissions: {allow: [x]}\n")
    (tmp_path / "b.yaml").write_text(
        textwrap.dedent("""\
        agent: a
        metadata: {owner: y}
        permissions: {allow: [y]}
        """)
    )
    with pytest.raises(PolicyError, match="'metadata' for agent 'a' is set twice"):
        load_policy_set(tmp_path)
