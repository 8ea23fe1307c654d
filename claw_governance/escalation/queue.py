"""The human-in-the-loop queue: escalations and one-shot approval grants, in the shared state store.

Life of an escalation: ``pending -> approved | denied | expired``. Expiry denies. Escalations live in the
state store, so any process (the agent, ``claw-gov escalations approve`` in a terminal, a web page) sees and
resolves the same ones. An approval creates a grant bound to (agent, action, hash of the arguments) that
the identical call consumes exactly once; it stays usable for as long as the escalation's own timeout,
counted from the approval.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from claw_governance.config import GovernorConfig
from claw_governance.errors import EscalationError
from claw_governance.model import AuditEvent, Decision, Escalation, EscalationStatus, ToolCall, new_id
from claw_governance.state.base import StateStore

#: Seconds between two looks at the store while waiting (the first looks come faster).
POLL_INTERVAL = 0.25
_FIRST_POLL = 0.02


class EscalationQueue:
    """Opens, lists, resolves and waits for escalations; consumes grants."""

    def __init__(self, config: GovernorConfig, store: StateStore, audit: Callable[[AuditEvent], Any]) -> None:
        self.config = config
        self.store = store
        self._audit = audit
        self._cond = threading.Condition()  # wakes in-process waiters at once; other processes are polled
        self._closed = False

    def open(self, call: ToolCall, decision: Decision, timeout_seconds: float,
             context: Mapping[str, Any]) -> Escalation:
        """Store a pending escalation for ``call`` (``context``: its redacted arguments) and audit it."""
        if timeout_seconds <= 0:
            raise EscalationError(f"escalation timeout must be positive, not {timeout_seconds}")
        now = time.time()
        esc = Escalation(new_id(), call.agent_id, call.action, call.args_hash, dict(context),
                         decision.rule.source if decision.rule else None, decision.reason,
                         EscalationStatus.PENDING, now, now + timeout_seconds)
        self.store.put_escalation(esc)
        try:
            self._audit(AuditEvent("escalation", esc.agent_id, esc.action, context=esc.context, details={
                "event": "opened", "escalation_id": esc.id, "rule": esc.rule, "reason": esc.reason,
                "args_hash": esc.args_hash, "created": esc.created, "expires": esc.expires,
                "call_id": call.call_id}))
        except BaseException:
            # an escalation nobody can find in the audit trail must not be approvable
            self.store.resolve_escalation(esc.id, EscalationStatus.DENIED, "claw-governance",
                                          "audit trail could not be written", time.time(), 0.0)
            raise
        return esc

    def consume_grant(self, call: ToolCall) -> str | None:
        """Use up the approval for exactly this call (agent, action, args hash), if there is one. Atomic."""
        return self.store.consume_grant(call.agent_id, call.action, call.args_hash, time.time())

    def _expire(self, esc: Escalation | None) -> Escalation | None:
        if esc is None or esc.status is not EscalationStatus.PENDING or esc.expires > time.time():
            return esc
        expired = self.store.expire_escalation(esc.id, time.time())
        if expired is None:  # another process got there first
            return self.store.get_escalation(esc.id)
        self._audit(AuditEvent("escalation", expired.agent_id, expired.action, details={
            "event": "expired", "escalation_id": expired.id, "status": "expired", "expires": expired.expires,
            "rule": expired.rule, "args_hash": expired.args_hash}))
        with self._cond:
            self._cond.notify_all()
        return expired

    def get(self, escalation_id: str) -> Escalation | None:
        """One escalation (a pending one whose time is up is marked and returned as expired), or None."""
        return self._expire(self.store.get_escalation(escalation_id))

    def pending(self) -> list[Escalation]:
        """Escalations waiting for a human, oldest first (expired ones are marked expired on the way).

        Empty once the queue is closed (``health_check()`` of a closed governor still answers)."""
        if self._closed:
            return []
        found = [self._expire(e) for e in self.store.list_escalations(EscalationStatus.PENDING)]
        return [e for e in found if e is not None and e.status is EscalationStatus.PENDING]

    def list_escalations(self, status: EscalationStatus | None = None, limit: int = 1000) -> list[Escalation]:
        """Escalations of any (or one) status, oldest first."""
        self.pending()  # apply expiry first
        return self.store.list_escalations(status, limit)

    def resolve(self, escalation_id: str, status: EscalationStatus, resolver: str, notes: str) -> Escalation:
        """Approve or deny a pending escalation. EscalationError if unknown, already resolved or expired."""
        if status not in (EscalationStatus.APPROVED, EscalationStatus.DENIED):
            raise EscalationError(f"an escalation can only be approved or denied, not {status.value}")
        if not resolver or not resolver.strip():
            raise EscalationError("a resolution needs the resolver's identity")
        current = self.get(escalation_id)  # audits an expiry that happened meanwhile
        if current is None:
            raise EscalationError(f"no escalation with id {escalation_id!r}")
        now = time.time()
        grant_expires = now + max(current.expires - current.created, 1.0)
        esc = self.store.resolve_escalation(escalation_id, status, resolver.strip(), notes or "", now, grant_expires)
        with self._cond:
            self._cond.notify_all()
        return esc

    def wait(self, escalation_id: str, timeout_seconds: float) -> Escalation | None:
        """Block until the escalation is resolved (by any process) or expires, or ``timeout_seconds`` pass.

        Returns the escalation as last seen (still PENDING after a timeout), or None for an unknown id.
        Polls the store: a resolution in another process is seen within ``POLL_INTERVAL`` seconds.
        """
        deadline = time.monotonic() + max(0.0, timeout_seconds)
        delay = _FIRST_POLL
        while True:
            esc = self.get(escalation_id)
            if esc is None or esc.status is not EscalationStatus.PENDING:
                return esc
            left = deadline - time.monotonic()
            if left <= 0:
                return esc
            until_expiry = max(0.0, esc.expires - time.time()) + 0.001
            with self._cond:
                self._cond.wait(min(left, delay, until_expiry))
            delay = min(delay * 2, POLL_INTERVAL)

    def close(self) -> None:
        """Wake any waiter; nothing else to release (the store is closed by the governor)."""
        self._closed = True
        with self._cond:
            self._cond.notify_all()
