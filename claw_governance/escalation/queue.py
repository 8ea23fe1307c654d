"""A minimal in-process escalation queue (to be replaced by the state-store queue of issue 4)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

from claw_governance.errors import EscalationError
from claw_governance.model import AuditEvent, Decision, Escalation, EscalationStatus, ToolCall, new_id


class EscalationQueue:
    """Pending escalations and the grants that approvals create."""

    def __init__(self, config: object, store: object, audit: Callable[[AuditEvent], object]) -> None:
        self._audit = audit
        self._items: dict[str, Escalation] = {}
        self._grants: dict[tuple[str, str, str], str] = {}
        self._cond = threading.Condition()

    def open(self, call: ToolCall, decision: Decision, timeout_seconds: float, context: dict[str, object]) -> Escalation:
        """Store a pending escalation for this call."""
        now = time.time()
        esc = Escalation(new_id(), call.agent_id, call.action, call.args_hash, context,
                         decision.rule.source if decision.rule else None, decision.reason,
                         EscalationStatus.PENDING, now, now + timeout_seconds)
        with self._cond:
            self._items[esc.id] = esc
        return esc

    def consume_grant(self, call: ToolCall) -> str | None:
        """Use up the approval for exactly this call, if there is one."""
        with self._cond:
            return self._grants.pop((call.agent_id, call.action, call.args_hash), None)

    def get(self, escalation_id: str) -> Escalation | None:
        """One escalation (expired ones show as expired)."""
        with self._cond:
            esc = self._items.get(escalation_id)
            if esc is not None and esc.status is EscalationStatus.PENDING and esc.expires <= time.time():
                esc = replace(esc, status=EscalationStatus.EXPIRED)
                self._items[esc.id] = esc
            return esc

    def pending(self) -> list[Escalation]:
        """Escalations waiting for a human, oldest first."""
        with self._cond:
            ids = list(self._items)
        found = [self.get(i) for i in ids]
        return sorted((e for e in found if e and e.status is EscalationStatus.PENDING), key=lambda e: e.created)

    def resolve(self, escalation_id: str, status: EscalationStatus, resolver: str, notes: str) -> Escalation:
        """Approve or deny a pending escalation; an approval grants the identical call once."""
        esc = self.get(escalation_id)
        if esc is None:
            raise EscalationError(f"no escalation with id {escalation_id!r}")
        if esc.status is not EscalationStatus.PENDING:
            raise EscalationError(f"escalation {escalation_id} is already {esc.status.value}")
        with self._cond:
            esc = replace(esc, status=status, resolver=resolver, notes=notes, resolved_at=time.time())
            self._items[esc.id] = esc
            if status is EscalationStatus.APPROVED:
                self._grants[(esc.agent_id, esc.action, esc.args_hash)] = esc.id
            self._cond.notify_all()
        return esc

    def wait(self, escalation_id: str, timeout_seconds: float) -> Escalation | None:
        """Block until the escalation is resolved or expires, or ``timeout_seconds`` pass."""
        deadline = time.monotonic() + timeout_seconds
        with self._cond:
            while True:
                esc = self._items.get(escalation_id)
                if esc is None or esc.status is not EscalationStatus.PENDING:
                    return esc
                left = deadline - time.monotonic()
                if left <= 0:
                    return esc
                self._cond.wait(min(left, 0.5))

    def close(self) -> None:
        """Nothing to release."""
