"""Fail closed: every error on the decision path denies, and what cannot be audited cannot be approved.
Each test fails if the claim it names were false (an unevaluable deny condition, regex text in a pattern, an
internal error, a missing pipeline plugin, an unauditable escalation, an empty or mis-split condition, a
spelling variant of a revoked agent)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from claw_governance import Governor, Outcome
from claw_governance.errors import AuditError, IdentityError, PolicyError
from claw_governance.model import AuditEvent, EscalationStatus, ToolCall
from claw_governance.policy import PolicySet

MakeGov = Callable[..., Governor]
Compile = Callable[..., PolicySet]
ALLOW_ALL = "agent: a\npermissions:\n  allow: ['*']\n  escalate: [refund]\n"


# ------------------------------------------------------------------------------------- decision path


def test_a_deny_condition_that_cannot_be_evaluated_denies_even_when_an_allow_matches(compile_policy: Compile) -> None:
    # test_conditions_fail_closed checks the deny case with nothing else allowing "pay", so a deny that
    # wrongly failed open would still end in the default deny there. Here an allow rule matches too.
    policy = compile_policy(
        "agent: a\npermissions:\n  allow: ['*']\n  deny:\n    - action: pay\n      condition: amount > 500\n"
    )
    for args in ({}, {"amount": "600"}, {"amount": None}, {"amount": [1]}):
        decision = policy.decide(ToolCall("a", "pay", args))
        assert decision.outcome is Outcome.DENY, args
        assert "could not be evaluated" in decision.reason
    assert policy.decide(ToolCall("a", "pay", {"amount": 10})).outcome is Outcome.ALLOW
    assert policy.decide(ToolCall("a", "pay", {"amount": 600})).outcome is Outcome.DENY


def test_pattern_text_around_a_star_is_literal_not_regex(compile_policy: Compile) -> None:
    policy = compile_policy("agent: a\npermissions:\n  allow: ['read:*.txt', 'f(*)+', 'x*a?b', '*[ab]']\n")
    assert policy.decide(ToolCall("a", "read:notes.txt")).outcome is Outcome.ALLOW
    assert policy.decide(ToolCall("a", "read:passwd_txt")).outcome is Outcome.DENY  # "." is not "any"
    assert policy.decide(ToolCall("a", "f(1)+")).outcome is Outcome.ALLOW
    assert policy.decide(ToolCall("a", "f(1)))")).outcome is Outcome.DENY
    assert policy.decide(ToolCall("a", "xyzab")).outcome is Outcome.DENY  # "?" is not optional
    assert policy.decide(ToolCall("a", "xyza?b")).outcome is Outcome.ALLOW
    assert policy.decide(ToolCall("a", "zzza")).outcome is Outcome.DENY  # "[ab]" is no class


def test_an_internal_error_of_the_governor_denies(make_governor: MakeGov, monkeypatch: pytest.MonkeyPatch) -> None:
    gov = make_governor(ALLOW_ALL)
    agent = gov.agent("a")
    assert agent.check("read:x").allowed

    def broken(*args: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(gov, "_facts", broken)
    decision = agent.check("read:x")
    assert decision.outcome is Outcome.DENY and decision.stage == "governor"
    ran: list[int] = []
    assert not agent.execute("read:x", {}, lambda ctx: ran.append(1)).success and not ran


@pytest.mark.parametrize(
    ("plugin", "stage"), [("identity", "identity"), ("policy", "policy"), ("escalation", "escalation")]
)
def test_a_missing_pipeline_plugin_denies(make_governor: MakeGov, plugin: str, stage: str) -> None:
    gov = make_governor(ALLOW_ALL)
    agent = gov.agent("a")
    action = "refund" if plugin == "escalation" else "read:x"
    gov.pm.unregister(name=plugin)  # the pipeline table is rebuilt: that step has no built-in entry now
    step = {"identity": "claw_verify_identity", "policy": "claw_decide", "escalation": "claw_open_escalation"}[plugin]
    assert step in gov.pipeline.hooked  # (the hook call, with whatever implementation is left)
    decision = agent.check(action)
    assert decision.outcome is Outcome.DENY and decision.stage == stage, decision
    if plugin == "escalation":
        assert gov.escalations.pending() == []


def test_an_escalation_that_cannot_be_audited_can_never_be_approved(
    make_governor: MakeGov, monkeypatch: pytest.MonkeyPatch
) -> None:
    gov = make_governor(ALLOW_ALL)
    agent = gov.agent("a")
    real = gov.escalations._audit

    def failing(event: AuditEvent) -> None:
        if event.type == "escalation":
            raise AuditError("disk full")
        real(event)

    monkeypatch.setattr(gov.escalations, "_audit", failing)
    assert agent.check("refund", {"amount": 1}).outcome is Outcome.DENY
    assert gov.escalations.pending() == []
    (esc,) = gov.escalations.list_escalations()
    assert esc.status is EscalationStatus.DENIED
    monkeypatch.undo()
    with pytest.raises(Exception, match="already denied"):
        gov.resolve_escalation(esc.id, "approved", resolver=gov.reviewers.ensure("alice"), notes="ok")
    assert agent.check("refund", {"amount": 1}).outcome is Outcome.ESCALATE  # no grant: a new escalation


# ------------------------------------------------------------------------------ conditions and identity


def test_an_empty_condition_is_an_error_not_an_unconditional_rule(compile_policy: Compile) -> None:
    # `condition:` with nothing after it is YAML null: silently dropping it would turn a conditional allow
    # into an unconditional one.
    for effect in ("allow", "deny", "escalate"):
        with pytest.raises(PolicyError, match="condition"):
            compile_policy(f"agent: a\npermissions:\n  {effect}:\n    - action: pay\n      condition:\n")


def test_or_inside_a_string_literal_with_an_escaped_quote_is_left_alone(compile_policy: Compile) -> None:
    policy = compile_policy(
        "agent: a\npermissions:\n  allow: ['*']\n  deny:\n    - action: sql\n"
        '      condition: \'query.contains("\\" or 1=1")\'\n'
    )
    assert policy.decide(ToolCall("a", "sql", {"query": 'x" or 1=1'})).outcome is Outcome.DENY
    assert policy.decide(ToolCall("a", "sql", {"query": "select 1"})).outcome is Outcome.ALLOW


def test_a_spelling_variant_of_a_revoked_agent_gets_no_fresh_identity(make_governor: MakeGov) -> None:
    # Policies compare agent ids after NFKC, case folding and trimming; identities must not let "Bot" be a
    # new, unrevoked, full-trust agent that the policy treats as "bot".
    gov = make_governor("agent: bot\npermissions: {allow: ['*']}\n")
    gov.agent("bot")
    gov.identities.revoke("bot", "compromised")
    for variant in ("Bot", "bot ", "ＢＯＴ"):
        with pytest.raises(IdentityError, match="same agent"):
            gov.agent(variant)
        decision = gov.before_call(gov.make_call(variant, "read:x"))  # an adapter's path: no gov.agent()
        assert decision.outcome is Outcome.DENY, (variant, decision)
    assert gov.agent("bot").check("read:x").outcome is Outcome.DENY
