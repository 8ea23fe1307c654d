"""Properties of the policy engine, checked with hypothesis over generated rule sets and names."""

from __future__ import annotations

import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claw_governance import Outcome, ToolCall
from claw_governance.policy import PolicySet, normalize
from claw_governance.policy.patterns import PatternIndex, glob_match
from claw_governance.policy.schema import Rule

ALPHABET = "ab:_*"
pattern_text = st.text(alphabet=ALPHABET, min_size=1, max_size=6).filter(lambda p: normalize(p) != "")
name_text = st.text(alphabet="ab:_", min_size=0, max_size=7)
effects = st.sampled_from([Outcome.ALLOW, Outcome.DENY, Outcome.ESCALATE])
conditions = st.sampled_from([None, "amount > 500", "amount <= 500", "missing_field == 1"])
args_strategy = st.sampled_from([{}, {"amount": 10}, {"amount": 900}, {"amount": "x"}])

_FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _rule(effect: Outcome, pattern: str, condition: str | None, line: int) -> Rule:
    from claw_governance.policy.conditions import Condition

    return Rule(effect, normalize(pattern), pattern, "a", "gen.yaml", line, Condition(condition) if condition else None)


rules_strategy = st.lists(st.tuples(effects, pattern_text, conditions), max_size=12)


def _policy(rules: list[tuple[Outcome, str, str | None]]) -> PolicySet:
    from claw_governance.policy.schema import PolicyDocument

    doc = PolicyDocument("a", "gen.yaml", 1, [_rule(e, p, c, i + 2) for i, (e, p, c) in enumerate(rules)])
    return PolicySet([doc], "0" * 64)


@_FAST
@given(st.lists(pattern_text, max_size=20), name_text)
def test_index_finds_exactly_what_a_full_scan_finds(patterns: list[str], name: str) -> None:
    normed = [normalize(p) for p in patterns]
    index = PatternIndex((p, i) for i, p in enumerate(normed))
    expected = sorted(i for i, p in enumerate(normed) if glob_match(p, name))
    assert sorted(index.lookup(name)) == expected
    assert sorted(index.lookup(name)) == expected  # memoised answer is the same


@_FAST
@given(rules_strategy, pattern_text, name_text, args_strategy)
def test_a_matching_deny_is_never_overridden(
    rules: list[tuple[Outcome, str, str | None]], deny: str, name: str, args: dict[str, object]
) -> None:
    if not glob_match(normalize(deny), name):
        name = normalize(deny).replace("*", "")
    decision = _policy([*rules, (Outcome.DENY, deny, None)]).decide(ToolCall("a", name, args))
    assert decision.outcome is Outcome.DENY


@_FAST
@given(rules_strategy, st.lists(st.tuples(pattern_text, conditions), min_size=1, max_size=5), name_text, args_strategy)
def test_adding_an_allow_never_turns_a_rule_deny_into_allow(
    rules: list[tuple[Outcome, str, str | None]],
    extra: list[tuple[str, str | None]],
    name: str,
    args: dict[str, object],
) -> None:
    before = _policy(rules).decide(ToolCall("a", name, args))
    after = _policy(rules + [(Outcome.ALLOW, p, c) for p, c in extra]).decide(ToolCall("a", name, args))
    if before.outcome is Outcome.DENY and before.rule is not None:
        assert after.outcome is Outcome.DENY
    if before.outcome is Outcome.ESCALATE:
        assert after.outcome is Outcome.ESCALATE
    if before.outcome is Outcome.ALLOW:
        assert after.outcome is Outcome.ALLOW


@_FAST
@given(rules_strategy, st.randoms(use_true_random=False), name_text, args_strategy)
def test_reordering_rules_never_changes_a_decision(
    rules: list[tuple[Outcome, str, str | None]], rnd: object, name: str, args: dict[str, object]
) -> None:
    shuffled = list(rules)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a = _policy(rules).decide(ToolCall("a", name, args))
    b = _policy(shuffled).decide(ToolCall("a", name, args))
    assert a.outcome is b.outcome
    assert (a.rule.pattern if a.rule else None) == (b.rule.pattern if b.rule else None)


_WIDTH = {c: chr(ord(c) + 0xFEE0) for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:_"}
variants = st.sampled_from(["upper", "title", "pad", "fullwidth", "nfd", "mixed"])


@_FAST
@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8),
    variants,
    st.sampled_from(["delete:*", "*:users", "drop_*_now"]),
)
def test_normalisation_variants_of_a_denied_name_stay_denied(word: str, variant: str, deny: str) -> None:
    name = deny.replace("*", word)
    transformed = {
        "upper": name.upper(),
        "title": name.title(),
        "pad": f"  {name}\t",
        "fullwidth": "".join(_WIDTH.get(c, c) for c in name),
        "nfd": unicodedata.normalize("NFD", name.upper()),
        "mixed": "".join(c.upper() if i % 2 else c for i, c in enumerate(name)) + " ",
    }[variant]
    policy = _policy([(Outcome.ALLOW, "*", None), (Outcome.DENY, deny, None)])
    assert policy.decide(ToolCall("a", transformed)).outcome is Outcome.DENY
