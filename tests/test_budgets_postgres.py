"""A budget shared by two hosts through PostgreSQL: two processes, each with its own policy folder, audit trail
and identities ("hosts"), nothing shared but the database, making many small refunds at once. The sum admitted
is exactly the budget's ``max``, never more; what each host decided adds up, in its own audit trail and in the
shared state (escalations, for ``then: escalate``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from claw_governance.audit.reader import TrailReader
from claw_governance.state.postgres import PostgresStateStore

POLICY = """\
agent: billing-bot
permissions:
  allow: ["payments:*"]
budgets:
  - action: "payments:refund"
    sum: amount
    max: 2000
    per: 1d
    then: {then}
    name: daily refunds
"""
# Each host: 4 threads x 75 refunds of 5 = 1500 attempted; both hosts: 3000 attempted against 2000.
HOST = textwrap.dedent("""
    import json, os, sys, threading, time
    from pathlib import Path
    from claw_governance import Governor
    root, go = Path(sys.argv[1]), Path(sys.argv[2])
    gov = Governor(root / "policies", root / "audit", root / "identities", load_entry_points=False,
                   state_url=os.environ["STATE_URL"])
    agent = gov.agent("billing-bot")
    lock = threading.Lock()
    outcomes = {"allow": 0, "deny": 0, "escalate": 0}
    stages = set()

    def refund(ctx):
        with lock, open(root / "refunded.txt", "a") as fh:  # the side effect: one line per refund that ran
            fh.write(f"{ctx['amount']}\\n")
        return "refunded"

    def worker(t):
        for i in range(75):
            r = agent.execute("payments:refund", {"orderId": f"{root.name}-{t}-{i}", "amount": 5}, refund)
            with lock:
                outcomes[r.decision.outcome.value] += 1
                if not r.decision.allowed:
                    stages.add(r.decision.stage)

    while not go.exists():
        time.sleep(0.002)
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gov.close()
    print(json.dumps({"outcomes": outcomes, "stages": sorted(stages)}))
""")


def host(tmp_path: Path, name: str, then: str) -> Path:
    root = tmp_path / name
    (root / "policies").mkdir(parents=True)
    (root / "policies" / "billing.yaml").write_text(POLICY.format(then=then))
    return root


@pytest.mark.parametrize("then", ["deny", "escalate"])
def test_two_hosts_admit_exactly_the_budget(tmp_path: Path, pg_url: str, then: str) -> None:
    hosts = [host(tmp_path, "host-a", then), host(tmp_path, "host-b", then)]
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HOST, str(root), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "STATE_URL": pg_url},
        )
        for root in hosts
    ]
    time.sleep(1.0)  # both are connected and waiting: then they start together
    go.touch()
    reports = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))

    allowed = [r["outcomes"]["allow"] for r in reports]
    refused = [r["outcomes"][then] for r in reports]
    assert sum(allowed) == 400  # 400 x 5 = 2000: exactly the budget, of 3000 attempted
    assert [a + b for a, b in zip(allowed, refused, strict=True)] == [300, 300]
    assert min(allowed) > 0 and min(refused) > 0  # both hosts spent and both were refused: they raced
    assert all(r["stages"] == ["budget"] for r in reports)  # refused by the budget, nothing else

    # What ran, per host, is what that host admitted; together exactly 2000.
    ran = [sum(float(x) for x in (root / "refunded.txt").read_text().split()) for root in hosts]
    assert ran == [5.0 * a for a in allowed] and sum(ran) == 2000.0

    # Each host's own audit trail records its own decisions, and they add up.
    for root, a, r in zip(hosts, allowed, refused, strict=True):
        decisions = [e["decision"] for e in TrailReader(root / "audit").entries() if e["type"] == "policy_decision"]
        assert len(decisions) == 300
        assert sum(d["outcome"] == "allow" for d in decisions) == a
        budget = [d for d in decisions if d["outcome"] == then]
        assert len(budget) == r and all(d["stage"] == "budget" for d in budget)
        assert all('"daily refunds"' in d["reason"] for d in budget)

    store = PostgresStateStore(pg_url)
    try:
        escalations = store.list_escalations(None) if then == "escalate" else []
        assert len(escalations) == (sum(refused) if then == "escalate" else 0)
    finally:
        store.close()
