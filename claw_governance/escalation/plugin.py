"""The built-in escalation hooks: grants and storage (``EscalationPlugin``); notifiers are in ``notifiers``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from claw_governance.audit.redaction import redact_text
from claw_governance.escalation.notifiers import ConsoleNotifier, WebhookNotifier, default_notifiers
from claw_governance.escalation.queue import EscalationQueue
from claw_governance.hookspecs import hookimpl
from claw_governance.jsonsafe import json_safe
from claw_governance.model import Decision, Escalation, ToolCall


class EscalationPlugin:
    """Stores escalations in the queue (with redacted context) and consumes grants from it."""

    def __init__(self, queue: EscalationQueue, redact: Callable[..., Any] | None) -> None:
        self.queue = queue
        self._redact = redact

    @hookimpl
    def claw_consume_grant(self, call: ToolCall, decision: Decision) -> str | None:
        """The approved escalation whose one-shot grant this call just used, or None."""
        return self.queue.consume_grant(call)

    @hookimpl
    def claw_open_escalation(self, call: ToolCall, decision: Decision, timeout_seconds: float) -> Escalation:
        """Store a pending escalation; its context is the call's arguments, redacted for this agent."""
        if self._redact is None:
            context: Any = dict(call.args)
        else:
            try:
                context = self._redact(dict(call.args), call.agent_id)
            except TypeError:  # a redactor that takes only the value
                context = self._redact(dict(call.args))
        # json_safe: an int beyond 64 bits or very deep nesting must not make the escalation unstorable
        return self.queue.open(call, decision, timeout_seconds, json_safe(context) if isinstance(context, dict) else {})

    @hookimpl
    def claw_health(self) -> dict[str, Any]:
        """``{"escalations": {...}}``."""
        try:
            return {"escalations": {"status": "ok", "pending": len(self.queue.pending())}}
        except Exception as exc:  # the store is unreachable: say so, do not break health_check()
            return {"escalations": {"status": "down", "error": redact_text(f"{type(exc).__name__}: {exc}")}}


__all__ = ["ConsoleNotifier", "EscalationPlugin", "WebhookNotifier", "default_notifiers"]
