"""Trust scores, persisted in the state store and shared by every process.

- ``score`` is the store's score as last synced plus this process's deltas not yet flushed: a dict read.
- A positive ``adjust`` (a successful action, +1) only adds to an in-memory delta; the background sync
  (see ``identity.shared``) flushes all deltas every ``state_sync_interval`` seconds as atomic
  ``score = max(0, score + delta)`` updates and writes one aggregated ``trust_change`` audit entry per agent
  (``delta``, ``count``, ``old``, ``new``). Nothing is lost when processes update one agent concurrently.
- A negative ``adjust`` (failure, bad signature) is applied to the store at once and audited at once, so
  penalties are visible to every process immediately and a score reaching 0 revokes the identity now.
- ``set`` (reinstatement) writes through and drops this process's unflushed deltas for that agent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from claw_governance.config import GovernorConfig
from claw_governance.identity.shared import SharedState
from claw_governance.model import AuditEvent
from claw_governance.policy import TrustSettings
from claw_governance.state.base import StateStore, TrustChange

log = logging.getLogger("claw_governance.identity")

_DEFAULT = TrustSettings()


class TrustLedger:
    """Trust scores per agent, starting at ``settings.initial`` (100)."""

    def __init__(
        self,
        config: GovernorConfig,
        store: StateStore,
        audit: Callable[[AuditEvent], Any],
        on_zero: Callable[[str], None],
    ) -> None:
        self.config = config
        self.store = store
        self._audit = audit
        self._on_zero = on_zero
        self._shared = SharedState.for_store(store, config.state_sync_interval)
        self._pending: dict[str, int] = {}
        self._counts: dict[str, int] = {}
        self._reasons: dict[str, str] = {}
        self._initial: dict[str, int] = {}
        self._max: dict[str, int] = {}
        self._shared.flushers.append(self.flush)
        self._shared.on_trust_set.append(self._drop_pending)

    def score(self, agent_id: str, settings: TrustSettings | None = None) -> int:
        """The current score: stored score (or the initial one) plus unflushed local deltas."""
        shared = self._shared
        with shared.trust_lock:
            base = shared.scores.get(agent_id)
            if base is None:
                base = settings.initial if settings is not None else self._initial.get(agent_id, _DEFAULT.initial)
            ceiling = settings.max_score if settings is not None else self._max.get(agent_id, _DEFAULT.max_score)
            return min(ceiling, max(0, base + self._pending.get(agent_id, 0)))

    def adjust(self, agent_id: str, delta: int, reason: str, settings: TrustSettings) -> int:
        """Add ``delta``; see the module doc for when it reaches the store. Returns the new score."""
        if delta == 0:
            return self.score(agent_id, settings)
        if delta > 0:
            with self._shared.trust_lock:
                base = self._shared.scores.get(agent_id)
                current = settings.initial if base is None else base
                pending = self._pending.get(agent_id, 0)
                # A success earned at the ceiling is worth nothing: banking it would let it cancel a later
                # penalty, and counting it would inflate the next trust_change entry's "count". (The store
                # also clamps atomically at flush; this only stops the banking.) The usual case: return now.
                room = settings.max_score - current - pending
                if room <= 0:
                    return min(settings.max_score, max(0, current + pending))
                self._initial[agent_id] = settings.initial
                self._max[agent_id] = settings.max_score
                pending = self._pending[agent_id] = pending + min(delta, room)
                self._counts[agent_id] = self._counts.get(agent_id, 0) + 1
                self._reasons[agent_id] = reason
                return min(settings.max_score, max(0, current + pending))
        with self._shared.flush_lock:
            with self._shared.trust_lock:
                self._initial[agent_id] = settings.initial
                self._max[agent_id] = settings.max_score
            (change,) = self.store.add_trust({agent_id: (delta, settings.initial, settings.max_score)})
            with self._shared.trust_lock:
                self._shared.scores[agent_id] = change.new
        self._record(change, delta, 1, reason)
        return self.score(agent_id, settings)

    def set(self, agent_id: str, value: int, reason: str) -> None:
        """Set a score (reinstatement); audited."""
        change = self._shared.set_trust(agent_id, value)
        self._record(change, change.new - change.old, 1, reason)

    def flush(self) -> None:
        """Write this process's accumulated deltas to the store now (called by the sync thread and at close)."""
        with self._shared.flush_lock:
            with self._shared.trust_lock:
                batch = {
                    a: (d, self._initial.get(a, _DEFAULT.initial), self._max.get(a, _DEFAULT.max_score))
                    for a, d in self._pending.items()
                    if d
                }
                counts = {a: self._counts.get(a, 0) for a in batch}
                reasons = {a: self._reasons.get(a, "") for a in batch}
            if not batch:
                return
            changes = self.store.add_trust(batch)
            with self._shared.trust_lock:
                for change in changes:
                    a = change.agent_id
                    left = self._pending.get(a, 0) - batch[a][0]
                    left_count = self._counts.get(a, 0) - counts[a]
                    if left:
                        self._pending[a] = left
                        self._counts[a] = left_count
                    else:
                        self._pending.pop(a, None)
                        self._counts.pop(a, None)
                    self._shared.scores[a] = change.new
        for change in changes:
            self._record(change, batch[change.agent_id][0], counts[change.agent_id], reasons[change.agent_id])

    def _drop_pending(self, agent_id: str) -> None:  # called with trust_lock held
        self._pending.pop(agent_id, None)
        self._counts.pop(agent_id, None)

    def _record(self, change: TrustChange, delta: int, count: int, reason: str) -> None:
        details: dict[str, Any] = {"old": change.old, "new": change.new, "delta": delta, "reason": reason}
        if count > 1:
            details["count"] = count
            details["reason"] = f"{count} actions; last: {reason}"
        try:
            self._audit(AuditEvent("trust_change", change.agent_id, details=details))
        finally:
            if change.old > 0 and change.new == 0:
                self._on_zero(change.agent_id)

    def close(self) -> None:
        """Flush pending deltas and stop the sync thread (also done by ``IdentityRegistry.close``)."""
        self._shared.close()
