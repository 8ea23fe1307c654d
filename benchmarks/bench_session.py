"""The cost of session state in a decision: data-flow labels and a budget, against the same policy without.

    python benchmarks/bench_session.py [--n 20000] [--quick] [--json FILE]

One run, one machine, interleaved rounds (A/B/C/D see the same load), SQLite state store (the default):

- ``plain``: the policy allows ``payments:refund``; no labels, no budget;
- ``condition``: ``plain`` plus a deny rule with a condition on the arguments only (``amount > 100000``):
  what a condition costs without session state, so ``labels`` - ``condition`` is the session's own cost;
- ``labels``: the same, plus ``labels:`` and a deny rule whose condition reads ``session.labels`` and applies
  to the measured call (so the governor binds the session's labels for every call, from its cache);
- ``budget``: ``plain`` plus a budget on ``payments:refund`` (``sum: amount``; never exhausted here);
- ``labels_budget``: both.

Each is measured with ``check()`` (decision + one audit entry) and ``execute()`` (decision, the tool, the
outcome: two audit entries). The variants with labels also measure ``execute_labelled``: ``execute()`` of
``read:customer_record``, a call that attaches ``pii`` to a session that already holds it (the label write
that a redundant call may skip). The figures are p50/p99/mean in microseconds, the median over the rounds.
The script uses the public API only, so the same file measures an older checkout (``PYTHONPATH=<old tree>``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # benchmarks/ is not a package
    sys.path.insert(0, str(HERE))
from timing import interleaved  # noqa: E402

from claw_governance import Governor  # noqa: E402

BASE = """\
agent: bench
permissions:
  allow: ["payments:*", "read:*"]
{deny}trust: {{max_score: 100000000}}
{labels}{budget}"""
DENY = """\
  deny:
    - action: payments:refund
      condition: '"pii" in session.labels && amount > 100000'
"""
PLAIN_DENY = """\
  deny:
    - action: payments:refund
      condition: 'amount > 100000'
"""
LABELS = """\
labels:
  "read:customer_*": [pii]
"""
BUDGET = """\
budgets:
  - {action: "payments:refund", sum: amount, max: 1000000000000000, per: 1d}
"""


def policy(labels: bool, budget: bool) -> str:
    return BASE.format(deny=DENY if labels else "", labels=LABELS if labels else "", budget=BUDGET if budget else "")


VARIANTS = {
    "plain": policy(False, False),
    "condition": BASE.format(deny=PLAIN_DENY, labels="", budget=""),
    "labels": policy(True, False),
    "budget": policy(False, True),
    "labels_budget": policy(True, True),
}


def governor(root: Path, policy: str) -> Governor:
    (root / "policies").mkdir(parents=True)
    (root / "policies" / "bench.yaml").write_text(policy)
    return Governor(root / "policies", root / "audit", root / "identities", load_entry_points=False)


def run(n: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        govs = {name: governor(Path(tmp) / name, policy) for name, policy in VARIANTS.items()}
        try:
            agents = {name: gov.agent("bench") for name, gov in govs.items()}
            for agent in agents.values():  # the session has a label: the condition is evaluated for real
                agent.execute("read:customer_record", {"id": 1}, lambda ctx: "row")
            args = {"orderId": "A-1", "amount": 5}
            series: dict[str, Callable[[], object]] = {}
            for name, agent in agents.items():
                series[f"check_{name}"] = lambda a=agent: a.check("payments:refund", args)
                series[f"execute_{name}"] = lambda a=agent: a.execute("payments:refund", args, lambda ctx: "ok")
                if name.startswith("labels"):
                    series[f"execute_labelled_{name}"] = lambda a=agent: a.execute(
                        "read:customer_record", {"id": 1}, lambda ctx: "row"
                    )
            figures = interleaved(series, n, rounds)
            for name, agent in agents.items():  # every measured call was allowed
                assert agent.check("payments:refund", args).allowed, name
        finally:
            for gov in govs.values():
                gov.close()
    return {key: {k: round(v, 2) for k, v in r.items()} for key, r in figures.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="calls per variant and measure (split over rounds)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny samples (seconds): checks that it runs")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    n, rounds = (400, 2) if args.quick else (args.n, args.rounds)
    out = {"python": sys.version.split()[0], "n": n, "rounds": rounds, "results": run(n, rounds)}
    print(f"{'measure':<26} {'p50 us':>9} {'p99 us':>9} {'mean us':>9}")
    for key, r in out["results"].items():
        print(f"{key:<26} {r['p50_us']:>9.2f} {r['p99_us']:>9.2f} {r['mean_us']:>9.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
