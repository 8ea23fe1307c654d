"""The built-in escalation hooks: grants, storage, and a console notifier."""

from __future__ import annotations

import sys

from claw_governance.escalation.queue import EscalationQueue
from claw_governance.hookspecs import hookimpl
from claw_governance.model import Decision, Escalation, ToolCall


class EscalationPlugin:
    """Stores escalations in the queue and consumes grants from it."""

    def __init__(self, queue: EscalationQueue, redact: object) -> None:
        self.queue = queue
        self._redact = redact

    @hookimpl
    def claw_consume_grant(self, call: ToolCall, decision: Decision) -> str | None:
        return self.queue.consume_grant(call)

    @hookimpl
    def claw_open_escalation(self, call: ToolCall, decision: Decision, timeout_seconds: float) -> Escalation:
        context = self._redact(call.args) if callable(self._redact) else dict(call.args)
        return self.queue.open(call, decision, timeout_seconds, context)


class ConsoleNotifier:
    """Prints each new escalation to stderr with the command that resolves it."""

    @hookimpl
    def claw_notify_escalation(self, escalation: Escalation) -> None:
        print(f"[claw-governance] escalation {escalation.id}: {escalation.agent_id} wants "
              f"{escalation.action!r} - {escalation.reason}\n  resolve: claw-gov escalations approve "
              f"{escalation.id} --resolver YOU --notes '...'", file=sys.stderr)
