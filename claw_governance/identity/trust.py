"""A minimal in-memory trust ledger (to be replaced by the state-store ledger of issue 4)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from claw_governance.model import AuditEvent
from claw_governance.policy import TrustSettings


class TrustLedger:
    """Scores per agent, starting at ``settings.initial``."""

    def __init__(self, config: object, store: object, audit: Callable[[AuditEvent], object],
                 on_zero: Callable[[str], None]) -> None:
        self._scores: dict[str, int] = {}
        self._lock = threading.Lock()
        self._audit = audit
        self._on_zero = on_zero

    def score(self, agent_id: str, settings: TrustSettings | None = None) -> int:
        """Current score (the initial score if the agent never acted)."""
        return self._scores.get(agent_id, (settings or TrustSettings()).initial)

    def adjust(self, agent_id: str, delta: int, reason: str, settings: TrustSettings) -> int:
        """Add ``delta`` (clamped at 0); audit the change; revoke at 0."""
        with self._lock:
            old = self._scores.get(agent_id, settings.initial)
            new = max(0, old + delta)
            self._scores[agent_id] = new
        if new != old:
            self._audit(AuditEvent("trust_change", agent_id,
                                   details={"old": old, "new": new, "delta": delta, "reason": reason}))
        if new == 0 and old != 0:
            self._on_zero(agent_id)
        return new

    def set(self, agent_id: str, value: int, reason: str) -> None:
        """Set a score (reinstatement)."""
        with self._lock:
            old = self._scores.get(agent_id, value)
            self._scores[agent_id] = value
        self._audit(AuditEvent("trust_change", agent_id, details={"old": old, "new": value, "reason": reason}))
