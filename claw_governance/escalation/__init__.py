"""Human-in-the-loop: escalations, their resolution, one-shot approval grants, and notifiers."""

from claw_governance.escalation.notifiers import ConsoleNotifier, WebhookNotifier, default_notifiers
from claw_governance.escalation.queue import EscalationQueue

__all__ = ["ConsoleNotifier", "EscalationQueue", "WebhookNotifier", "default_notifiers"]
