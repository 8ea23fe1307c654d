"""A C2SP tlog-witness (``claw-gov witness serve``): cosigns checkpoints that are consistent with what it saw."""

from claw_governance.witness.server import WitnessState, make_server

__all__ = ["WitnessState", "make_server"]
