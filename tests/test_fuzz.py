"""Fuzzing the policy loader and the argument/condition path (issue 13, "Deliver": a fuzz target).

Hypothesis drives both, with a fixed example budget so CI time is bounded (``FUZZ_EXAMPLES`` raises it for a
longer local run, e.g. ``FUZZ_EXAMPLES=20000 pytest tests/test_fuzz.py``). What must hold:

* the loader, given any bytes or any YAML, returns a PolicySet or raises PolicyError with a one-line message
  naming the file (never another exception, never a traceback);
* for any policy that loads and any call, a deny rule that matches the action (unconditionally, or with a
  condition that is true or cannot be evaluated) means the decision is not ALLOW;
* conditions compile or raise ConditionSyntaxError, and evaluate to True/False/None for any arguments.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from claw_governance import Outcome, PolicyError
from claw_governance.model import ToolCall
from claw_governance.policy import Condition, ConditionSyntaxError, load_policy_set
from claw_governance.policy.conditions import ArgumentLimits
from claw_governance.policy.patterns import glob_match, normalize

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


def _load(folder: Path, content: bytes) -> Any:
    (folder / "p.yaml").write_bytes(content)
    try:
        return load_policy_set(folder)
    except PolicyError as exc:
        message = str(exc)
        assert "\n" not in message and "Traceback" not in message, message
        assert str(folder / "p.yaml") in message or str(folder) in message, message
        return None


YAML_SNIPPETS = st.sampled_from(
    [
        "agent:",
        " ",
        "\n",
        "- ",
        ": ",
        "permissions:",
        "allow:",
        "deny:",
        "escalate:",
        "[",
        "]",
        "{",
        "}",
        "'",
        '"',
        "&a ",
        "*a ",
        "!!python/object:os.system ",
        "!!binary ",
        "2001-13-45",
        "0x",
        "1e999",
        ".nan",
        "~",
        "? ",
        "---\n",
        "...\n",
        "action:",
        "condition:",
        "timeout:",
        "trust:",
        "min_score:",
        "rate_limits:",
        "\t",
        "#",
        "<<: *a",
        "!!timestamp 2001-02-30",
        "!!int x",
        "!!float y",
        "%YAML 1.1\n",
        "|\n",
        ">\n",
        "\ufeff",
        "\x00",
    ]
)


@FUZZ
@given(raw=st.binary(max_size=400))
@example(raw=b"agent: 2001-13-45\n")
@example(raw=b"agent: !!timestamp 2001-02-30\n")
@example(raw=b"agent: !!int x\n")
@example(raw=b"\xff\xfe")
@example(raw=b"a: &a [*a]\n")
def test_loader_random_bytes(tmp_path_factory: Any, raw: bytes) -> None:
    _load(tmp_path_factory.mktemp("fuzz"), raw)


@FUZZ
@given(parts=st.lists(YAML_SNIPPETS | st.text(max_size=8), max_size=40))
def test_loader_yaml_like_text(tmp_path_factory: Any, parts: list[str]) -> None:
    _load(tmp_path_factory.mktemp("fuzz"), "".join(parts).encode("utf-8", "surrogatepass"))


NAMES = st.sampled_from(["read:*", "delete:*", "*", "*:users", "pay", "a*b", "read:users", "x", "*e*"]) | st.text(
    min_size=1, max_size=10
)
CONDITIONS = st.sampled_from(
    [
        "amount > 500",
        "amount < 100",
        "size(items) > 2",
        "items.exists(i, i > 3)",
        "data.x == 1",
        "has(data.x)",
        "name.startsWith('a')",
        "amount > 5 && currency == 'USD'",
        "amount",
        "1 +",
        "items.all(i,",
        "items.exists(x, items.exists(y, x == y))",
        "true",
        "false",
        "null == null",
    ]
)
RULE = NAMES | st.fixed_dictionaries(
    {"action": NAMES}, optional={"condition": CONDITIONS, "reason": st.text(max_size=10)}
)
DOCUMENT = st.fixed_dictionaries(
    {"agent": st.sampled_from(["*", "bot", "other"])},
    optional={
        "permissions": st.fixed_dictionaries(
            {},
            optional={
                "allow": st.lists(RULE, max_size=4),
                "deny": st.lists(RULE, max_size=4),
                "escalate": st.lists(RULE, max_size=3),
            },
        ),
        "sensitive_fields": st.lists(st.text(max_size=5), max_size=2),
        "trust": st.fixed_dictionaries({}, optional={"min_score": st.integers(-5, 200)}),
    },
)
LEAF = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10) | st.decimals()
ARGS = st.dictionaries(
    st.sampled_from(["amount", "items", "data", "name", "currency", "other"]),
    st.recursive(
        LEAF,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["x", "y", "amount"]), inner, max_size=3)
        ),
        max_leaves=20,
    ),
    max_size=5,
)
ACTIONS = st.sampled_from(
    [
        "read:users",
        "delete:users",
        "pay",
        "x",
        "ab",
        "aXb",
        "DELETE:Users ",
        "d\u0435lete:x",
        "delete\u200b:x",
        "refund",
    ]
) | st.text(max_size=10)


def _deny_applies(policy: Any, agent: str, action: str, args: dict[str, Any]) -> bool:
    """The reference answer, computed without the index: does some deny rule for this agent match?"""
    name = normalize(action)
    for doc in policy.documents:
        if doc.agent not in ("*", normalize(agent)):
            continue
        for rule in doc.rules:
            if rule.effect is not Outcome.DENY or not glob_match(rule.pattern, name):
                continue
            if rule.condition is None or rule.condition.evaluate(args, policy.limits) is not False:
                return True
    return False


@FUZZ
@given(docs=st.lists(DOCUMENT, min_size=1, max_size=3), calls=st.lists(st.tuples(ACTIONS, ARGS), max_size=6))
def test_policies_and_arguments_never_allow_what_a_deny_matches(
    tmp_path_factory: Any, docs: list[dict[str, Any]], calls: list[tuple[str, dict[str, Any]]]
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    policy = _load(folder, yaml.safe_dump_all(docs, allow_unicode=True).encode())
    if policy is None:
        return
    for action, args in calls:
        for agent in ("bot", "other", "nobody"):
            decision = policy.decide(ToolCall(agent, action, args))
            assert decision.outcome in (Outcome.ALLOW, Outcome.DENY, Outcome.ESCALATE)
            if _deny_applies(policy, agent, action, args):
                assert decision.outcome is Outcome.DENY, (agent, action, args, decision.reason)


@FUZZ
@given(
    expression=st.text(max_size=60)
    | st.lists(
        CONDITIONS
        | st.sampled_from(
            [" && ", " || ", "!", "(", ")", ".exists(x, ", ".map(y, ", " in ", "[1, 2]", "{'a': 1}", "size(", "'s'"]
        ),
        max_size=8,
    ).map("".join),
    args=ARGS,
)
def test_conditions_compile_or_fail_cleanly_and_evaluate_safely(expression: str, args: dict[str, Any]) -> None:
    try:
        condition = Condition(expression)
    except ConditionSyntaxError as exc:
        assert "\n" not in str(exc)
        return
    for limits in (ArgumentLimits(), ArgumentLimits(max_depth=2, max_items=5, max_string_chars=5)):
        assert condition.evaluate(args, limits) in (True, False, None)
