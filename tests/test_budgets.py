"""``budgets:``: counts and sums in a sliding window, atomic in the state store across processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claw_governance import Governor, Outcome
from claw_governance.errors import PolicyError
from claw_governance.policy import load_policy_set
from claw_governance.session import session_of
from claw_governance.state.memory import MemoryStateStore
from claw_governance.state.sqlite import SQLiteStateStore

REFUNDS = """\
agent: billing-bot
permissions:
  allow: ["payments:*", "read:*"]
  escalate:
    - action: payments:refund
      condition: amount > 500          # one large refund needs a human...
budgets:
  - action: payments:refund            # ...and so do many small ones
    sum: amount
    max: 2000
    per: 1d
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def governor(tmp_path: Path) -> Iterator[Callable[..., tuple[Governor, Clock]]]:
    made: list[Governor] = []

    def make(policy: str = REFUNDS, **settings: Any) -> tuple[Governor, Clock]:
        (tmp_path / "policies").mkdir(exist_ok=True)
        (tmp_path / "policies" / "p.yaml").write_text(policy)
        settings.setdefault("load_entry_points", False)
        gov = Governor(tmp_path / "policies", tmp_path / "audit", tmp_path / "identities", **settings)
        clock = Clock()
        gov.budget_gate.clock = clock
        made.append(gov)
        return gov, clock

    yield make
    for gov in made:
        gov.close()


def test_a_loop_of_small_refunds_cannot_pass_what_one_large_one_could_not(governor: Callable[..., Any]) -> None:
    gov, clock = governor()
    agent = gov.agent("billing-bot")
    assert agent.check("payments:refund", {"amount": 900}).outcome is Outcome.ESCALATE
    results = [agent.check("payments:refund", {"amount": 400, "n": i}) for i in range(20)]
    assert [d.outcome for d in results] == [Outcome.ALLOW] * 5 + [Outcome.DENY] * 15
    refused = results[5]
    assert refused.stage == "budget"
    assert (
        refused.reason.startswith('Budget "sum of amount for payments:refund" (')
        and "p.yaml:8): 2000 of 2000 used by this agent in the last 1d; this call (400) would pass it; denied"
        in refused.reason
    )
    assert agent.check("read:x").allowed  # other actions are not in the budget
    clock.now += 86399
    assert agent.check("payments:refund", {"amount": 1}).outcome is Outcome.DENY
    clock.now += 1  # the first refund leaves the window... all five were at the same time
    assert agent.check("payments:refund", {"amount": 400}).allowed


def test_counts_and_the_undo_when_a_second_budget_refuses(governor: Callable[..., Any]) -> None:
    gov, _ = governor(REFUNDS + "  - {action: 'payments:*', max: 3, per: 1h, name: payment calls}\n")
    agent = gov.agent("billing-bot")
    assert [agent.check("payments:refund", {"amount": 100}).allowed for _ in range(4)] == [True] * 3 + [False]
    fourth = gov.audit.query(type="policy_decision")[-1]["decision"]
    assert 'Budget "payment calls"' in fourth["reason"] and "3 of 3" in fourth["reason"]
    # The sum budget admitted the fourth 100 before the count refused it, then took it back:
    key = "budget:agent:billing-bot:payments:refund|amount|86400"
    assert gov.state.add_to_budget(key, 0, 2000, 86400, gov.budget_gate.clock()).used == 300


def test_then_escalate_and_an_approval_passes_the_budget_once(governor: Callable[..., Any]) -> None:
    gov, _ = governor(REFUNDS.replace("    per: 1d\n", "    per: 1d\n    then: escalate\n"))
    agent = gov.agent("billing-bot")
    for _ in range(5):
        assert agent.check("payments:refund", {"amount": 400}).allowed
    held = agent.check("payments:refund", {"amount": 300, "ticket": 7})
    assert held.outcome is Outcome.ESCALATE and held.escalation_id and "needs human approval" in held.reason
    assert agent.check("payments:refund", {"amount": 300, "ticket": 7}).outcome is Outcome.ESCALATE  # still held
    gov.resolve_escalation(
        held.escalation_id, "approved", notes="verified", resolver=gov.reviewers.ensure("finance@example.com")
    )
    ran: list[int] = []
    result = agent.execute("payments:refund", {"amount": 300, "ticket": 7}, lambda a: ran.append(a["amount"]))
    assert result.success and ran == [300]
    key = "budget:agent:billing-bot:payments:refund|amount|86400"
    assert gov.state.add_to_budget(key, 0, 2000, 86400, gov.budget_gate.clock()).used == 2300  # recorded
    assert agent.check("payments:refund", {"amount": 300, "ticket": 7}).outcome is Outcome.ESCALATE  # once


@pytest.mark.parametrize("amount", ["400", -400, True, None, float("nan"), float("inf"), [400]])
def test_an_amount_that_is_not_a_number_is_denied(governor: Callable[..., Any], amount: Any) -> None:
    gov, _ = governor(REFUNDS.replace("    - action: payments:refund\n      condition: amount > 500", "    - never"))
    args = {"amount": amount} if amount is not None else {"other": 1}
    decision = gov.agent("billing-bot").check("payments:refund", args)
    assert decision.outcome is Outcome.DENY and decision.stage == "budget"
    assert "needs a number of at least 0 in argument 'amount'" in decision.reason


def test_a_dotted_sum_path_and_session_scope(governor: Callable[..., Any]) -> None:
    gov, _ = governor("""\
agent: bot
permissions: {allow: ["pay"]}
budgets:
  - {action: pay, sum: payment.amount, max: 100, per: 1h, scope: session}
""")

    gov.agent("bot")

    def pay(session: str, amount: float) -> Outcome:
        call = gov.make_call("bot", "pay", {"payment": {"amount": amount}}, metadata={"session_id": session})
        return gov.before_call(call).outcome

    assert [pay("s1", 60), pay("s1", 60), pay("s2", 60), pay("s2", 40), pay("s2", 1)] == [
        Outcome.ALLOW,
        Outcome.DENY,
        Outcome.ALLOW,
        Outcome.ALLOW,
        Outcome.DENY,
    ]
    assert gov.agent("bot").check("pay", {"payment": {"amount": 100}}).allowed  # the process's own session


def test_session_ids() -> None:
    from claw_governance.model import ToolCall

    assert session_of(ToolCall("a", "x", metadata={"job_id": "j1", "thread_id": "t"})) == "job:j1"
    assert session_of(ToolCall("a", "x", metadata={"thread_id": "t9", "run_id": "r9"})) == "thread:t9"
    assert session_of(ToolCall("a", "x", metadata={"run_id": "r9"})).startswith("process:")  # one call, no session
    assert session_of(ToolCall("a", "x", metadata={"session_id": "s", "job_id": "j"})) == "session:s"
    assert session_of(ToolCall("a", "x")).startswith("process:") and session_of(ToolCall("a", "x")).endswith(
        f":{__import__('os').getpid()}"
    )


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("budgets: {action: x}", "'budgets' must be a list"),
        ("budgets: [{action: x, max: 5}]", "budgets[0] needs 'per'"),
        ("budgets: [{action: x, max: -1, per: 1h}]", "budgets[0].max must be a number of at least 0"),
        ("budgets: [{action: x, max: 5, per: soon}]", "budgets[0].per must be a duration"),
        ("budgets: [{action: x, max: 5, per: 1h, scope: fleet}]", "budgets[0].scope must be one of agent, session"),
        ("budgets: [{action: x, max: 5, per: 1h, then: allow}]", "budgets[0].then must be deny or escalate"),
        ("budgets: [{action: x, max: 5, per: 1h, sum: 'a..b'}]", "budgets[0].sum must name an argument"),
        ("budgets: [{action: x, max: 5, per: 1h, limit: 3}]", "unknown key 'limit' in budgets[0]"),
        ("mode: shadow\nbudgets: [{action: x, max: 5, per: 1h}]", "a 'mode: shadow' document holds rules only"),
    ],
)
def test_budget_mistakes_are_one_line_errors(tmp_path: Path, snippet: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(f"agent: a\n{snippet}\n")
    with pytest.raises(PolicyError) as caught:
        load_policy_set(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_state_store_without_budgets_fails_closed(governor: Callable[..., Any]) -> None:
    gov, _ = governor()

    class Old:  # e.g. a store written before add_to_budget existed
        pass

    gov.budget_gate.store = Old()
    decision = gov.agent("billing-bot").check("payments:refund", {"amount": 1})
    assert decision.outcome is Outcome.DENY and decision.stage == "plugin" and "budgets" in decision.reason


# ------------------------------------------------------------------------------ the store's operation


def stores(tmp_path: Path) -> list[Any]:
    return [MemoryStateStore(), SQLiteStateStore(tmp_path / "state.db")]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 50), st.floats(0, 300, allow_nan=False), st.booleans()), min_size=1, max_size=30
    ),
    limit=st.sampled_from([0.0, 100.0, 333.3, 1000.0]),
    window=st.sampled_from([10.0, 60.0]),
)
def test_add_to_budget_is_a_sliding_window_sum(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, float, bool]], limit: float, window: float
) -> None:
    for store in stores(tmp_path_factory.mktemp("b")):
        now, model = 1000.0, []
        for advance, amount, force in steps:
            now += advance
            used = sum(a for at, a in model if now - window < at)
            fits = force or used + amount <= limit + 1e-9 * max(1.0, limit)
            use = store.add_to_budget("k", amount, limit, window, now, force=force)
            assert use.admitted is fits
            if fits:
                model.append((now, amount))
            assert use.used == pytest.approx(used + amount if fits else used)
        assert store.add_to_budget("other", 1, 1, window, now).admitted  # keys are independent
        store.purge(now + window)
        assert store.add_to_budget("k", 0, limit, window, now + window).used == 0
        store.close()


def test_threads_never_overspend(tmp_path: Path) -> None:
    for store in stores(tmp_path):
        admitted: list[bool] = []

        def spend(store: Any = store, admitted: list[bool] = admitted) -> None:
            for _ in range(25):
                admitted.append(store.add_to_budget("k", 7, 700, 3600, 5000.0).admitted)

        threads = [threading.Thread(target=spend) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert admitted.count(True) == 100 and len(admitted) == 200
        store.close()


WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from claw_governance import Governor
    root, index, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    gov = Governor(root / "policies", root / f"audit-{index}", root / "identities", load_entry_points=False)
    agent = gov.agent("billing-bot")
    while not (root / "go").exists():
        time.sleep(0.005)
    allowed = sum(agent.check("payments:refund", {"amount": 10, "n": i}).allowed for i in range(n))
    gov.close()
    print("allowed", allowed)
""")


def test_two_processes_share_one_budget_exactly(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text(REFUNDS)
    Governor(tmp_path / "policies", tmp_path / "audit-0", tmp_path / "identities", load_entry_points=False).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path), str(i), "150"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2)
    ]
    time.sleep(0.3)
    (tmp_path / "go").touch()
    counts = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        counts.append(int(out.split()[-1]))
    assert sum(counts) == 200  # 200 x 10 = 2000 across both processes, never more
    assert min(counts) > 0  # both took part


# ------------------------------------------------------------------------- fleet-wide rate limits

LIMITED = """\
agent: billing-bot
permissions:
  allow: ["payments:*"]
  escalate: ["payments:dispute"]
rate_limits:
  "payments:*": 50/hour
  escalations_per_hour: 3
"""
RATE_WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from claw_governance import Governor
    root, index, n, fleet = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "fleet"
    gov = Governor(root / "policies", root / f"audit-{index}", root / "identities", load_entry_points=False,
                   fleet_rate_limits=fleet)
    agent = gov.agent("billing-bot")
    while not (root / "go").exists():
        time.sleep(0.005)
    allowed = sum(agent.check("payments:charge", {"n": i}).allowed for i in range(n))
    gov.close()
    print("allowed", allowed)
""")


@pytest.mark.parametrize(("mode", "expected"), [("fleet", 50), ("process", 80)])
def test_rate_limits_are_fleet_wide_when_configured(tmp_path: Path, mode: str, expected: int) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text(LIMITED)
    Governor(tmp_path / "policies", tmp_path / "audit-0", tmp_path / "identities", load_entry_points=False).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RATE_WORKER, str(tmp_path), str(i), "40", mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2)
    ]
    time.sleep(0.3)
    (tmp_path / "go").touch()
    counts = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        counts.append(int(out.split()[-1]))
    assert sum(counts) == expected  # fleet: 50 per hour in all; per process: 40 + 40 (each under its own 50)


def test_escalation_limits_are_fleet_wide_when_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from claw_governance.config import config_from_env

    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text(LIMITED)
    monkeypatch.setenv("RATE_LIMITS_FLEET", "true")
    assert config_from_env().fleet_rate_limits is True
    govs = [
        Governor(
            tmp_path / "policies",
            tmp_path / f"audit-{i}",
            tmp_path / "identities",
            load_entry_points=False,
            fleet_rate_limits=True,
        )
        for i in (1, 2)
    ]
    try:
        outcomes = [govs[i % 2].agent("billing-bot").check("payments:dispute", {"n": i}) for i in range(5)]
        assert [d.outcome for d in outcomes] == [Outcome.ESCALATE] * 3 + [Outcome.DENY] * 2
        assert "fleet-wide" in outcomes[3].reason and outcomes[3].stage == "rate_limit"
    finally:
        for gov in govs:
            gov.close()
