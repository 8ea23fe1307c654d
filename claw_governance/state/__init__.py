"""The state store: everything several processes must share (escalations, grants, trust scores, replay
nonces, audit checkpoints), behind one interface. ``open_state_store(config)`` picks the implementation."""

from claw_governance.state.base import StateStore, open_state_store
from claw_governance.state.memory import MemoryStateStore

__all__ = ["MemoryStateStore", "StateStore", "open_state_store"]
