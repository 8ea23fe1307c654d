"""Data-flow labels: what a session has seen, so a rule can look at more than the one call in front of it.

``labels: {"read:customer_*": [pii], "http:get": [untrusted]}`` attaches labels to the call's session once a
matching call has **succeeded** (its output is now in the agent's context). A condition names them as
``session.labels``: ``"pii" in session.labels && !url.startsWith("https://internal.example.com/")``.

Labels live in the state store (``StateStore.session_labels``), shared by every process, each kept for at
least ``SESSION_TTL_SECONDS`` after it was last attached (at most ``SESSION_TTL_SECONDS + RENEW_SECONDS``).
The decision path reads them from this process's cache: a label attached here is seen at once, one attached
by another process within ``state_sync_interval`` seconds (the cache's age limit), so no call waits on the
database unless its session's entry is stale. The cache entry holds the session state ready to bind (a
read-only ``SessionState`` with the labels sorted), rebuilt only when the labels change. When the labels
cannot be read, ``session`` is absent from the condition's variables: the condition cannot be evaluated,
which counts as a match for deny and escalate rules and as no match for allow rules.

A labelled call writes only when it adds something: a label the session does not hold yet, or one whose
expiry this process has not renewed for ``RENEW_SECONDS`` (each write stores ``now + SESSION_TTL_SECONDS +
RENEW_SECONDS``, so skipping the writes in between never lets a label expire sooner than
``SESSION_TTL_SECONDS`` after the last call that attached it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from claw_governance.model import ToolCall
from claw_governance.policy.engine import SESSION_METADATA_KEY, PolicySet, SessionState
from claw_governance.policy.patterns import normalize
from claw_governance.session import session_of

SESSION_TTL_SECONDS = 24 * 3600.0
#: A label attached again within this long of this process's last write of it is not written again.
RENEW_SECONDS = SESSION_TTL_SECONDS / 2
_CACHE_LIMIT = 65536
_NEVER = float("-inf")
_CALL_FIELDS = tuple(f.name for f in fields(ToolCall) if f.name != "metadata")
_new = object.__new__
_set = object.__setattr__


def _with_metadata(call: ToolCall, metadata: Mapping[str, Any]) -> ToolCall:
    """``call`` with other metadata: the fields set directly (``dataclasses.replace`` costs several times
    more, re-running ``__init__`` through keyword arguments; the fields need no validation, they are the
    call's own)."""
    copy = _new(ToolCall)
    for name in _CALL_FIELDS:
        _set(copy, name, getattr(call, name))
    _set(copy, "metadata", metadata)
    return copy


@dataclass(frozen=True, slots=True)
class _Entry:
    """One session in the cache: its labels, when they were read, the state to bind, and what this process
    wrote (label -> time of its last write, whose stored expiry is at least that + TTL + RENEW_SECONDS)."""

    labels: frozenset[str]
    read_at: float
    state: SessionState
    written: Mapping[str, float]


def _state(labels: frozenset[str]) -> SessionState:
    return SessionState(labels=tuple(sorted(labels)))


class SessionLabels:
    """Reads (cached) and attaches (write-through, only when it adds something) the labels of each session."""

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
        self._cache: dict[str, _Entry] = {}
        self._agents: dict[str, str] = {}  # agent id -> normalised (normalize is NFKC and more: not per call)

    def key(self, call: ToolCall) -> str:
        """The state-store key of a call's session labels."""
        agent = self._agents.get(call.agent_id)
        if agent is None:
            if len(self._agents) >= _CACHE_LIMIT:
                self._agents.clear()
            agent = self._agents[call.agent_id] = normalize(call.agent_id)
        return f"{agent}|{session_of(call)}"

    def state(self, call: ToolCall) -> SessionState | None:
        """The session's state to bind as ``session`` (from the cache while it is fresh), or None when the
        labels cannot be read."""
        key = self.key(call)
        now = self.clock()
        hit = self._cache.get(key)
        if hit is not None and now - hit.read_at < self.max_age:
            return hit.state
        try:
            labels = frozenset(self.store.session_labels(key, frozenset(), now, SESSION_TTL_SECONDS))
        except Exception as exc:
            self.on_error(f"cannot read session labels ({type(exc).__name__}: {exc})")
            return None
        return self._remember(key, labels, now).state

    def current(self, call: ToolCall) -> frozenset[str] | None:
        """The session's labels, or None when they cannot be read."""
        state = self.state(call)
        return None if state is None else frozenset(state["labels"])

    def attach(self, call: ToolCall) -> ToolCall:
        """``call`` with its session state in the metadata (replacing any the caller put there)."""
        state = self.state(call)
        metadata = call.metadata
        if state is None:  # unknown: the condition cannot be evaluated; nothing a caller put there counts
            if SESSION_METADATA_KEY not in metadata:
                return call
            return _with_metadata(call, {k: v for k, v in metadata.items() if k != SESSION_METADATA_KEY})
        if metadata.get(SESSION_METADATA_KEY) is state:
            return call
        return _with_metadata(
            call, {**metadata, SESSION_METADATA_KEY: state} if metadata else {SESSION_METADATA_KEY: state}
        )

    def record(self, call: ToolCall, policy: PolicySet) -> None:
        """After a call succeeded: attach the labels its action carries (``labels:``) to its session.

        Nothing is written when this process wrote each of them less than ``RENEW_SECONDS`` ago: the store
        holds them (labels only accumulate) until at least ``SESSION_TTL_SECONDS`` after now."""
        add = policy.labels_for(call.agent_id, call.action)
        if not add:
            return
        key = self.key(call)
        now = self.clock()
        hit = self._cache.get(key)
        if hit is not None:
            written = hit.written
            if all(now - written.get(label, _NEVER) < RENEW_SECONDS for label in add):
                return
        try:
            labels = frozenset(self.store.session_labels(key, add, now, SESSION_TTL_SECONDS + RENEW_SECONDS))
        except Exception as exc:
            # This process still knows: it keeps the labels (and so keeps denying what they deny). Nothing is
            # marked written, so the next labelled call tries the store again.
            self._remember(key, (hit.labels if hit else frozenset()) | add, now)
            self.on_error(f"cannot store session labels ({type(exc).__name__}: {exc})")
            return
        self._remember(key, labels, now, add)

    def _remember(self, key: str, labels: frozenset[str], now: float, wrote: frozenset[str] = frozenset()) -> _Entry:
        # The entry as it is now, not as it was when this thread began: another thread may have written a
        # label since this one read the store. A label this process wrote is in the store until at least
        # TTL + RENEW_SECONDS after that write, so a read that raced the write still counts it.
        hit = self._cache.get(key)
        written = dict(hit.written) if hit is not None else {}
        for label in wrote:
            written[label] = now
        keep = SESSION_TTL_SECONDS + RENEW_SECONDS
        labels = labels.union(label for label, at in written.items() if now - at < keep)
        written = {label: at for label, at in written.items() if label in labels}
        state = hit.state if hit is not None and hit.labels == labels else _state(labels)
        entry = _Entry(labels, now, state, written)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = entry
        return entry
