"""Invisible and look-alike characters in action names and agent ids (issue 13, class 1).

Before this change every example below except the plain ones was ALLOWED under ``allow: ["*"]`` +
``deny: ["delete:*"]``, and a revoked ``bot`` came back as ``bot\\u200b`` or Cyrillic ``bоt``.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claw_governance import Governor, Outcome
from claw_governance.cli.policy import lint_path
from claw_governance.errors import ConfigError, IdentityError
from claw_governance.model import ToolCall
from claw_governance.policy.names import forbidden_character, is_mixed_script, scripts, skeleton_key, skeleton_keys
from claw_governance.policy.store import load_policy_set

POLICY = """\
agent: "*"
permissions:
  allow: ["*"]
  deny: ["delete:*", "kill:*"]
"""

# Every bypass the red-team review listed, as the action it was used in.
ISSUE_EXAMPLES = [
    "de\u200blete:users",  # zero-width space
    "de\u200dlete:users",  # zero-width joiner
    "de\u00adlete:users",  # soft hyphen
    "\ufeffdelete:users",  # byte order mark
    "de\u2060lete:users",  # word joiner
    "\u202edelete:users",  # right-to-left override
    "de\u180elete:users",  # Mongolian vowel separator
    "de\u0301lete:users",  # combining mark (composes to é)
    "d\u0336elete:users",  # combining mark that composes with nothing
    "\x00delete:users",  # NUL, leading
    "del\x00ete:users",  # NUL, inner
    "delete:users\x00",  # NUL, trailing
    "d\u0435lete:users",  # Cyrillic е
    "\u0501elete:users",  # Cyrillic ԁ
    "k\u0130ll:proc",  # Latin capital I with dot above, folds to i + U+0307
    "\u0501\u0435\u04cf\u0435t\u0435:users",  # nearly all-Cyrillic look-alike
    "de1ete:users",  # digit one for l
    "delete\ue000:users",  # private use
    "delete\U000e0001:users",  # language tag (Cf)
    "delete\ufdd0:users",  # noncharacter
    "delete\u0378:users",  # unassigned
    "DELETE:USERS ",  # case and spacing (already handled by NFKC + casefold + trim)
    "\uff44elete:users",  # fullwidth d
]


@pytest.fixture
def policy(tmp_path: Path):
    (tmp_path / "p.yaml").write_text(POLICY)
    return load_policy_set(tmp_path)


def _decide(policy, action: str, agent: str = "bot"):
    return policy.decide(ToolCall(agent, action, {}))


@pytest.mark.parametrize("action", ISSUE_EXAMPLES, ids=lambda a: a.encode("unicode_escape").decode())
def test_issue_examples_are_never_allowed(policy, action: str) -> None:
    decision = _decide(policy, action)
    assert decision.outcome is Outcome.DENY, decision.reason


def test_plain_names_still_work(policy) -> None:
    assert _decide(policy, "read:users").outcome is Outcome.ALLOW
    assert _decide(policy, "delete:users").outcome is Outcome.DENY
    # Non-Latin names in one script are ordinary names.
    assert _decide(policy, "lire:données").outcome is Outcome.ALLOW
    assert _decide(policy, "読み込み:ファイル").outcome is Outcome.ALLOW  # Han + kana: one (Japanese) script set
    assert _decide(policy, "чтение:файл").outcome is Outcome.ALLOW


def test_reason_names_the_character(policy) -> None:
    decision = _decide(policy, "de\u200blete:users")
    assert "U+200B ZERO WIDTH SPACE" in decision.reason
    assert "format" in decision.reason
    assert "agent id" in _decide(policy, "read:x", agent="bot\u200b").reason


def test_lookalike_of_a_denied_name_is_denied_by_that_rule(policy) -> None:
    decision = _decide(policy, "d\u0435lete:users")
    assert decision.rule is not None and decision.rule.pattern == "delete:*"
    assert "look-alike" in decision.reason


def test_mixed_script_is_not_allowed_through_star(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text('agent: "*"\npermissions:\n  allow: ["*"]\n')  # no deny rule at all
    policy = load_policy_set(tmp_path)
    decision = _decide(policy, "d\u0435lete:users")
    assert decision.outcome is Outcome.DENY
    assert "mixes scripts" in decision.reason and "Cyrl" in decision.reason
    assert _decide(policy, "delete:users").outcome is Outcome.ALLOW


def test_a_rule_that_writes_the_script_may_allow_it(tmp_path: Path) -> None:
    # The pattern's literal text is itself Latin + Cyrillic: the author named both scripts.
    (tmp_path / "p.yaml").write_text('agent: "*"\npermissions:\n  allow: ["d\u0435lete:*", "d\u0435lete-exact"]\n')
    policy = load_policy_set(tmp_path)
    assert _decide(policy, "d\u0435lete:users").outcome is Outcome.ALLOW
    assert _decide(policy, "d\u0435lete-exact").outcome is Outcome.ALLOW
    (tmp_path / "p.yaml").write_text('agent: "*"\npermissions:\n  allow: ["чтение:*"]\n')  # Cyrillic only
    policy = load_policy_set(tmp_path)
    assert _decide(policy, "чтение:file").outcome is Outcome.DENY  # Latin reached only through '*'
    assert _decide(policy, "чтение:файл").outcome is Outcome.ALLOW


FORBIDDEN = st.characters(categories=["Cc", "Cf", "Co", "Cs", "Cn"]) | st.sampled_from(
    ["\ufdd0", "\ufffe", "\uffff", "\U0001fffe", "\U0010ffff", "\u200b", "\u2066", "\x00", "\x7f", "\x85"]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.text(max_size=12), bad=FORBIDDEN, suffix=st.text(max_size=12))
def test_property_forbidden_characters_never_allowed(policy, prefix: str, bad: str, suffix: str) -> None:
    action = prefix + bad + suffix
    assert forbidden_character(action) is not None
    decision = _decide(policy, action)
    assert decision.outcome is Outcome.DENY
    assert "contains U+" in decision.reason  # denied for the character, not by luck of the rules


# Single characters that look like a letter of "delete" (from confusables.txt, chosen by hand for the test).
LOOKALIKES = {
    "d": ["\u0501", "\u217e", "\U0001d41d", "\u13e7"],
    "e": ["\u0435", "\u04bd", "\u212e", "\uab32"],
    "l": ["\u04cf", "1", "I", "\u0399", "\u2160", "|", "\u05c0"],
    "t": ["\U0001d42d"],
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_lookalikes_of_delete_never_allowed(policy, data: st.DataObject) -> None:
    chars = [data.draw(st.sampled_from([c, *LOOKALIKES.get(c, [])])) for c in "delete"]
    action = "".join(chars) + ":" + data.draw(st.text(alphabet="abcxyz_", min_size=1, max_size=8))
    assert _decide(policy, action).outcome is Outcome.DENY, action


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.text(max_size=30))
def test_property_random_unicode_deny_always_wins(policy, action: str) -> None:
    decision = _decide(policy, action)
    if decision.outcome is Outcome.ALLOW:
        assert forbidden_character(action) is None
        assert not is_mixed_script(action)
        assert not skeleton_key(action).startswith(("delete:", "kill:"))


def test_helpers() -> None:
    assert skeleton_key("bot") == skeleton_key("b\u043et") == skeleton_key("BOT") == skeleton_key(" b0t ")
    assert skeleton_key("bot") != skeleton_key("bat")
    assert skeleton_keys("deIete") & skeleton_keys("delete") and skeleton_keys("KILL") & skeleton_keys("kill")
    assert scripts("d\u0435lete") == {"Latn", "Cyrl"} and is_mixed_script("d\u0435lete")
    assert not is_mixed_script("delete:users-1") and not is_mixed_script("ファイル:読む")
    assert forbidden_character("read:x") is None and forbidden_character("lire:données") is None
    assert "noncharacter" in str(forbidden_character("x\ufdd0"))
    assert "surrogate" in str(forbidden_character("x\ud800"))
    assert unicodedata.category("\u0378") == "Cn" and "unassigned" in str(forbidden_character("\u0378"))


# -------------------------------------------------------------------------------------------- agent ids


@pytest.mark.parametrize(
    "alias", ["bot\u200b", "b\u043et", "BOT", " bot ", "Bot", "b0t", "b\u00f3t", "bo\U0001d42d", "\ufeffbot", "bot\x00"]
)
def test_lookalike_of_a_revoked_id_is_refused(tmp_path: Path, alias: str) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "p.yaml").write_text(POLICY)
    with Governor(tmp_path / "p", audit_path=tmp_path / "audit", identity_path=tmp_path / "ids") as gov:
        gov.agent("bot")
        gov.identities.revoke("bot", "compromised")
        with pytest.raises((IdentityError, ConfigError)):
            gov.agent(alias)
        assert gov.identities.get(alias) is None
        assert not gov.agent("bot").check("read:x").allowed  # still revoked
        gov.agent("robot")  # an unrelated id is fine


def test_lookalike_of_an_active_id_is_refused(tmp_path: Path) -> None:
    with Governor(None) as gov:
        gov.agent("alice")
        with pytest.raises(IdentityError, match="looks like the existing agent 'alice'"):
            gov.identities.create("\u0430lice")  # Cyrillic а
        gov.agent("alice")  # the id itself is still fine


# ------------------------------------------------------------------------------------------------ lint


def test_lint_flags_mixed_script_and_invisible_patterns(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        'agent: bot\npermissions:\n  allow: ["d\u0435lete:*", "re\u200bad:*"]\n'
        '  deny: ["delete:*"]\n  escalate: [{action: "x", timeout: 1h}]\n'
    )
    findings = [str(f) for f in lint_path(tmp_path)]
    assert any("mixes scripts" in f and ":3:" in f and "warning" in f for f in findings), findings
    (tmp_path / "q.yaml").write_text('agent: "b\u043et"\npermissions:\n  deny: ["x"]\n')
    findings = [str(f) for f in lint_path(tmp_path)]
    assert any("agent id 'bоt' mixes scripts" in f for f in findings), findings
    assert any("U+200B" in f and "error" in f for f in findings), findings


def test_surrogate_in_an_action_is_denied_and_audited(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "p.yaml").write_text(POLICY)
    with Governor(tmp_path / "p", audit_path=tmp_path / "audit") as gov:
        decision = gov.agent("bot").check("delete\ud800:users")
        assert decision.outcome is Outcome.DENY and "surrogate" in decision.reason
        assert decision.stage == "policy"  # not "audit": the entry was written
        assert gov.health_check()["faults"] == {}
        entries = gov.audit.query(type="policy_decision")
        assert any("\\ud800" in (e.get("action") or "") for e in entries)
