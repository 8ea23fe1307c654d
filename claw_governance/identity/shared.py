"""The in-process view of identity and trust state, kept in step with the store by one background thread.

The hot path (``IdentityRegistry.verify`` without signatures, ``TrustLedger.score`` and a positive
``TrustLedger.adjust``) reads and writes only this object: set lookups and dict updates, no database round
trip. A background thread, every ``config.state_sync_interval`` seconds (1 s by default):

- flushes the trust deltas this process accumulated, as one transaction of atomic
  ``score = max(0, score + delta)`` updates (so no update from any process is ever lost), and audits them;
- re-reads every identity's (status, version) and every trust score, so a revocation, reinstatement, key
  rotation or score change made by ANOTHER process takes effect here within one interval;
- every minute, purges expired replay nonces and used or expired grants.

Changes made in this process (revoke, reinstate, rotate, set score) apply to this object at once.
One SharedState exists per state store (both the registry and the ledger of a Governor use it).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable

from claw_governance.state.base import REVOKED, StateStore, TrustChange

log = logging.getLogger("claw_governance.identity")

PURGE_INTERVAL = 60.0

_registry: weakref.WeakKeyDictionary[object, SharedState] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


class SharedState:
    """Cached identity status and trust scores for one store, plus the sync thread."""

    def __init__(self, store: StateStore, interval: float) -> None:
        self.store = store
        self.interval = interval
        # identity view: replaced wholesale (never mutated in place) under identity_lock
        self.identity_lock = threading.Lock()
        self.known: frozenset[str] = frozenset()
        self.revoked: frozenset[str] = frozenset()
        self.versions: dict[str, int] = {}
        # trust view: db scores as last seen + deltas not yet flushed
        self.trust_lock = threading.Lock()
        self.flush_lock = threading.Lock()
        self.scores: dict[str, int] = {}
        self.on_identity_change: list[Callable[[str], None]] = []
        self.flushers: list[Callable[[], None]] = []
        self.on_trust_set: list[Callable[[str], None]] = []  # called with trust_lock held
        self._stop = threading.Event()
        self._closed = False
        self._last_purge = time.monotonic()
        self.last_error: str | None = None
        self.last_sync: float = 0.0
        self.refresh_identities()
        self.refresh_scores()
        self._thread = threading.Thread(target=self._run, name="claw-state-sync", daemon=True)
        self._thread.start()
        watch = getattr(store, "watch_identities", None)
        if watch is not None:  # PostgreSQL: a revocation on another host arrives now, not at the next sync
            watch(lambda agent_id: self.refresh_identities())

    @classmethod
    def for_store(cls, store: StateStore, interval: float) -> SharedState:
        """The one SharedState of ``store`` (created on first use)."""
        with _registry_lock:
            found = _registry.get(store)
            if found is None or found._closed:
                found = cls(store, interval)
                _registry[store] = found
            return found

    # ------------------------------------------------------------------------------------- identities

    def refresh_identities(self) -> None:
        """Re-read every identity's status and version; tell listeners about the ones that changed."""
        with self.identity_lock:
            versions = self.store.identity_versions()
            changed = [a for a, (_, v) in versions.items() if self.versions.get(a) != v]
            changed += [a for a in self.versions if a not in versions]
            self.known = frozenset(versions)
            self.revoked = frozenset(a for a, (status, _) in versions.items() if status == REVOKED)
            self.versions = {a: v for a, (_, v) in versions.items()}
        for agent_id in changed:
            for listener in list(self.on_identity_change):
                listener(agent_id)

    def note_identity(self, agent_id: str, status: str, version: int) -> None:
        """Apply a change made (or seen) in this process at once."""
        with self.identity_lock:
            self.known = self.known | {agent_id}
            self.revoked = (self.revoked | {agent_id}) if status == REVOKED else (self.revoked - {agent_id})
            self.versions = {**self.versions, agent_id: version}
        for listener in list(self.on_identity_change):
            listener(agent_id)

    # ------------------------------------------------------------------------------------------ trust

    def refresh_scores(self) -> None:
        """Re-read every stored score (serialised with flushes, so a flush is never overwritten)."""
        with self.flush_lock:
            scores = self.store.trust_scores()
            with self.trust_lock:
                self.scores = scores

    def set_trust(self, agent_id: str, value: int) -> TrustChange:
        """Set a score in the store and here (reinstatement); this process's unflushed deltas are dropped."""
        with self.flush_lock:
            change = self.store.set_trust(agent_id, value)
            with self.trust_lock:
                self.scores[agent_id] = change.new
                for listener in list(self.on_trust_set):
                    listener(agent_id)
        return change

    # ------------------------------------------------------------------------------------ the thread

    def sync(self) -> None:
        """One round: flush, refresh, maybe purge. Errors are logged and kept for health, never raised."""
        try:
            for flush in list(self.flushers):
                flush()
            self.refresh_identities()
            self.refresh_scores()
            if time.monotonic() - self._last_purge > PURGE_INTERVAL:
                self._last_purge = time.monotonic()
                self.store.purge(time.time())
            self.last_error = None
            self.last_sync = time.time()
        except Exception as exc:  # a closed store at shutdown, a locked database ...
            self.last_error = f"{type(exc).__name__}: {exc}"
            if not self._closed:
                log.error("claw-governance state sync failed: %s", self.last_error)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sync()

    def close(self) -> None:
        """Stop the thread and flush what is pending (idempotent). Call before the audit trail closes."""
        if self._closed:
            return
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        try:
            for flush in list(self.flushers):
                flush()
        except Exception as exc:
            log.error("claw-governance: final trust flush failed: %s", exc)
        self._closed = True
        with _registry_lock:
            if _registry.get(self.store) is self:
                del _registry[self.store]
