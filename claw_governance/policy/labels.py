"""Data-flow labels: what a session has seen, so a rule can look at more than the one call in front of it.

``labels: {"read:customer_*": [pii], "http:get": [untrusted]}`` attaches labels to the call's session once a
matching call has **succeeded** (its output is now in the agent's context). A condition names them as
``session.labels``: ``"pii" in session.labels && !url.startsWith("https://internal.example.com/")``.

Labels live in the state store (``StateStore.session_labels``), shared by every process, each kept for
``SESSION_TTL_SECONDS`` after it was last attached. The decision path reads them from this process's cache:
a label attached here is seen at once, one attached by another process within ``state_sync_interval``
seconds (the cache's age limit), so no call waits on the database unless its session's entry is stale. When
the labels cannot be read, ``session`` is absent from the condition's variables: the condition cannot be
evaluated, which counts as a match for deny and escalate rules and as no match for allow rules.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from claw_governance.model import ToolCall
from claw_governance.policy.engine import SESSION_METADATA_KEY, PolicySet
from claw_governance.policy.patterns import normalize
from claw_governance.session import session_of

SESSION_TTL_SECONDS = 24 * 3600.0
_CACHE_LIMIT = 65536


class SessionLabels:
    """Reads (cached) and attaches (write-through) the labels of each (agent, session)."""

    def __init__(
        self,
        store: Any,
        max_age_seconds: float,
        on_error: Callable[[str], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.max_age = max_age_seconds
        self.on_error = on_error
        self.clock = clock
        self._cache: dict[str, tuple[frozenset[str], float]] = {}

    @staticmethod
    def key(call: ToolCall) -> str:
        """The state-store key of a call's session labels."""
        return f"{normalize(call.agent_id)}|{session_of(call)}"

    def current(self, call: ToolCall) -> frozenset[str] | None:
        """The session's labels, or None when they cannot be read."""
        key = self.key(call)
        now = self.clock()
        hit = self._cache.get(key)
        if hit is not None and now - hit[1] < self.max_age:
            return hit[0]
        try:
            labels = frozenset(self.store.session_labels(key, frozenset(), now, SESSION_TTL_SECONDS))
        except Exception as exc:
            self.on_error(f"cannot read session labels ({type(exc).__name__}: {exc})")
            return None
        self._remember(key, labels, now)
        return labels

    def attach(self, call: ToolCall) -> ToolCall:
        """``call`` with its session state in the metadata (replacing any the caller put there)."""
        metadata = {k: v for k, v in call.metadata.items() if k != SESSION_METADATA_KEY}
        labels = self.current(call)
        if labels is not None:
            metadata[SESSION_METADATA_KEY] = {"labels": sorted(labels)}
        return replace(call, metadata=metadata)

    def record(self, call: ToolCall, policy: PolicySet) -> None:
        """After a call succeeded: attach the labels its action carries (``labels:``) to its session."""
        add = policy.labels_for(call.agent_id, call.action)
        if not add:
            return
        key = self.key(call)
        now = self.clock()
        hit = self._cache.get(key)
        try:
            labels = frozenset(self.store.session_labels(key, add, now, SESSION_TTL_SECONDS))
        except Exception as exc:
            # This process still knows: it keeps the labels (and so keeps denying what they deny).
            labels = (hit[0] if hit else frozenset()) | add
            self.on_error(f"cannot store session labels ({type(exc).__name__}: {exc})")
        self._remember(key, labels, now)

    def _remember(self, key: str, labels: frozenset[str], now: float) -> None:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = (labels, now)
