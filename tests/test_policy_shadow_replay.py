"""Shadow mode (``mode: shadow`` rules audited, never enforced) and ``claw-gov policy replay``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claw_governance import Governor, Outcome
from claw_governance.cli import build_cli
from claw_governance.cli.policy import lint_path
from claw_governance.errors import PolicyError
from claw_governance.model import ToolCall
from claw_governance.policy import load_policy_set
from claw_governance.policy.replay import known_arguments, replay

ENFORCING = """\
agent: bot
permissions:
  allow: ["read:*", "http:post", "pay"]
  deny: ["delete:*"]
  escalate:
    - action: pay
      condition: amount > 500
"""


def decisions(gov: Governor) -> list[dict[str, Any]]:
    return [e["decision"] for e in gov.audit.query(type="policy_decision")]


@pytest.fixture
def gov_at(tmp_path: Path) -> Iterator[Callable[..., Governor]]:
    made: list[Governor] = []

    def make(files: dict[str, str], **settings: Any) -> Governor:
        folder = tmp_path / "policies"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)
        settings.setdefault("load_entry_points", False)
        gov = Governor(folder, tmp_path / "audit", tmp_path / "identities", **settings)
        made.append(gov)
        return gov

    yield make
    for gov in made:
        gov.close()


# ---------------------------------------------------------------------------------------------- shadow


def test_a_shadow_rule_is_audited_as_would_deny_and_never_enforced(gov_at: Callable[..., Governor]) -> None:
    policy = ENFORCING.replace(
        '  deny: ["delete:*"]\n',
        """\
  deny:
    - "delete:*"
    - action: http:post
      condition: '!url.startsWith("https://internal.example.com/")'
      mode: shadow
""",
    )
    gov = gov_at({"bot.yaml": policy})
    agent = gov.agent("bot")
    ran: list[str] = []
    result = agent.execute("http:post", {"url": "https://evil.example.net/drop"}, lambda a: ran.append(a["url"]))
    assert result.success and ran == ["https://evil.example.net/drop"]  # the shadow rule did not decide
    assert agent.check("http:post", {"url": "https://internal.example.com/x"}).allowed
    first, second = decisions(gov)
    assert first["outcome"] == "allow" and first["shadow"]["would"] == "would_deny"
    assert first["shadow"]["enforced"] == "allow" and first["shadow"]["rule"]["source"].endswith("bot.yaml:6")
    assert "shadow" not in second  # the shadow rule would not change this one: nothing recorded


def test_a_shadow_document_would_escalate_and_would_allow(gov_at: Callable[..., Governor]) -> None:
    candidate = """\
agent: bot
mode: shadow
permissions:
  allow: ["write:notes"]
  escalate: ["read:secrets"]
"""
    gov = gov_at({"bot.yaml": ENFORCING, "candidate.yaml": candidate})
    agent = gov.agent("bot")
    assert agent.check("read:secrets").allowed
    assert agent.check("write:notes").outcome is Outcome.DENY  # the shadow allow does not open a door
    assert agent.check("delete:x").outcome is Outcome.DENY
    a, b, c = decisions(gov)
    assert (a["shadow"]["would"], b["shadow"]["would"]) == ("would_escalate", "would_allow")
    assert "shadow" not in c
    assert gov.escalations.pending() == []  # would_escalate opens nothing


def test_an_agent_with_only_a_shadow_policy_has_no_policy(gov_at: Callable[..., Governor]) -> None:
    gov = gov_at({"new.yaml": "agent: newbie\nmode: shadow\npermissions: {allow: ['*']}\n"})
    decision = gov.agent("newbie").check("read:x")
    assert decision.outcome is Outcome.DENY and "No policy for agent" in decision.reason
    assert decisions(gov)[0]["shadow"]["would"] == "would_allow"


def test_shadow_compares_the_policy_even_when_trust_decided(gov_at: Callable[..., Governor]) -> None:
    gov = gov_at(
        {
            "bot.yaml": ENFORCING + "trust: {min_score: 100}\n",
            "s.yaml": "agent: bot\nmode: shadow\npermissions: {deny: ['read:*']}\n",
        }
    )
    agent = gov.agent("bot")
    agent.execute("read:x", {}, lambda a: 1 / 0)  # trust 95: below 100
    decision = agent.check("read:x")
    assert decision.stage == "trust"
    shadow = decisions(gov)[-1]["shadow"]
    assert (shadow["enforced"], shadow["would"]) == ("allow", "would_deny")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "agent: a\nmode: shadow\npermissions: {allow: [x]}\ntrust: {min_score: 1}\n",
            ":4: a 'mode: shadow' document holds rules only; 'trust' acts on enforcement",
        ),
        ("agent: a\nmode: shadow\nrate_limits: {'x': 1/minute}\n", ":3: a 'mode: shadow' document holds rules only"),
        (
            "agent: a\nmode: shadow\npermissions:\n  deny:\n    - {action: x, mode: enforce}\n",
            ":5: permissions.deny[0].mode: a rule of a 'mode: shadow' document cannot be enforced",
        ),
        ("agent: a\nmode: dry-run\n", ":2: mode must be one of enforce, shadow, not 'dry-run'"),
        (
            "agent: a\npermissions:\n  deny:\n    - {action: x, mode: log}\n",
            ":4: permissions.deny[0].mode must be one of",
        ),
    ],
)
def test_shadow_mistakes_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy_set(path)
    assert message in str(caught.value) and str(caught.value).startswith(str(path))


def test_lint_names_shadow_rules(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("agent: a\npermissions:\n  deny:\n    - {action: x, mode: shadow}\n  allow: [y]\n")
    infos = [str(f) for f in lint_path(path) if f.level == "info"]
    assert infos == [
        f'{path}:4: info: agent "a": 1 shadow rule(s) (mode: shadow): audited as would_deny / '
        "would_escalate / would_allow, never enforced"
    ]


def test_no_shadow_rules_no_shadow_work() -> None:
    policy = load_policy_set(
        Path(__file__).parent / "data" / "seed-toolkit" / "policies" / "customer-service-agent.yaml"
    )
    assert not policy.has_shadow and policy.shadow_view is policy
    assert policy.shadow_decision(ToolCall("customer-service-agent", "read:ticket", {})) is None


# ---------------------------------------------------------------------------------------------- replay


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def run_replay(candidate: Path, audit: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        build_cli(),
        ["policy", "replay", str(candidate), "--from", today(), "--to", today(), "--audit", str(audit), *extra],
    )
    return result.exit_code, result.output


def test_replay_reports_flips_grouped_by_rule_and_gates_ci(gov_at: Callable[..., Governor], tmp_path: Path) -> None:
    gov = gov_at({"bot.yaml": ENFORCING})
    agent = gov.agent("bot")
    for i in range(3):
        agent.check("http:post", {"url": f"https://evil.example.net/{i}"})
    agent.check("http:post", {"url": "https://internal.example.com/ok"})
    agent.check("pay", {"amount": 900})
    agent.check("read:x")
    gov.close()
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(
        ENFORCING.replace(
            '  deny: ["delete:*"]\n',
            """\
  deny:
    - "delete:*"
    - action: http:post
      condition: '!url.startsWith("https://internal.example.com/")'
""",
        ).replace("amount > 500", "amount > 1000")
    )
    code, out = run_replay(candidate, tmp_path / "audit")
    assert code == 1, out
    lines = out.splitlines()
    assert lines[0].split() == ["rule", "(candidate)", "change", "calls", "first", "seen"]
    assert 'deny "http:post" when !url.startsWith("https://internal.example.com/")' in lines[1]
    assert "allow -> deny" in lines[1] and " 3 " in lines[1]
    assert "escalate -> allow" in lines[2] and 'allow "pay"' in lines[2]
    assert lines[-1].startswith("replayed 6 decision(s)") and "4 would flip, 3 between allow and deny" in lines[-1]

    code, out = run_replay(candidate, tmp_path / "audit", "--json")
    report = json.loads(out)
    assert code == 1 and report["flips"] == 4 and report["allow_deny_flips"] == 3
    assert [(g["before"], g["after"], g["calls"]) for g in report["groups"]] == [
        ("allow", "deny", 3),
        ("escalate", "allow", 1),
    ]
    assert {d["action"] for d in report["decisions"]} == {"http:post", "pay"}

    same = tmp_path / "same.yaml"
    same.write_text(ENFORCING)
    code, out = run_replay(same, tmp_path / "audit")
    assert code == 0 and "0 would flip" in out
    escalate_only = tmp_path / "escalate_only.yaml"
    escalate_only.write_text(ENFORCING.replace("amount > 500", "amount > 1000"))
    assert run_replay(escalate_only, tmp_path / "audit")[0] == 0  # no allow<->deny flip: passes the gate
    assert run_replay(candidate, tmp_path / "audit", "--agent", "someone-else")[0] == 0


def test_redacted_arguments_are_unknown_to_the_candidate(gov_at: Callable[..., Governor], tmp_path: Path) -> None:
    gov = gov_at({"bot.yaml": "agent: bot\npermissions: {allow: ['*']}\n"})
    gov.agent("bot").check("pay", {"password": "hunter2", "amount": 10, "note": "card 4111 1111 1111 1111"})
    gov.close()
    candidate = tmp_path / "c.yaml"
    # Each condition is false for the real arguments; redacted, they are unknown: deny matches, allow does not.
    candidate.write_text(
        "agent: bot\npermissions:\n  allow:\n    - {action: pay, condition: 'amount < 100'}\n"
        "    - {action: pay, condition: 'note == \"x\"'}\n"
        "  deny:\n    - {action: pay, condition: 'password == \"x\"'}\n"
    )
    code, out = run_replay(candidate, tmp_path / "audit", "--json")
    (flip,) = json.loads(out)["decisions"]
    assert code == 1 and (flip["before"], flip["after"]) == ("allow", "deny")
    assert "could not be evaluated" in flip["reason"]
    assert known_arguments(
        {
            "password": "[REDACTED]",
            "amount": 10,
            "nested": {"ssn": "[REDACTED:ssn]", "a": 1},
            "tags": ["ok", "[REDACTED:jwt]"],
        }
    ) == {"amount": 10, "nested": {"a": 1}}


def test_replay_skips_what_the_policy_did_not_decide(gov_at: Callable[..., Governor], tmp_path: Path) -> None:
    gov = gov_at({"bot.yaml": ENFORCING + "trust: {min_score: 100}\n"})
    agent = gov.agent("bot")
    agent.execute("read:x", {}, lambda a: 1 / 0)  # allowed, fails: trust 95
    agent.check("read:x")  # denied by trust: not the policy's decision
    gov.close()
    candidate = tmp_path / "c.yaml"
    candidate.write_text("agent: bot\npermissions: {deny: ['read:*']}\n")
    code, out = run_replay(candidate, tmp_path / "audit")
    assert code == 1 and "replayed 1 decision(s)" in out and "skipped (not decided by the policy): trust 1" in out


def test_replay_errors_are_one_line(tmp_path: Path) -> None:
    code, out = run_replay(tmp_path / "none.yaml", tmp_path / "audit")
    assert code == 2 and out.count("\n") == 1 and out.startswith("error: ")
    (tmp_path / "c.yaml").write_text("agent: a\npermissions: {allow: [x]}\n")
    code, out = run_replay(tmp_path / "c.yaml", tmp_path / "no-audit")
    assert code == 2 and "no such audit trail folder" in out


# -------------------------------------------------------------------- replay == brute-force re-decision

ACTIONS = ["read:a", "read:b", "pay", "delete:a", "http:post"]
RULES = st.lists(
    st.tuples(
        st.sampled_from(["allow", "deny", "escalate"]),
        st.sampled_from(["read:*", "read:a", "pay", "*", "delete:*", "http:post"]),
        st.sampled_from([None, "amount > 50", 'password == "s3"', 'note == "hi"']),
    ),
    max_size=6,
)


def policy_text(rules: list[tuple[str, str, str | None]]) -> str:
    lines = ["agent: bot", "permissions:"]
    for effect in ("allow", "deny", "escalate"):
        items = [(p, c) for e, p, c in rules if e == effect]
        if items:
            lines.append(f"  {effect}:")
            lines += [f"    - {json.dumps({'action': p, 'condition': c} if c else p)}" for p, c in items]
    return "\n".join(lines) + "\n"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    enforcing=RULES,
    candidate=RULES,
    calls=st.lists(
        st.tuples(
            st.sampled_from(ACTIONS),
            st.integers(0, 100),
            st.sampled_from(["s3", "no"]),
            st.sampled_from(["hi", "card 4111 1111 1111 1111"]),
        ),
        min_size=1,
        max_size=12,
    ),
)
def test_the_flip_report_equals_a_brute_force_re_decision(
    tmp_path_factory: pytest.TempPathFactory,
    enforcing: list[Any],
    candidate: list[Any],
    calls: list[tuple[str, int, str, str]],
) -> None:
    root = tmp_path_factory.mktemp("replay")
    (root / "policies").mkdir()
    (root / "policies" / "bot.yaml").write_text(policy_text(enforcing))
    (root / "candidate.yaml").write_text(policy_text(candidate))
    made: list[tuple[str, ToolCall]] = []
    with Governor(root / "policies", root / "audit", root / "identities", load_entry_points=False) as gov:
        agent = gov.agent("bot")
        for action, amount, password, note in calls:
            decision = agent.check(action, {"amount": amount, "password": password, "note": note})
            made.append((decision.call.call_id, decision.call))
        entries = list(gov.audit.entries())
        enforcing_set = gov.policy
    candidate_set = load_policy_set(root / "candidate.yaml")
    report = replay(entries, candidate_set)

    expected = set()
    for call_id, call in made:
        before = enforcing_set.decide(call).outcome
        # What the trail keeps: the password key is redacted by name, a card number inside the note by value.
        known = {"amount": call.args["amount"]}
        if "4111" not in call.args["note"]:
            known["note"] = call.args["note"]
        after = candidate_set.decide(ToolCall("bot", call.action, known)).outcome
        if before is not after:
            expected.add((call_id, before, after))
    assert {(f.call_id, f.before, f.after) for f in report.flips} == expected
    assert report.replayed == len(calls) and report.allow_deny_flips == sum(
        {b, a} == {Outcome.ALLOW, Outcome.DENY} for _, b, a in expected
    )


def test_replay_reads_budget_stops_as_the_policys_allow(tmp_path: Path) -> None:
    policy = (
        "agent: bot\npermissions: {allow: [pay]}\n"
        "budgets:\n  - {action: pay, sum: amount, max: 100, per: 1d, then: escalate}\n"
    )
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text(policy)
    with Governor(tmp_path / "policies", tmp_path / "audit", tmp_path / "ids", load_entry_points=False) as gov:
        agent = gov.agent("bot")
        assert agent.check("pay", {"amount": 80}).allowed
        held = agent.check("pay", {"amount": 80})
        assert held.stage == "budget" and held.escalation_id
        gov.resolve_escalation(
            held.escalation_id, "approved", notes="verified", resolver=gov.reviewers.ensure("finance")
        )
        assert agent.check("pay", {"amount": 80}).stage == "escalation"
    candidate = tmp_path / "c.yaml"
    candidate.write_text("agent: bot\npermissions: {allow: [pay]}\n")
    code, out = run_replay(candidate, tmp_path / "audit")
    assert code == 0 and "replayed 3 decision(s)" in out and "0 would flip" in out
    candidate.write_text("agent: bot\npermissions: {deny: [pay]}\n")
    code, out = run_replay(candidate, tmp_path / "audit")
    assert code == 1 and "3 would flip, 3 between allow and deny" in out
