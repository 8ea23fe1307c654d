"""The state store: everything several processes must share (identities, trust scores, replay nonces,
escalations, approval grants, audit checkpoints), behind one interface. ``open_state_store(config)`` picks
the implementation: PostgreSQL for a fleet (``state_url``), SQLite in the state directory, or memory when
there is no path."""

from __future__ import annotations

from claw_governance.config import GovernorConfig
from claw_governance.state.base import (
    ACTIVE,
    REVOKED,
    IdentityRecord,
    JobRecord,
    KeyRecord,
    PolicyVersion,
    StateStore,
    TrustChange,
)
from claw_governance.state.memory import MemoryStateStore
from claw_governance.state.sqlite import SQLiteStateStore

__all__ = [
    "ACTIVE",
    "REVOKED",
    "IdentityRecord",
    "JobRecord",
    "KeyRecord",
    "MemoryStateStore",
    "PolicyVersion",
    "SQLiteStateStore",
    "StateStore",
    "TrustChange",
    "describe_store",
    "open_state_store",
]


def open_state_store(config: GovernorConfig) -> StateStore:
    """PostgreSQL at ``config.state_url`` when set (the fleet); else SQLite file ``state.db`` under
    ``config.resolved_state_path``; in memory when there is neither."""
    if config.state_url is not None:
        from claw_governance.state.postgres import PostgresStateStore  # psycopg only when asked for

        return PostgresStateStore(config.state_url)
    path = config.resolved_state_path
    if path is None:
        return MemoryStateStore()
    return SQLiteStateStore(path / "state.db")


def describe_store(store: StateStore) -> dict[str, str]:
    """``{"backend", "location"}`` of a store, for health and ``doctor`` (a URL without its password)."""
    if isinstance(store, SQLiteStateStore):
        return {"backend": "sqlite", "location": str(store.path)}
    if isinstance(store, MemoryStateStore):
        return {"backend": "memory", "location": "(this process)"}
    display = getattr(store, "display_url", None)
    if display is not None:
        return {"backend": "postgresql", "location": str(display)}
    return {"backend": type(store).__name__, "location": "?"}
