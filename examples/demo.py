"""The demo `make demo` runs: an allowed, a denied and an escalated tool call, each with its reason, then
a human approval, the retried call, and the audit trail verified.

Writes into ./demo-output (removed and recreated on each run).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from claw_governance import Governor, Outcome

HERE = Path(__file__).parent
OUT = Path.cwd() / "demo-output"

_TTY = sys.stdout.isatty()
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if _TTY else ("", "", "")
COLOUR = (
    {Outcome.ALLOW: "\033[32m", Outcome.DENY: "\033[31m", Outcome.ESCALATE: "\033[33m"}
    if _TTY
    else {o: "" for o in Outcome}
)


def show(title: str, outcome: Outcome, reason: str, extra: str = "") -> None:
    print(f"{BOLD}{title}{RESET}\n  {COLOUR[outcome]}{outcome.value.upper()}{RESET}  {reason}")
    if extra:
        print(f"  {DIM}{extra}{RESET}")
    print()


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    print(f"claw-governance demo - policies: {HERE / 'policies'}, audit trail: {OUT / 'audit'}\n")
    with Governor(
        policy_path=HERE / "policies",
        audit_path=OUT / "audit",
        identity_path=OUT / "identities",
        load_entry_points=False,
    ) as gov:
        agent = gov.agent("customer-service-agent")
        refunds: list[float] = []

        r = agent.execute(
            "read:customer_data",
            {"customerId": 12345, "customer_ssn": "078-05-1120"},
            lambda ctx: {"customerId": ctx["customerId"], "name": "Jane Roe"},
        )
        show(
            "1. read:customer_data (customerId 12345)",
            r.decision.outcome,
            r.decision.reason,
            f"tool ran -> {r.output}; the SSN argument is redacted in the audit trail",
        )

        r = agent.execute("Delete:Customer_Records ", {"customerId": 12345}, lambda ctx: refunds.append(-1))
        show(
            "2. 'Delete:Customer_Records ' (odd case and spacing do not help)",
            r.decision.outcome,
            r.decision.reason,
            "tool did not run",
        )

        args = {"orderId": "A-1001", "amount": 750.0}
        r = agent.execute("refund_requests", args, lambda ctx: refunds.append(float(ctx["amount"])))
        show(
            "3. refund_requests (amount 750)",
            r.decision.outcome,
            r.decision.reason,
            f"tool did not run; escalation {r.escalation_id} waits for a human",
        )

        gov.resolve_escalation(
            r.escalation_id or "",
            "approved",
            notes="Customer verified by phone",
            resolver=gov.reviewers.ensure("alice@example.com"),
        )
        r = agent.execute("refund_requests", args, lambda ctx: refunds.append(float(ctx["amount"])))
        show(
            "4. the same refund, retried after alice@example.com approved it",
            r.decision.outcome,
            r.decision.reason,
            f"tool ran once: refunds issued {refunds}",
        )

        r = agent.execute("refund_requests", args, lambda ctx: refunds.append(float(ctx["amount"])))
        show("5. retried again (an approval is good for one call)", r.decision.outcome, r.decision.reason)

        report = gov.audit.verify()
        summary = gov.compliance_report(_today(), _today())["summary"]
        print(f"{BOLD}Audit trail{RESET}: {report.entries} entries, chain valid: {report.valid}")
        print(f"Compliance summary for today: {summary}")
        print(f"Trust score of customer-service-agent: {gov.trust_score('customer-service-agent')}")
        cli = Path(sys.executable).parent / "claw-gov"
        print(
            f"\nNext: {cli} audit verify --audit {OUT / 'audit'} --identities {OUT / 'identities'}\n"
            f"      {cli} policy lint {HERE / 'policies'}"
        )
        if refunds != [750.0]:
            raise SystemExit(f"demo failed: expected exactly one refund, got {refunds}")


def _today() -> str:
    import datetime

    return datetime.datetime.now(datetime.UTC).date().isoformat()


if __name__ == "__main__":
    main()
