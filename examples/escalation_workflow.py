"""Human approval, end to end (the Python version of the seed's escalation-workflow.js).

1. A refund over $500 is escalated: the tool does not run; the escalation is stored, with its context
   redacted, in the state store (SQLite under ./escalation-output/identities/.state).
2. A human approves it (here through the API); the identical call retried runs exactly once; a third try,
   or the same refund with other arguments, needs a new approval.
3. An agent waits for approval (``wait_for_approval=...``) while a reviewer in ANOTHER PROCESS approves it
   with ``claw-gov escalations approve ID --token ... --notes ...`` (a registered reviewer's API token).
4. A denied request and an expired one: neither runs.

Offline; writes into ./escalation-output (recreated on each run).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from claw_governance import Governor, Outcome

OUT = Path.cwd() / "escalation-output"
POLICY = """\
agent: customer-service-agent
permissions:
  allow: ["read:*"]
  escalate:
    - action: refund_requests
      condition: amount > 500
      reason: Refunds over $500 need finance approval
      timeout: 4h
    - action: account_deletion
      timeout: 2              # seconds, to show expiry
sensitive_fields: [card_number]
"""


def reviewer_process(escalation_id: str, token: str) -> None:
    """What a human runs in a terminal: the CLI, in its own process, against the same state store."""
    cmd = [
        sys.executable,
        "-c",
        "from claw_governance.cli import main; main()",
        "escalations",
        "approve",
        escalation_id,
        "--token",
        token,
        "--notes",
        "Order checked, refund is fine",
        "--policies",
        str(OUT / "policies"),
        "--audit",
        str(OUT / "reviewer-audit"),
        "--identities",
        str(OUT / "identities"),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    print(
        f"   [reviewer process] $ claw-gov escalations approve {escalation_id[:8]}... -> "
        f"{done.stdout.strip() or done.stderr.strip().splitlines()[-1]}"
    )


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "policies").mkdir(parents=True)
    (OUT / "policies" / "customer-service.yaml").write_text(textwrap.dedent(POLICY))
    refunds: list[float] = []

    def refund(ctx: dict[str, object]) -> str:
        refunds.append(float(ctx["amount"]))  # type: ignore[arg-type]
        return f"refunded {ctx['amount']}"

    with Governor(OUT / "policies", OUT / "audit", OUT / "identities", load_entry_points=False) as gov:
        agent = gov.agent("customer-service-agent")
        args = {"orderId": 12345, "amount": 599.99, "card_number": "4111 1111 1111 1111"}

        print("1. refund_requests, amount 599.99")
        r = agent.execute("refund_requests", args, refund)
        print(f"   requires escalation: {r.requires_escalation}  id: {r.escalation_id}")
        esc = gov.escalations.get(r.escalation_id or "")
        assert esc is not None
        print(
            f"   stored: status={esc.status.value} expires in {esc.expires - esc.created:.0f}s, "
            f"context={dict(esc.context)}"
        )

        print("2. a human approves it; the same call is retried")
        # Reviewers are principals registered in the state store (`claw-gov reviewer add` does the same).
        alice = gov.reviewers.ensure("alice@example.com")
        gov.resolve_escalation(
            r.escalation_id or "", "approved", resolver=alice, notes="Customer has a valid complaint"
        )
        r = agent.execute("refund_requests", args, refund)
        print(f"   retried: {r.decision.outcome.value} -> {r.output}")
        r = agent.execute("refund_requests", {**args, "amount": 999.0}, refund)
        print(f"   other arguments: {r.decision.outcome.value} (the approval covered amount 599.99 only)")
        r = agent.execute("refund_requests", args, refund)
        print(f"   retried again: {r.decision.outcome.value} (an approval is good for one call)")

        print("3. an agent waits while a reviewer in another process approves")
        _, token = gov.reviewers.add("finance@example.com", groups=["finance"])  # the token is shown once
        reviewer = threading.Thread(target=lambda: reviewer_process(_first_pending(gov, "amount", 750.0), token))
        reviewer.start()
        started = time.monotonic()
        r = agent.execute("refund_requests", {"orderId": 777, "amount": 750.0}, refund, wait_for_approval=120)
        reviewer.join()
        print(f"   waited {time.monotonic() - started:.1f}s -> {r.decision.outcome.value}: {r.output}")

        print("4. denied, and expired")
        d = agent.check("refund_requests", {"orderId": 5, "amount": 5000})
        gov.resolve_escalation(
            d.escalation_id or "", "denied", resolver=gov.reviewers.ensure("bob@example.com"), notes="Too large"
        )
        denied = gov.escalations.get(d.escalation_id or "")
        print(
            f"   denied by {denied.resolver if denied else '?'}; the tool did not run; a retry needs a new "
            f"approval: {agent.check('refund_requests', {'orderId': 5, 'amount': 5000}).outcome.value}"
        )
        r = agent.execute("account_deletion", {"accountId": 9}, lambda c: "deleted", wait_for_approval=10)
        print(f"   nobody answered within the rule's 2s timeout: {r.decision.outcome.value} - {r.decision.reason}")

        print(f"\nrefunds issued: {refunds}")
        print("escalations in the state store (claw-gov escalations list --status all):")
        for e in gov.escalations.list_escalations():
            print(f"   {e.id[:8]}  {e.action:<17} {e.status.value:<8} {e.resolver or ''}")
        if refunds != [599.99, 750.0] or r.decision.outcome is not Outcome.DENY:
            raise SystemExit(f"escalation workflow failed: refunds {refunds}")


def _first_pending(gov: Governor, key: str, value: object) -> str:
    """The reviewer's view: wait until the agent's request shows up in the queue."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for esc in gov.escalations.pending():
            if esc.context.get(key) == value:
                return esc.id
        time.sleep(0.05)
    raise SystemExit("no escalation appeared")


if __name__ == "__main__":
    main()
