"""Compliance report, offline: govern a few calls, then verify the trail and print the period's report.

    python examples/compliance_report.py [workdir]

Writes a policy, an audit trail and a state folder under ``workdir`` (a temporary folder by default), runs a
customer-service agent through allowed, denied and escalated calls, approves the escalation, and prints the
Markdown report for today plus the command that verifies the trail from the shell.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from claw_governance import Governor
from claw_governance.audit.report import render_markdown

POLICY = """\
agent: customer-service-agent
permissions:
  allow: ["read:*"]
  deny: ["delete:*"]
  escalate:
    - action: refund_requests
      condition: amount > 500
      reason: Refunds over $500 need finance approval
sensitive_fields: [customer_ssn]
audit: {level: full, retention: 2555}
"""


def main(workdir: Path) -> int:
    """Run the scenario in ``workdir``; return 0 if the trail verifies."""
    (workdir / "policies").mkdir(parents=True, exist_ok=True)
    (workdir / "policies" / "customer-service.yaml").write_text(POLICY)
    with Governor(
        policy_path=workdir / "policies", audit_path=workdir / "audit", identity_path=workdir / "identities"
    ) as gov:
        agent = gov.agent("customer-service-agent")
        agent.execute(
            "read:customer_data",
            {"customerId": 12345, "customer_ssn": "123-45-6789"},
            lambda ctx: {"name": "Ada", "card": "4111 1111 1111 1111"},
        )
        agent.check("delete:customer", {"customerId": 12345})
        held = agent.check("refund_requests", {"amount": 900})
        if held.escalation_id:
            gov.resolve_escalation(
                held.escalation_id, "approved", notes="verified", resolver=gov.reviewers.ensure("finance@example.com")
            )
        agent.execute("refund_requests", {"amount": 900}, lambda ctx: "refunded")
        today = datetime.now(UTC).date()
        report = gov.compliance_report(today, today)
    print(render_markdown(report))
    print(
        f"\nVerify from the shell:\n  claw-gov audit verify --audit {workdir / 'audit'} "
        f"--identities {workdir / 'identities'}"
    )
    return 0 if report["chain"]["valid"] and report["summary"]["total_decisions"] == 4 else 1


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="claw-report-"))
    sys.exit(main(target))
