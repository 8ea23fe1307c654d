"""The seed's basic example, in Python: one agent, one policy, every call governed.

Run: .venv/bin/python examples/basic_usage.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from claw_governance import Governor

HERE = Path(__file__).parent


def fetch_customer_data(customer_id: int) -> dict[str, object]:
    """Stands in for your real agent logic (a database query, an API call ...)."""
    return {"id": customer_id, "name": "Jane Roe", "tier": "gold"}


def main(workdir: Path) -> None:
    with Governor(
        policy_path=HERE / "policies", audit_path=workdir / "logs" / "audit", identity_path=workdir / "identities"
    ) as gov:
        agent = gov.agent("customer-service-agent")

        # Execute an action with full governance: fn runs only if the governor allows it.
        result = agent.execute(
            "read:customer_data", {"customerId": 12345}, lambda context: fetch_customer_data(int(context["customerId"]))
        )

        if result.success:
            print("Action completed:", result.output)
        elif result.requires_escalation:
            print("Action requires human approval:", result.escalation_id)
        else:
            print("Action denied:", result.error)

        # The same pattern for an action the policy forbids: the function never runs.
        result = agent.execute(
            "delete:customer_record", {"customerId": 12345}, lambda context: print("this never prints")
        )
        print("Action denied:", result.error)

        print("Trust score:", gov.trust_score("customer-service-agent"))
        print("Audit chain valid:", gov.audit.verify().valid)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="claw-basic-") as tmp:
        main(Path(tmp))
