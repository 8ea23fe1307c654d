"""Issue 13, items 2 and 4: secrets never reach what is stored, and scanning is linear and bounded.

The corpus (tests/data/secret_corpus.json, made by make_secret_corpus.py) holds fake secrets in the real
formats. On the redactor as it was before this change, 59 of its 96 shapes survived (checked).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import re._constants as sre_constants  # (the public sre_* aliases are deprecated)
import re._parser as sre_parse
import urllib.parse
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claw_governance.audit import detectors, keynames
from claw_governance.audit.detectors import compiled, find_secrets, may_hold_secret
from claw_governance.audit.redaction import DEFAULT_REDACTOR, MAX_TEXT, REDACTED, Redactor, encodings, redact_text
from claw_governance.config import GovernorConfig
from claw_governance.errors import ConfigError

CORPUS: list[dict[str, str]] = json.loads((Path(__file__).parent / "data" / "secret_corpus.json").read_text())
BY_KEY = [e for e in CORPUS if "key" in e]
IN_TEXT = [e for e in CORPUS if "text" in e]


def dump(value: Any) -> str:
    return orjson.dumps(value).decode() + json.dumps(value, ensure_ascii=False, default=str)


def test_the_corpus_is_large_and_varied() -> None:
    assert len(CORPUS) >= 60 and len(BY_KEY) >= 30 and len(IN_TEXT) >= 50
    assert len({e["name"] for e in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("entry", BY_KEY, ids=lambda e: e["name"])
def test_sensitive_key_names_hide_their_values(entry: dict[str, str]) -> None:
    for redactor in (DEFAULT_REDACTOR, DEFAULT_REDACTOR.for_audit):
        out = redactor({"outer": [{entry["key"]: entry["secret"], "ok": "visible"}]})
        assert entry["secret"] not in dump(out)
        assert out["outer"][0]["ok"] == "visible"


@pytest.mark.parametrize("entry", IN_TEXT, ids=lambda e: e["name"])
def test_secret_formats_are_found_in_free_text(entry: dict[str, str]) -> None:
    out = DEFAULT_REDACTOR.for_audit({"note": entry["text"], "rows": [entry["text"]]})
    assert entry["secret"] not in dump(out)
    assert "[REDACTED" in out["note"]


@pytest.mark.parametrize(
    "key",
    [
        "passenger",
        "author",
        "authority",
        "secretary",
        "tokens_used",
        "max_tokens",
        "token_count",
        "input_tokens",
        "prompt_tokens",
        "maxTokens",
        "keyboard",
        "monkey",
        "key",
        "compass",
        "bypass",
        "tokenizer",
        "passage",
        "pinned",
        "spin",
        "description",
        "customer_id",
        "name",
        "query",
        "amount",
        "cardinality",
        "session",
        "session_status",
        "sessions_list",
    ],
)
def test_innocent_key_names_are_kept(key: str) -> None:
    """False positives decided against (docs/security.md, "Secrets"): these keys keep their values."""
    assert DEFAULT_REDACTOR({key: 1234}) == {key: 1234}
    assert DEFAULT_REDACTOR({key: "plain words"}) == {key: "plain words"}


@pytest.mark.parametrize(
    "text",
    [
        "hello world",
        "order 1234 shipped on 2026-12-01",
        "a basic understanding of the topic",
        "The password policy requires 12 characters",
        "Your password is incorrect",
        "passenger: John Smith",
        "author is Bob",
        "token: expired",
        "see https://example.com/docs/page?id=42",
        "call id 3f2a-1b",
        "ISBN 978-3-16-148410-0",
        "phone +1 415 555 0100",
        "the key to success",
        "sha256 " + hashlib.sha256(b"x").hexdigest(),
    ],
)
def test_innocent_text_is_kept(text: str) -> None:
    assert redact_text(text) == text


def test_every_library_pattern_runs_on_re2() -> None:
    state = compiled()
    assert state.skipped == []
    names = {d.name for d in state.detectors}
    assert {
        "awskey",
        "githubtoken",
        "slack",
        "stripe",
        "openai",
        "jwttoken",
        "privatekey",
        "basicauth",
        "gitlabtoken",
        "sendgrid",
        "twiliokey",
        "npm",
        "pypitoken",
    } <= names
    assert all(type(d.regex).__module__.startswith("re2") for d in state.detectors)


def _unbounded_nested(tree: Any, inside: bool = False) -> bool:
    """True if a parsed ``re`` pattern nests an unbounded repeat inside another repeat (ReDoS shape)."""
    for op, arg in tree:
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            _low, high, sub = arg
            unbounded = high == sre_constants.MAXREPEAT
            if inside and unbounded:
                return True
            if _unbounded_nested(sub, inside or unbounded or high > 1):
                return True
        elif op == sre_constants.SUBPATTERN:
            if _unbounded_nested(arg[-1], inside):
                return True
        elif op == sre_constants.BRANCH and any(_unbounded_nested(b, inside) for b in arg[1]):
            return True
    return False


@pytest.mark.parametrize(
    "pattern", [detectors._DIGIT_GROUP, keynames._SPLIT, keynames._CAMEL], ids=lambda p: p.pattern[:30]
)
def test_python_re_patterns_have_no_nested_unbounded_repeats(pattern: re.Pattern[str]) -> None:
    assert not _unbounded_nested(sre_parse.parse(pattern.pattern))


def test_the_nesting_check_catches_a_redos_shape() -> None:
    assert _unbounded_nested(sre_parse.parse(r"(a+)+$"))
    assert _unbounded_nested(sre_parse.parse(r"(?:\w+\s?)+$"))
    assert not _unbounded_nested(sre_parse.parse(r"\d(?:[ -]{0,3}\d){12}"))


fragments = st.sampled_from(
    [e["secret"] for e in IN_TEXT]
    + [e["text"] for e in IN_TEXT]
    + ["password", "=", ":", " is ", "-", "://", "@", "eyJ", "AKIA", "Bearer ", " "]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(fragments | st.text(max_size=12), max_size=8))
def test_the_prefilter_never_hides_what_a_detector_finds(parts: list[str]) -> None:
    text = "".join(parts)
    if find_secrets(text, prefilter=False):
        assert may_hold_secret(text)


separators = st.sampled_from([" ", "\n", "\t", ", ", "; ", " (", ") ", '"', "'", " | "])
innocent_text = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "Zs", "P")), max_size=40)


def _nest(value: Any, path: list[int]) -> Any:
    for step in path:
        value = {"items": [value], "meta": {"n": step}} if step % 2 else [{"note": value}, step]
    return value


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(IN_TEXT),
    innocent_text,
    separators,
    separators,
    innocent_text,
    st.lists(st.integers(0, 9), max_size=5),
)
def test_embedded_secrets_never_survive(
    entry: dict[str, str], before: str, sep1: str, sep2: str, after: str, path: list[int]
) -> None:
    text = f"{before}{sep1}{entry['text']}{sep2}{after}"
    value = _nest(text, path)
    for out in (DEFAULT_REDACTOR(value), DEFAULT_REDACTOR.for_audit(value, strict=True)):
        assert entry["secret"] not in dump(out)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(BY_KEY), st.lists(st.integers(0, 9), max_size=5), innocent_text)
def test_secrets_under_sensitive_keys_never_survive_and_their_echoes_are_scrubbed(
    entry: dict[str, str], path: list[int], text: str
) -> None:
    value = _nest(
        {
            entry["key"]: entry["secret"],
            "echo": f"{text} {entry['secret']} {text}",
            "b64": base64.b64encode(entry["secret"].encode()).decode(),
        },
        path,
    )
    for out in (DEFAULT_REDACTOR(value), DEFAULT_REDACTOR.for_audit(value)):
        assert entry["secret"] not in dump(out)
        assert base64.b64encode(entry["secret"].encode()).decode() not in dump(out)


@pytest.mark.parametrize("secret", ["hunter2-secret", 'pa"ss\\word/+é 9', "s3cr3t value&x=1"])
def test_echoes_are_scrubbed_in_every_common_encoding(secret: str) -> None:
    data = secret.encode()
    echoes = [
        secret,
        base64.b64encode(data).decode(),
        base64.urlsafe_b64encode(data).decode().rstrip("="),
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret),
        urllib.parse.quote(secret, safe=""),
        data.hex(),
        data.hex().upper(),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    ]
    assert set(echoes) <= set(encodings(secret)) | {secret}
    output = {"text": " / ".join(f"<{e}>" for e in echoes), "list": echoes}
    out = DEFAULT_REDACTOR.scrub(output, [secret])
    for echo in echoes:
        assert echo not in dump(out), echo


def test_a_50_mb_digit_string_is_bounded_with_its_size_and_hash() -> None:
    digits = "7" * 50_000_000
    out = DEFAULT_REDACTOR.for_audit({"output": digits})["output"]
    assert len(out) <= MAX_TEXT + 120
    assert f"[TRUNCATED:50000000 bytes, sha256:{hashlib.sha256(digits.encode()).hexdigest()}]" in out


def test_a_secret_cut_by_the_bound_is_dropped_whole() -> None:
    redactor = Redactor(max_text=1024)
    key = "ghp_" + "A1b2" * 9
    text = "x " * 500 + key  # the key starts before the limit and ends after it
    out = redactor({"o": text})["o"]
    assert "ghp_" not in out and "A1b2" not in out and "[TRUNCATED:" in out


def test_limits_are_validated() -> None:
    with pytest.raises(ConfigError, match="max_stored_output"):
        GovernorConfig(max_stored_output=10)
    assert Redactor(max_text=5000).max_text == 5000


def test_keys_with_invisible_or_look_alike_characters_are_still_sensitive() -> None:
    for key in ["pass\u200bword", "p\u0430ssword", "ＡＰＩ＿ＫＥＹ", "Pa\u0301ssword", "to\u00adken", "SECRET\u2060"]:
        assert DEFAULT_REDACTOR({key: "value-123456"}) == {key: REDACTED}, key


def test_policy_sensitive_fields_still_hide_and_scrub() -> None:
    redactor = DEFAULT_REDACTOR.with_keys(frozenset({"account_number"}))
    out = redactor({"accountNumber": "DE8937040044", "memo": "acct DE8937040044 ok"})
    assert out == {"accountNumber": REDACTED, "memo": f"acct {REDACTED} ok"}


def test_one_walk_scans_a_bounded_number_of_characters() -> None:
    redactor = Redactor(max_text=1024)  # scan budget 4 KiB
    value = [f"{i:05d} " + "word " * 300 for i in range(100)]  # 150 KiB of distinct strings
    out = redactor(value)
    assert any("scan budget" in item for item in out)
    assert sum(len(item) for item in out) < 16 * 1024


def test_cards_spaced_digit_by_digit_are_found() -> None:
    spaced = " ".join("4111111111111111")
    assert "[REDACTED:card]" in redact_text(f"card {spaced} end")
    assert redact_text("ref 4111 1111 1111 1112 ok") == "ref 4111 1111 1111 1112 ok"  # fails Luhn


@pytest.mark.parametrize("name", ["claw_governance", "claw_governance.policy", "claw_governance.escalation"])
def test_the_project_loggers_redact_their_records(name: str, caplog: pytest.LogCaptureFixture) -> None:
    token = next(e["secret"] for e in IN_TEXT if e["name"] == "github-pat-classic")
    with caplog.at_level("ERROR", logger=name):
        logging.getLogger(name).error("upstream said %s", f"bad token {token}")
    assert caplog.records and token not in caplog.text and "[REDACTED" in caplog.text


def test_health_faults_are_redacted(make_governor: Any) -> None:
    token = next(e["secret"] for e in IN_TEXT if e["name"] == "aws-access-key")
    gov = make_governor()
    gov._fault("plugin", f"ValueError: rejected {token}")
    assert token not in json.dumps(gov.health_check())


def test_cli_redaction_does_not_cascade_through_echoes() -> None:
    """A harmless value under a sensitive-looking key must not blank every equal value in printed output."""
    value = {"removed": {"exec": "tools.profile (minimal)", "auth_helper": "tools.profile (minimal)"}}
    assert DEFAULT_REDACTOR(value, echoes=False)["removed"]["exec"] == "tools.profile (minimal)"
    assert DEFAULT_REDACTOR(value)["removed"]["exec"] == REDACTED  # stored values: the echo is scrubbed
