"""An in-memory StateStore for tests and path-less governors (one process only)."""

from __future__ import annotations

import threading
from typing import Any


class MemoryStateStore:
    """Keeps state in dicts under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checkpoints: dict[str, dict[str, Any]] = {}

    def put_checkpoint(self, trail_id: str, seq: int, entry_hash: str, signature: str, created: float) -> None:
        with self._lock:
            self._checkpoints[trail_id] = {"seq": seq, "hash": entry_hash, "signature": signature, "created": created}

    def latest_checkpoint(self, trail_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._checkpoints.get(trail_id)
            return dict(found) if found else None

    def close(self) -> None:
        pass
