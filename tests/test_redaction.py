"""Redaction (nested, key forms, policy fields, value detectors) and RFC 8785 canonical form."""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import math
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from claw_governance import Governor
from claw_governance.audit.canonical import MAX_SAFE_INT, jcs_dumps, jcs_number
from claw_governance.audit.layout import entry_line, exact_entry_line
from claw_governance.audit.redaction import DEFAULT_REDACTOR, REDACTED, Redactor, luhn_valid, redact_text

MakeGov = Callable[..., Governor]
ALLOW_ALL = "agent: a\npermissions:\n  allow: ['*']\n  escalate: [refund]\n"


CARD = "4111 1111 1111 1111"
KEY_BLOCK = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "Pass_Word",
        "api_key",
        "API-KEY",
        "apiKey",
        "ssn",
        "creditCard",
        "credit_card",
        "Authorization",
        "client-secret",
        "cvv",
    ],
)
def test_sensitive_key_forms(key: str) -> None:
    assert DEFAULT_REDACTOR({key: "value"}) == {key: REDACTED}


def test_nested_dicts_lists_and_tuples() -> None:
    data = {"a": [{"b": {"token": "x", "ok": 1}}, ("c", {"Secret": 2})], "keep": "plain"}
    assert DEFAULT_REDACTOR(data) == {
        "a": [{"b": {"token": REDACTED, "ok": 1}}, ["c", {"Secret": REDACTED}]],
        "keep": "plain",
    }


def test_policy_sensitive_fields_are_compared_in_key_form() -> None:
    redactor = DEFAULT_REDACTOR.with_keys(frozenset({"customer_ssn", "Account-Number"}))
    assert redactor({"customerSSN": 1, "accountnumber": 2, "other": 3}) == {
        "customerSSN": REDACTED,
        "accountnumber": REDACTED,
        "other": 3,
    }
    assert DEFAULT_REDACTOR({"accountnumber": 2}) == {"accountnumber": 2}
    assert DEFAULT_REDACTOR.with_keys(frozenset({"customer_ssn", "Account-Number"})) is redactor  # cached


@pytest.mark.parametrize(
    "text,marker",
    [
        (f"pay with {CARD} today", "[REDACTED:card]"),
        ("card 4111-1111-1111-1111", "[REDACTED:card]"),
        ("ssn 123-45-6789 on file", "[REDACTED:ssn]"),
        ("Authorization: Bearer abcdefghijklmnop.qrstu", "Bearer [REDACTED:bearer]"),
        (f"key:\n{KEY_BLOCK}\nend", "[REDACTED:private-key]"),
        ("jwt eyJhbGciOiJI.eyJzdWIiOiIx.SflKxwRJSMeKKF2QT4", "[REDACTED:jwt]"),
    ],
)
def test_value_detectors(text: str, marker: str) -> None:
    out = redact_text(text)
    assert marker in out
    assert "4111" not in out and "6789" not in out and "abcdefghijklmnop" not in out and "b3Blbn" not in out


def test_numbers_that_fail_luhn_are_kept() -> None:
    assert redact_text("order 4111 1111 1111 1112") == "order 4111 1111 1111 1112"
    assert DEFAULT_REDACTOR({"n": 4111111111111111}) == {"n": "[REDACTED:card]"}
    assert DEFAULT_REDACTOR({"n": 4111111111111112}) == {"n": 4111111111111112}


def test_tool_outputs_are_redacted_like_inputs() -> None:
    output = {"rows": [{"email": "a@b.c", "password": "pw"}], "log": f"charged {CARD}"}
    assert DEFAULT_REDACTOR.for_audit({"output": output}) == {
        "output": {"rows": [{"email": "a@b.c", "password": REDACTED}], "log": "charged [REDACTED:card]"}
    }


def test_depth_limit_and_odd_values_never_raise() -> None:
    deep: Any = "x"
    for _ in range(100):
        deep = {"k": deep}
    out = DEFAULT_REDACTOR.for_audit(deep)
    assert "[TRUNCATED:depth]" in orjson.dumps(out).decode()
    odd = {1: b"raw", None: object(), 2.5: {1, 2}, "s": "\ud800 lone surrogate"}
    safe = DEFAULT_REDACTOR.for_audit(odd, strict=True)
    assert set(safe) == {"1", "null", "2.5", "s"} and safe["1"] == "[bytes:3]"
    orjson.dumps(safe, option=orjson.OPT_SORT_KEYS)


@given(st.text(alphabet="0123456789", min_size=13, max_size=19))
def test_luhn_agrees_with_the_definition(digits: str) -> None:
    total = sum(int(d) if i % 2 == 0 else sum(divmod(int(d) * 2, 10)) for i, d in enumerate(reversed(digits)))
    assert luhn_valid(digits) is (total % 10 == 0)
    redacted = redact_text(f"n {digits} x")
    assert (digits not in redacted) is luhn_valid(digits)


json_keys = st.text(max_size=8)
leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_keys, inner, max_size=4), max_leaves=20
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(json_keys, json_values, max_size=6))
def test_sensitive_keys_never_survive_anywhere(data: dict[str, Any]) -> None:
    wrapped = {"outer": [data, {"password": data, "nested": {"API_key": 1}}]}
    out = DEFAULT_REDACTOR(wrapped)
    assert out["outer"][1]["password"] == REDACTED and out["outer"][1]["nested"]["API_key"] == REDACTED


@settings(max_examples=250, deadline=None)
@given(st.dictionaries(json_keys, json_values, max_size=6))
def test_audit_form_hash_equals_rfc8785(data: dict[str, Any]) -> None:
    """The writer's fast path (orjson, sorted keys) is byte-identical to RFC 8785 for normalised data, and the
    exact path is used where it would not be (keys outside the BMP)."""
    redactor = Redactor()
    try:
        value = redactor.for_audit(data)
        fields = {"context": value, "seq": 1, "timestamp": 1.5}
        line, digest = entry_line(fields)
    except Exception:
        value = redactor.for_audit(data, strict=True)
        fields = {"context": value, "seq": 1, "timestamp": 1.5}
        line, digest = exact_entry_line(fields)
    reference = rfc8785.dumps(orjson.loads(line[: line.rindex(b',"hash"')] + b"}"))
    assert hashlib.sha256(reference).hexdigest() == digest


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_jcs_number_matches_rfc8785(value: float) -> None:
    assert jcs_number(value).encode() == rfc8785.dumps(value)


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-MAX_SAFE_INT, MAX_SAFE_INT)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=15,
    )
)
def test_jcs_dumps_matches_rfc8785(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value)
    except Exception:  # e.g. lone surrogates: not JSON for either
        return
    assert jcs_dumps(value) == expected


def test_cases_where_orjson_differs_are_normalised() -> None:
    data = {
        "one": 1.0,
        "negzero": -0.0,
        "tiny": 1.5e-6,
        "huge_int": 2**60,
        "big_float": 2.0**60,
        "small_float": 3.0e-7,
        "nan": math.nan,
        "inf": -math.inf,
    }
    out = DEFAULT_REDACTOR.for_audit(data)
    body = orjson.dumps(out, option=orjson.OPT_SORT_KEYS)
    assert out["huge_int"] == str(2**60) and out["big_float"] == "1152921504606847000"
    assert out["nan"] == "NaN" and out["inf"] == "-Infinity"
    reparsed = orjson.loads(body)
    assert body == rfc8785.dumps(reparsed) or jcs_dumps(reparsed) == rfc8785.dumps(reparsed)
    assert b'"one":1,' in body and b'"negzero":0,' in body and b'"tiny":0.0000015' in body
    with pytest.raises(Exception):  # noqa: B017 - orjson would sort this key differently: the exact path is used
        DEFAULT_REDACTOR.for_audit({"\U0001f600": 1, "\uffff": 2})
    exact = exact_entry_line({"context": DEFAULT_REDACTOR.for_audit({"\U0001f600": 1, "\uffff": 2}, strict=True)})
    assert exact[0].index("\U0001f600".encode()) < exact[0].index("\uffff".encode())


def test_a_cached_non_bmp_key_still_takes_the_exact_path() -> None:
    redactor = Redactor()
    redactor({"\U0001f600": 1})  # the general walk sees (and caches) the key first
    with pytest.raises(Exception):  # noqa: B017 - NonCanonicalKey: orjson would sort it wrongly
        redactor.for_audit({"\U0001f600": 1, "\uffff": 2})


# ------------------------------------------------- policy fields, tool output, records and key-name rules


def test_policy_sensitive_fields_are_redacted_even_when_the_value_looks_harmless(make_governor: MakeGov) -> None:
    # The existing test used an SSN as the value, which the SSN detector hides with or without the policy.
    gov = make_governor("agent: a\npermissions: {allow: ['*']}\nsensitive_fields: [favourite_colour]\n")
    gov.agent("a").execute(
        "read:x",
        {"Favourite-Colour": "mauve-harmless", "nested": [{"favourite_colour": "teal"}]},
        lambda ctx: {"favouriteColour": "ochre"},
    )
    text = "\n".join(str(e) for e in gov.audit.entries())
    for secret in ("mauve-harmless", "teal", "ochre"):
        assert secret not in text, secret


def test_tool_output_is_redacted_in_the_trail(make_governor: MakeGov) -> None:
    gov = make_governor(ALLOW_ALL)
    gov.agent("a").execute("read:x", {}, lambda ctx: {"rows": [{"api_key": "plain-output-secret"}]})
    (action,) = [e for e in gov.audit.entries() if e["type"] == "agent_action"]
    assert "plain-output-secret" not in str(action)
    assert action["details"]["output"] == {"rows": [{"api_key": "[REDACTED]"}]}


def test_records_tuples_and_models_are_redacted_by_their_field_names() -> None:
    Creds = collections.namedtuple("Creds", "user password")

    @dataclasses.dataclass
    class Login:
        user: str
        api_key: str
        inner: Any = None

    class Model:  # the pydantic v2 shape, without importing pydantic
        def __init__(self, **fields: Any) -> None:
            self.fields = fields

        def model_dump(self) -> dict[str, Any]:
            return dict(self.fields)

        def __repr__(self) -> str:
            return f"Model({self.fields!r})"

    value = {
        "a": Creds("u", "hunter2"),
        "b": Login("u", "sk-live-1", Creds("v", "pw2")),
        "c": [Model(token="tok-9", n=1)],
    }
    for redacted in (
        DEFAULT_REDACTOR(value),
        DEFAULT_REDACTOR.for_audit(value),
        DEFAULT_REDACTOR.for_audit(value, strict=True),
        Redactor(["user"]).for_audit(value),
    ):
        text = str(redacted)
        for secret in ("hunter2", "sk-live-1", "pw2", "tok-9"):
            assert secret not in text, (secret, redacted)
    assert DEFAULT_REDACTOR.for_audit(value)["a"] == {"user": "u", "password": "[REDACTED]"}


@pytest.mark.parametrize(
    "key",
    [
        "db_password",
        "OPENAI_API_KEY",
        "github_token",
        "webhookSecret",
        "AWS_SECRET_KEY",
        "user-passphrase",
        "ssh_private_key",
        "session_cookie",
        "csrfToken",
    ],
)
def test_keys_ending_in_a_secret_name_are_redacted(key: str) -> None:
    # Exact names only let the most common real-world spellings through (db_password, OPENAI_API_KEY ...).
    assert DEFAULT_REDACTOR.for_audit({key: "s3cr3t-value"}) == {key: "[REDACTED]"}
    assert DEFAULT_REDACTOR({"x": [{key: "s3cr3t-value"}]}) == {"x": [{key: "[REDACTED]"}]}


@pytest.mark.parametrize("key", ["max_tokens", "token_count", "author", "description", "secretary_name"])
def test_keys_that_only_contain_a_secret_word_are_kept(key: str) -> None:
    assert DEFAULT_REDACTOR({key: 7}) == {key: 7}
