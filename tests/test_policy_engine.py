"""The decision table: every rule of DESIGN.md's policy semantics, and the seed README's examples."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from claw_governance import Outcome, ToolCall
from claw_governance.policy import PolicySet
from tests.conftest import SEED_POLICY

Compile = Callable[..., PolicySet]


def decide(
    policy: PolicySet, action: str, args: dict[str, object] | None = None, agent: str = "customer-service-agent"
) -> Outcome:
    return policy.decide(ToolCall(agent, action, args or {})).outcome


# The seed README's own policy, decided exactly as its comments say.
@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("read:customer_data", Outcome.ALLOW),
        ("update:ticket_status", Outcome.ALLOW),
        ("create:ticket_response", Outcome.ALLOW),
        ("delete:customer", Outcome.DENY),
        ("delete:*", Outcome.DENY),
        ("update:payment_info", Outcome.DENY),
        ("refund_requests", Outcome.ESCALATE),
        ("account_deletion", Outcome.ESCALATE),
        ("legal_inquiries", Outcome.ESCALATE),
        ("read:orders", Outcome.DENY),  # not allowed: default deny
        ("", Outcome.DENY),
    ],
)
def test_seed_readme_policy(compile_policy: Compile, action: str, expected: Outcome) -> None:
    assert decide(compile_policy(SEED_POLICY), action) is expected


def test_seed_readme_wildcard_examples(compile_policy: Compile) -> None:
    policy = compile_policy("""
        agent: a
        permissions:
          allow:
            - read:customer_data          # Exact match
            - read:*                      # Prefix wildcard
            - "*:public_info"             # Suffix wildcard
    """)
    assert decide(policy, "read:customer_data", agent="a") is Outcome.ALLOW
    assert decide(policy, "read:anything:at:all", agent="a") is Outcome.ALLOW
    assert decide(policy, "billing:public_info", agent="a") is Outcome.ALLOW
    assert decide(policy, "billing:private_info", agent="a") is Outcome.DENY
    assert decide(policy, "reads:x", agent="a") is Outcome.DENY


def test_seed_conditional_escalation(compile_policy: Compile) -> None:
    policy = compile_policy("""
        agent: a
        permissions:
          allow: [refund_requests]
          escalate:
            - action: refund_requests
              condition: amount > 500     # Only refunds over $500
    """)
    assert decide(policy, "refund_requests", {"amount": 501}, "a") is Outcome.ESCALATE
    assert decide(policy, "refund_requests", {"amount": 500.01}, "a") is Outcome.ESCALATE
    assert decide(policy, "refund_requests", {"amount": 500}, "a") is Outcome.ALLOW
    assert decide(policy, "refund_requests", {"amount": 12}, "a") is Outcome.ALLOW


def test_precedence_deny_then_escalate_then_allow(compile_policy: Compile) -> None:
    policy = compile_policy("""
        agent: a
        permissions:
          allow: ["x:*", "y:*", "z:1"]
          escalate: ["x:*", "y:*"]
          deny: ["x:*"]
    """)
    assert decide(policy, "x:1", agent="a") is Outcome.DENY
    assert decide(policy, "y:1", agent="a") is Outcome.ESCALATE
    assert decide(policy, "z:1", agent="a") is Outcome.ALLOW
    assert decide(policy, "w:1", agent="a") is Outcome.DENY


def test_star_anywhere_and_nothing_else_special(compile_policy: Compile) -> None:
    policy = compile_policy("""
        agent: a
        permissions:
          allow: ["files:*:read", "*", "a.b?c[d]", "mid*dle*end"]
          deny: ["*secret*", "tool:rm*-rf"]
    """)
    assert decide(policy, "files:etc/passwd:read", agent="a") is Outcome.ALLOW
    assert decide(policy, "my_secret_file", agent="a") is Outcome.DENY
    assert decide(policy, "tool:rm -rf", agent="a") is Outcome.DENY
    assert decide(policy, "tool:rm --no-preserve -rf", agent="a") is Outcome.DENY
    only_literal = compile_policy(
        """
        agent: b
        permissions:
          allow: ["a.b?c[d]"]
    """,
        "b.yaml",
    )
    assert decide(only_literal, "a.b?c[d]", agent="b") is Outcome.ALLOW
    assert decide(only_literal, "aXb?c[d]", agent="b") is Outcome.DENY  # "." is not a regex here
    assert decide(only_literal, "a.bXcd", agent="b") is Outcome.DENY  # nor "?" nor "[...]"


@pytest.mark.parametrize(
    "variant",
    [
        "Delete:Users",
        "DELETE:USERS",
        "  delete:users  ",
        "\tdelete:users\n",
        "ｄｅｌｅｔｅ:users",
        "Ｄelete：users",
        "delete:uſers",
    ],
)
def test_normalised_names_cannot_slip_past_deny(compile_policy: Compile, variant: str) -> None:
    policy = compile_policy("""
        agent: a
        permissions:
          allow: ["*"]
          deny: ["delete:*"]
    """)
    assert decide(policy, variant, agent="a") is Outcome.DENY


def test_agent_ids_are_normalised_too(compile_policy: Compile) -> None:
    policy = compile_policy("agent: Support-Bot\npermissions: {allow: [x]}\n")
    assert decide(policy, "x", agent=" support-bot") is Outcome.ALLOW


def test_wildcard_agent_rules_merge_with_the_agents_own(
    write_policy: Callable[..., object], compile_policy: Compile
) -> None:
    write_policy(
        """
        agent: "*"
        permissions:
          deny: ["exec:*"]
          allow: ["status:read"]
    """,
        "all.yaml",
    )
    policy = compile_policy(
        """
        agent: a
        permissions:
          allow: ["exec:ls", "own:thing"]
    """,
        "a.yaml",
    )
    assert decide(policy, "exec:ls", agent="a") is Outcome.DENY  # shared deny beats own allow
    assert decide(policy, "status:read", agent="a") is Outcome.ALLOW  # shared allow applies
    assert decide(policy, "own:thing", agent="a") is Outcome.ALLOW
    assert decide(policy, "status:read", agent="someone-else") is Outcome.ALLOW  # "*" covers every agent
    assert decide(policy, "own:thing", agent="someone-else") is Outcome.DENY


def test_agent_without_policy_is_denied_everything(compile_policy: Compile) -> None:
    policy = compile_policy("agent: a\npermissions: {allow: ['*']}\n")
    decision = policy.decide(ToolCall("b", "read:x"))
    assert decision.outcome is Outcome.DENY
    assert 'No policy for agent "b"' in decision.reason
    assert PolicySet.empty().decide(ToolCall("a", "x")).outcome is Outcome.DENY


@pytest.mark.parametrize(
    ("args", "deny", "escalate", "allow"),
    [
        ({"amount": 600}, Outcome.DENY, Outcome.ESCALATE, Outcome.ALLOW),
        ({"amount": 10}, Outcome.DENY, Outcome.DENY, Outcome.DENY),  # false: rule does not apply
        ({}, Outcome.DENY, Outcome.ESCALATE, Outcome.DENY),  # missing field: unknown
        ({"amount": "600"}, Outcome.DENY, Outcome.ESCALATE, Outcome.DENY),  # wrong type: unknown
        ({"amount": None}, Outcome.DENY, Outcome.ESCALATE, Outcome.DENY),
        ({"amount": [1, 2]}, Outcome.DENY, Outcome.ESCALATE, Outcome.DENY),
    ],
)
def test_conditions_fail_closed(
    compile_policy: Compile, args: dict[str, object], deny: Outcome, escalate: Outcome, allow: Outcome
) -> None:
    template = "agent: a\npermissions:\n  {effect}:\n    - action: pay\n      condition: amount > 500\n"
    for effect, expected in (("deny", deny), ("escalate", escalate), ("allow", allow)):
        policy = compile_policy(template.format(effect=effect))
        got = decide(policy, "pay", args, "a")
        # With a false deny/escalate condition nothing else allows "pay": default deny.
        assert got is expected, (effect, args, got)


def test_compound_conditions(compile_policy: Compile) -> None:
    policy = compile_policy("""
        agent: a
        permissions:
          allow:
            - action: pay
              condition: currency == "USD" && amount > 100
            - action: pay2
              condition: currency == "USD" and amount <= 100 or vip == true
            - action: pay3
              condition: recipient.country in ["DE", "FR"]
    """)
    assert decide(policy, "pay", {"currency": "USD", "amount": 101}, "a") is Outcome.ALLOW
    assert decide(policy, "pay", {"currency": "EUR", "amount": 101}, "a") is Outcome.DENY
    assert decide(policy, "pay2", {"currency": "USD", "amount": 5}, "a") is Outcome.ALLOW
    assert decide(policy, "pay2", {"currency": "EUR", "amount": 5, "vip": True}, "a") is Outcome.ALLOW
    assert decide(policy, "pay3", {"recipient": {"country": "DE"}}, "a") is Outcome.ALLOW
    assert decide(policy, "pay3", {"recipient": {"country": "US"}}, "a") is Outcome.DENY
    assert decide(policy, "pay3", {"recipient": "DE"}, "a") is Outcome.DENY


def test_decision_names_rule_file_and_line(compile_policy: Compile) -> None:
    policy = compile_policy(SEED_POLICY, "cs.yaml")
    decision = policy.decide(ToolCall("customer-service-agent", "delete:users"))
    assert decision.rule is not None
    assert decision.rule.source.endswith("cs.yaml:10")
    assert 'deny rule "delete:*"' in decision.reason and "cs.yaml:10" in decision.reason
    allowed = policy.decide(ToolCall("customer-service-agent", "read:customer_data"))
    assert allowed.rule is not None and allowed.rule.source.endswith("cs.yaml:5")
    default = policy.decide(ToolCall("customer-service-agent", "nope"))
    assert default.rule is None and "default deny" in default.reason


def test_most_specific_rule_is_named(compile_policy: Compile) -> None:
    policy = compile_policy("agent: a\npermissions:\n  allow: ['*', 'read:*', 'read:customer_data']\n")
    decision = policy.decide(ToolCall("a", "read:customer_data"))
    assert decision.rule is not None and decision.rule.pattern == "read:customer_data"


def test_policy_hash_is_on_every_decision_and_tracks_content(compile_policy: Compile) -> None:
    first = compile_policy("agent: a\npermissions: {allow: [x]}\n")
    again = compile_policy("agent: a\npermissions: {allow: [x]}\n")
    changed = compile_policy("agent: a\npermissions: {allow: [x, y]}\n")
    assert first.hash == again.hash != changed.hash
    for action in ("x", "nope"):
        assert first.decide(ToolCall("a", action)).policy_hash == first.hash
    assert len(first.hash) == 64


def test_documents_in_one_file_and_lists_of_documents(compile_policy: Compile) -> None:
    multi = compile_policy("agent: a\npermissions: {allow: [x]}\n---\nagent: b\npermissions: {allow: [y]}\n")
    assert decide(multi, "x", agent="a") is Outcome.ALLOW and decide(multi, "y", agent="b") is Outcome.ALLOW
    listed = compile_policy(
        "- agent: c\n  permissions: {allow: [x]}\n- agent: d\n  permissions: {deny: [x]}\n", "list.yaml"
    )
    assert decide(listed, "x", agent="c") is Outcome.ALLOW and decide(listed, "x", agent="d") is Outcome.DENY


def test_ten_thousand_rules_decide_correctly(compile_policy: Compile) -> None:
    lines = ["agent: big", "permissions:", "  allow:"]
    lines += [f"    - svc{i}:read" for i in range(4000)]
    lines += [f'    - "svc{i}:list:*"' for i in range(3000)]
    lines += ["  deny:"] + [f'    - "*:drop{i}"' for i in range(2000)]
    lines += [f'    - "admin{i}:*:delete"' for i in range(1000)]
    policy = compile_policy("\n".join(lines) + "\n")
    assert policy.rule_count == 10000
    assert decide(policy, "svc3999:read", agent="big") is Outcome.ALLOW
    assert decide(policy, "svc2999:list:all", agent="big") is Outcome.ALLOW
    assert decide(policy, "svc1:drop7", agent="big") is Outcome.DENY
    assert decide(policy, "admin999:users:delete", agent="big") is Outcome.DENY
    assert decide(policy, "admin999:users:read", agent="big") is Outcome.DENY  # default
    assert decide(policy, "svc4000:read", agent="big") is Outcome.DENY
