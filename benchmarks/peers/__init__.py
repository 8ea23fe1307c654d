"""Adapters for the systems a user would pick instead of claw-governance, measured in the same run.

Each adapter module exposes ``available() -> str | None`` (the installed version, or None when the peer is
not importable) and one class per measured mode, built from a ``workloads.Workload``, with
``decide(query) -> "allow" | "deny" | "escalate"`` (for the cross-check) and ``call(query)`` (the timed path).
"""

from __future__ import annotations

from typing import Any, Protocol


class PeerSystem(Protocol):
    """What run.py needs from a measured system."""

    label: str

    def decide(self, query: Any) -> str:
        """The system's outcome for a workload query, in the workload's vocabulary."""

    def call(self, query: Any) -> object:
        """The operation that is timed."""

    def close(self) -> None:
        """Release resources."""
