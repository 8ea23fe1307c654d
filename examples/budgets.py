"""Budgets: a loop of $400 refunds cannot pass what one $900 refund could not.

Run: .venv/bin/python examples/budgets.py

The policy (examples/budgets/billing-bot.yaml) escalates any refund over $500 and sums every refund of the
last day: once $2000 is used, the next refund, however small, waits for a human. Two processes share the
budget through the state store (here SQLite in the identities folder).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from claw_governance import Governor

HERE = Path(__file__).parent / "budgets"
REFUNDS = """
import sys
from pathlib import Path
from claw_governance import Governor
root = Path(sys.argv[1])
with Governor(sys.argv[2], root / "audit-worker", root / "identities", load_entry_points=False) as gov:
    agent = gov.agent("billing-bot")
    print(sum(agent.check("payments:refund", {"amount": 400, "order": n}).allowed for n in range(3)))
"""


def main(workdir: Path) -> None:
    with Governor(HERE, workdir / "audit", workdir / "identities", load_entry_points=False) as gov:
        agent = gov.agent("billing-bot")
        print("one $900 refund:", agent.check("payments:refund", {"amount": 900}).outcome.value)
        # Another process refunds 3 x $400 against the same budget.
        other = subprocess.run(
            [sys.executable, "-c", REFUNDS, str(workdir), str(HERE)], capture_output=True, text=True, check=True
        )
        print("the other process got", other.stdout.strip(), "refunds of $400 through")
        for n in range(4):
            decision = agent.check("payments:refund", {"amount": 400, "order": 100 + n})
            print(
                f"$400 refund #{n + 1} here: {decision.outcome.value}"
                + (f" ({decision.reason.split(': ', 1)[1]})" if decision.stage == "budget" else "")
            )
        held = decision
        assert held.escalation_id is not None
        gov.resolve_escalation(
            held.escalation_id, "approved", notes="verified", resolver=gov.reviewers.ensure("finance@example.com")
        )
        again = agent.execute("payments:refund", {"amount": 400, "order": 103}, lambda args: "refunded")
        print("after a human approved it:", again.output)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(tmp))
