"""The arguments hash that binds grants and signatures to exact arguments: stable, and injective on key types."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from claw_governance import Governor
from claw_governance.model import Outcome, args_hash

keys = st.one_of(
    st.text(max_size=4),
    st.integers(-3, 3),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
)
leaves = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4))
values = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3), max_leaves=8
)


def typed(value: Any) -> Any:
    """A form in which 1, 1.0, True and "1" all differ (what "the same arguments" means for a grant)."""
    if isinstance(value, dict):
        return ("dict", frozenset((typed(k), typed(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("list", tuple(typed(v) for v in value))
    return (type(value).__name__, value)


@given(st.dictionaries(keys, values, min_size=1, max_size=4))
def test_keys_made_strings_are_other_arguments(a: dict[Any, Any]) -> None:
    # What a JSON round trip makes of the arguments: 1 -> "1", None -> "null", True -> "true".
    as_json = orjson.loads(orjson.dumps(a, option=orjson.OPT_NON_STR_KEYS))
    if typed(as_json) != typed(a):
        assert args_hash(as_json) != args_hash(a)


@given(st.dictionaries(keys, values, max_size=4))
def test_key_order_does_not_matter(a: dict[Any, Any]) -> None:
    assert args_hash(a) == args_hash(dict(reversed(list(a.items()))))


@given(
    st.dictionaries(
        st.text(max_size=6),
        st.recursive(
            leaves,
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
            max_leaves=8,
        ),
        max_size=4,
    )
)
def test_string_keyed_arguments_hash_as_documented(a: dict[str, Any]) -> None:
    # docs/identity.md: an external signer computes sha256 of the JSON with sorted keys.
    assert args_hash(a) == hashlib.sha256(orjson.dumps(a, option=orjson.OPT_SORT_KEYS)).hexdigest()


def test_a_number_key_is_not_its_string() -> None:
    assert args_hash({1: "x"}) != args_hash({"1": "x"})
    assert args_hash({"a": {1: "x"}}) != args_hash({"a": {"1": "x"}})
    assert args_hash({None: 1}) != args_hash({"null": 1})
    assert args_hash({True: 1}) != args_hash({"true": 1})
    assert args_hash({1: "x", "1": "x"}) != args_hash({"1": "x"})


POLICY = """\
agent: bot
permissions:
  escalate: [pay]
"""


def test_a_grant_for_key_1_does_not_cover_key_string_1(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(POLICY)
    agent = gov.agent("bot")
    pending = agent.check("pay", {1: "acct-A"})
    assert pending.outcome is Outcome.ESCALATE
    gov.resolve_escalation(pending.escalation_id or "", "approved", resolver=gov.reviewers.ensure("alice"), notes="ok")
    assert agent.check("pay", {"1": "acct-A"}).outcome is Outcome.ESCALATE  # other arguments: not covered
    assert agent.check("pay", {1: "acct-A"}).outcome is Outcome.ALLOW  # the approved call, once
