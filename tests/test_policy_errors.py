"""Bad policy input: each case is a PolicyError naming file and line; never a raw traceback, never an ALLOW."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from claw_governance import Governor, Outcome, PolicyError
from claw_governance.policy import Condition, ConditionSyntaxError, load_policy_set
from claw_governance.policy.conditions import ArgumentLimits

Write = Callable[..., Path]


def error_of(write_policy: Write, text: str) -> PolicyError:
    folder = write_policy(text)
    with pytest.raises(PolicyError) as info:
        load_policy_set(folder)
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("agent: a\npermissions:\n  allow: [x\n", 4, "invalid YAML"),
        ("agent: a\npermissions:\n\tallow: [x]\n", 3, "invalid YAML"),
        ("agent: a\npermissions:\n  allow: 5\n", 3, "must be a list"),
        ("agent: a\npermissions:\n  allow: [{action: 5}]\n", 3, "must be a string pattern"),
        ("agent: a\npermissions: [allow]\n", 2, "must be a mapping"),
        ("agent: [a]\n", 1, "'agent' must be a non-empty string"),
        ("permissions: {allow: [x]}\n", 1, "missing 'agent'"),
        ("agent: a\npermisions:\n  allow: [x]\n", 2, "unknown key 'permisions'"),
        ("agent: a\npermissions:\n  allow: [x]\n  denny: [y]\n", 4, "unknown key 'denny'"),
        ("agent: a\npermissions:\n  escalate:\n    - action: x\n      timout: 4h\n", 5, "unknown key 'timout'"),
        ("agent: a\npermissions:\n  escalate:\n    - action: x\n      timeout: soon\n", 5, "duration"),
        ("agent: a\npermissions:\n  deny:\n    - action: x\n      timeout: 4h\n", 5, "only applies to escalate"),
        ("agent: a\npermissions:\n  allow:\n    - action: x\n      condition: amount >\n", 5, "invalid condition"),
        ("agent: a\npermissions:\n  allow:\n    - condition: amount > 1\n", 4, "needs an 'action'"),
        ("agent: a\ntrust: {min_score: high}\n", 2, "trust.min_score"),
        ("agent: a\naudit: {level: verbose}\n", 2, "audit.level"),
        ("agent: a\nrate_limits: {x: lots}\n", 2, "rate_limits"),
        ("agent: a\nsensitive_fields: ssn\n", 2, "sensitive_fields"),
        ("agent: a\nagent: b\n", 2, "duplicate key"),
        ("- 1\n- 2\n", 1, "must be a mapping"),
        ("just a string\n", 1, "must be a mapping"),
        ('agent: a\npermissions:\n  allow: [""]\n', 3, "is empty"),
    ],
)
def test_bad_documents_name_file_and_line(write_policy: Write, text: str, line: int, fragment: str) -> None:
    err = error_of(write_policy, text)
    assert err.line == line, str(err)
    assert err.file is not None and err.file.endswith("policy.yaml")
    assert fragment in str(err)
    assert "\n" not in str(err) and "Traceback" not in str(err)


def test_empty_file(write_policy: Write) -> None:
    err = error_of(write_policy, "")
    assert "empty policy file" in str(err) and err.line == 1
    assert "empty" in str(error_of(write_policy, "# only a comment\n"))


def test_not_utf8(write_policy: Write) -> None:
    folder = write_policy("agent: a\n")
    (folder / "policy.yaml").write_bytes(b"agent: a\npermissions:\n  allow: [\xff\xfe]\n")
    err = error_of(lambda text: folder, "")
    assert err.line == 3 and "UTF-8" in str(err)


def test_a_50_mb_file_is_refused_quickly(write_policy: Write) -> None:
    folder = write_policy("agent: a\n")
    with open(folder / "policy.yaml", "wb") as fh:
        fh.write(b"agent: a\npermissions:\n  allow:\n")
        fh.write(b"    - read:x\n" * (50 * 1024 * 1024 // 12))
    started = time.perf_counter()
    with pytest.raises(PolicyError) as info:
        load_policy_set(folder)
    assert time.perf_counter() - started < 2
    assert "MB limit" in str(info.value) and info.value.line == 1


@pytest.mark.parametrize(
    "text",
    [
        "agent: a\nx-deep: " + "[" * 5000 + "]" * 5000 + "\n",
        "agent: a\nx-deep: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
        "agent: a\nx-deep:\n" + "".join("  " * i + "- \n" for i in range(1, 400)),
    ],
)
def test_deep_nesting(write_policy: Write, text: str) -> None:
    err = error_of(write_policy, text)
    assert err.line is not None and err.line >= 1
    assert "nesting" in str(err) or "invalid YAML" in str(err)


def test_alias_bomb(write_policy: Write) -> None:
    lines = ["agent: a", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    lines += ["x-bomb: *a8"]
    err = error_of(write_policy, "\n".join(lines) + "\n")
    assert "nodes" in str(err) or "unknown key" in str(err)


@pytest.mark.parametrize(
    "expression",
    [
        "(" * 100000 + "amount" + ")" * 100000 + " > 1",  # makes the CEL parser panic if not bounded first
        "(" * 30 + "amount" + ")" * 30 + " > 1",
        "amount > 1 && " * 400 + "true",
        "amount >",
        "import os",
        "__import__('os').system('true')",
        "not amount > 1",
    ],
)
def test_conditions_that_cannot_compile_are_policy_errors(write_policy: Write, expression: str) -> None:
    text = f"agent: a\npermissions:\n  allow:\n    - action: x\n      condition: '{expression}'\n"
    err = error_of(write_policy, text)
    assert err.line == 5
    assert len(str(err)) < 400


def test_conditions_evaluate_safely_at_run_time() -> None:
    cond = Condition("size(items) > 2 && items.all(i, i > 0)")
    assert cond.evaluate({"items": [1, 2, 3]}) is True
    assert cond.evaluate({"items": [1, -2, 3]}) is False
    assert cond.evaluate({"items": "abc"}) is None  # wrong type: unknown
    assert cond.evaluate({}) is None  # missing: unknown
    assert Condition("amount + 1").evaluate({"amount": 1}) is None  # not a boolean: unknown
    assert Condition("amount.__class__ == 1").evaluate({"amount": 1}) is None  # no Python objects exposed
    big = {"items": list(range(1, 200_000))}
    assert cond.evaluate(big) is None  # over the default 10,000-value bound: unknown, never evaluated
    started = time.perf_counter()
    assert cond.evaluate(big, ArgumentLimits(max_items=300_000)) is True
    assert time.perf_counter() - started < 2  # bounded by the input's size
    with pytest.raises(ConditionSyntaxError):
        Condition("")


def test_broken_policy_at_startup_is_an_error_not_an_allow(tmp_path: Path, write_policy: Write) -> None:
    folder = write_policy("agent: a\npermissions:\n  allow: [x\n")
    with pytest.raises(PolicyError):
        Governor(folder, tmp_path / "audit", tmp_path / "ids", load_entry_points=False)


def test_missing_policy_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        Governor(tmp_path / "nope", tmp_path / "audit", tmp_path / "ids", load_entry_points=False)
    assert "does not exist" in str(info.value)


def test_no_policy_path_means_deny_everything(tmp_path: Path) -> None:
    with Governor(None, tmp_path / "audit", tmp_path / "ids", load_entry_points=False) as gov:
        assert gov.agent("a").check("read:x").outcome is Outcome.DENY
