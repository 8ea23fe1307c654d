"""Human-in-the-loop: escalations, their resolution, and one-shot approval grants."""

from claw_governance.escalation.queue import EscalationQueue

__all__ = ["EscalationQueue"]
