"""Trust: deltas per policy, the min-score gate, revocation at 0 and reinstatement, no lost update."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from claw_governance import Governor
from claw_governance.cli import build_cli
from claw_governance.model import Outcome
from claw_governance.policy import TrustSettings

FAST = {"state_sync_interval": 0.1}
POLICY = """\
agent: bot
permissions:
  allow: ["work", "read:*"]
trust: {min_score: 50, recovery_score: 80, success: 2, failure: -30, bad_signature: -10, max_score: 1000}
"""


def ok(ctx: dict[str, object]) -> str:
    return "done"


def boom(ctx: dict[str, object]) -> str:
    raise RuntimeError("tool failed")


def test_deltas_come_from_the_policy(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(POLICY, **FAST)
    agent = gov.agent("bot")
    assert agent.trust_score == 100
    assert agent.execute("work", {}, ok).success
    assert agent.trust_score == 102
    assert not agent.execute("work", {}, boom).success
    assert agent.trust_score == 72


def test_below_min_score_every_call_is_denied(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(POLICY, **FAST)
    agent = gov.agent("bot")
    agent.execute("work", {}, boom)
    agent.execute("work", {}, boom)  # 40 < 50
    d = agent.check("read:x")
    assert (d.outcome, d.stage) == (Outcome.DENY, "trust") and "below the minimum 50" in d.reason


def test_positive_deltas_are_batched_and_audited_in_aggregate(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(POLICY, state_sync_interval=30)  # no background flush during the test
    agent = gov.agent("bot")
    for _ in range(5):
        agent.execute("work", {}, ok)
    assert agent.trust_score == 110
    assert gov.state.get_trust("bot") is None  # not flushed yet: no database write per call
    gov.trust.flush()
    assert gov.state.get_trust("bot") == 110
    (entry,) = gov.audit.query(type="trust_change")
    assert entry["details"]["old"] == 100 and entry["details"]["new"] == 110
    assert entry["details"]["delta"] == 10 and entry["details"]["count"] == 5


def test_close_flushes_pending_deltas(make_governor: Callable[..., Governor], tmp_path: Path) -> None:
    gov = make_governor(POLICY, state_sync_interval=30)
    gov.agent("bot").execute("work", {}, ok)
    gov.close()
    again = make_governor(POLICY, **FAST)
    assert again.trust_score("bot") == 102


def test_revoked_at_zero_until_a_human_reinstates(make_governor: Callable[..., Governor], tmp_path: Path) -> None:
    gov = make_governor(POLICY.replace("min_score: 50", "min_score: 10").replace("-30", "-60"), **FAST)
    agent = gov.agent("bot")
    agent.execute("work", {}, boom)  # 40
    agent.execute("work", {}, boom)  # 0 (never below)
    assert agent.trust_score == 0
    d = agent.check("read:x")
    assert (d.outcome, d.stage) == (Outcome.DENY, "identity") and "revoked" in d.reason
    record = gov.identities.get("bot")
    assert record is not None and record.revoked and record.reason == "trust score reached 0"
    events = [e["details"]["event"] for e in gov.audit.query(type="identity")]
    assert events == ["created", "revoked"]
    gov.identities.reinstate(
        "bot", by="alice@example.com", reason="reviewed", recovery_score=gov.policy.trust_settings("bot").recovery_score
    )
    assert agent.trust_score == 80
    assert agent.check("read:x").allowed
    assert [e["details"]["event"] for e in gov.audit.query(type="identity")][-1] == "reinstated"


def test_reinstate_through_the_cli(make_governor: Callable[..., Governor], tmp_path: Path) -> None:
    gov = make_governor(POLICY, **FAST)
    gov.agent("bot")
    gov.identities.revoke("bot", "manual", by="ops")
    gov.close()
    args = [
        "--policies",
        str(tmp_path / "policies"),
        "--audit",
        str(tmp_path / "logs" / "audit"),
        "--identities",
        str(tmp_path / "identities"),
    ]
    out = CliRunner().invoke(build_cli(), ["identity", "reinstate", "bot", "--by", "alice", *args])
    assert out.exit_code == 0, out.output
    assert "trust score 80" in out.output
    again = CliRunner().invoke(build_cli(), ["identity", "reinstate", "bot", "--by", "alice", *args])
    assert again.exit_code != 0 and again.output.strip().startswith("error: identity 'bot' is not revoked")
    after = make_governor(POLICY, **FAST)
    assert after.trust_score("bot") == 80 and after.agent("bot").check("read:x").allowed


WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from claw_governance import Governor
    root, index, n_ok, n_fail = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    gov = Governor(root / "policies", root / f"audit-{index}", root / "identities", load_entry_points=False,
                   state_sync_interval=0.02)
    agent = gov.agent("bot")
    while not (root / "go").exists():
        time.sleep(0.005)
    for i in range(n_ok + n_fail):
        fn = (lambda c: 1) if i % ((n_ok + n_fail) // n_fail) else (lambda c: 1 / 0)
        agent.execute("work", {"i": i}, fn)
        if i % 4 == 0:
            gov.trust.flush()  # many small write transactions, interleaving with the other processes
    gov.close()
    print("done")
""")


def test_four_processes_updating_one_score_lose_nothing(tmp_path: Path, write_policy: Callable[..., Path]) -> None:
    write_policy("""\
        agent: bot
        permissions:
          allow: [work]
        trust: {min_score: 0, success: 1, failure: -5, max_score: 1000}
    """)
    Governor(tmp_path / "policies", tmp_path / "audit-0", tmp_path / "identities", load_entry_points=False).close()
    n_ok, n_fail = 190, 10
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path), str(i), str(n_ok), str(n_fail)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    time.sleep(0.3)
    (tmp_path / "go").touch()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and "done" in out, err
    with Governor(tmp_path / "policies", tmp_path / "audit-x", tmp_path / "identities", load_entry_points=False) as gov:
        assert gov.state.get_trust("bot") == 100 + 4 * (n_ok * 1 - n_fail * 5)  # 100 + 4 * 140 = 660
        assert gov.trust_score("bot") == 660


def test_score_defaults(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(POLICY, **FAST)
    assert gov.trust.score("new-agent") == 100
    assert gov.trust.score("new-agent", TrustSettings(initial=70)) == 70
    gov.trust.set("new-agent", 42, "manual")
    assert gov.trust.score("new-agent") == 42
    assert gov.audit.query(type="trust_change")[-1]["details"]["new"] == 42


def test_scores_stop_at_the_ceiling(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor("agent: bot\npermissions: {allow: [work]}\ntrust: {max_score: 100, failure: -5}\n", **FAST)
    agent = gov.agent("bot")
    for _ in range(50):
        agent.execute("work", {}, ok)
    assert agent.trust_score == 100  # 50 successes bank nothing above the ceiling
    agent.execute("work", {}, boom)
    assert agent.trust_score == 95  # so one failure costs what the policy says
    gov.trust.flush()
    assert gov.state.get_trust("bot") == 95
    default = make_governor("agent: other\npermissions: {allow: [work]}\n", **FAST)
    for _ in range(5):
        default.agent("other").execute("work", {}, ok)
    assert default.trust_score("other") == 100  # the default ceiling is 100, as in the seed's 0-100


def test_successes_at_the_ceiling_are_neither_banked_nor_counted(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor("agent: bot\npermissions: {allow: [work]}\ntrust: {max_score: 100, failure: -5}\n", **FAST)
    agent = gov.agent("bot")
    for _ in range(20):
        agent.execute("work", {}, ok)  # at the ceiling: worth nothing, so nothing to report
    agent.execute("work", {}, boom)  # 95, written and audited at once
    for _ in range(13):
        agent.execute("work", {}, ok)  # 5 successes climb back to 100, 8 more are at the ceiling
    assert agent.trust_score == 100
    gov.trust.flush()
    changes = [e["details"] for e in gov.audit.query(type="trust_change")]
    failure = next(i for i, d in enumerate(changes) if d["delta"] == -5)
    after = changes[failure + 1 :]  # (the sync thread may have split them into several)
    assert sum(d["delta"] for d in after) == 5 and sum(d.get("count", 1) for d in after) == 5
    assert all(d["delta"] == -5 for d in changes[: failure + 1])
