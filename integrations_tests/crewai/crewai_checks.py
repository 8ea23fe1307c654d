"""Assertion helpers shared by the CrewAI integration tests (audit entries as the scenarios dumped them)."""

from __future__ import annotations

from typing import Any


def entries(result: dict[str, Any], type_: str, action: str | None = None) -> list[dict[str, Any]]:
    """The audit entries of one type (and action) from a scenario's trail."""
    return [e for e in result["audit"] if e.get("type") == type_ and (action is None or e.get("action") == action)]


def outcome(entry: dict[str, Any]) -> str | None:
    """An audit entry's decision outcome."""
    return (entry.get("decision") or {}).get("outcome")


def outcomes(result: dict[str, Any], action: str) -> list[str | None]:
    """The outcomes of every ``policy_decision`` for ``action``, oldest first."""
    return [outcome(e) for e in entries(result, "policy_decision", action)]


STORAGE_NAME = "claw-governance-crewai-tests"
"""CREWAI_STORAGE_DIR of the crew processes (crewai names a folder under the data home after it)."""
