"""The state store: everything several processes must share (identities, trust scores, replay nonces,
escalations, approval grants, audit checkpoints), behind one interface. ``open_state_store(config)`` picks
the implementation: SQLite in the state directory, or memory when there is no path."""

from claw_governance.state.base import (
    ACTIVE,
    REVOKED,
    IdentityRecord,
    JobRecord,
    KeyRecord,
    PolicyVersion,
    StateStore,
    TrustChange,
    open_state_store,
)
from claw_governance.state.memory import MemoryStateStore
from claw_governance.state.sqlite import SQLiteStateStore

__all__ = ["ACTIVE", "REVOKED", "IdentityRecord", "JobRecord", "KeyRecord", "MemoryStateStore", "PolicyVersion",
           "SQLiteStateStore", "StateStore", "TrustChange", "open_state_store"]
