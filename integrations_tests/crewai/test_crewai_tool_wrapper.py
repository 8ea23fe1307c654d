"""GovernedCrewTool: explicit wrapping, on both tool paths, against real crews."""

from __future__ import annotations

from typing import Any

from crewai_checks import entries, outcomes


def test_wrapped_tools_are_governed_without_hooks(hooks: dict[str, Any]) -> None:
    r = hooks["wrapped"]["alone"]
    assert r["ran"] == ["lookup"] and r["effects"] == []
    assert "LOOKUP-RESULT for w" in r["seen"]
    assert "denied by governance" in r["seen"] and 'deny rule "tool:delete_*"' in r["seen"]
    assert outcomes(r, "tool:lookup") == ["allow"]
    assert outcomes(r, "tool:delete_records") == ["deny"]
    [action] = entries(r, "agent_action", "tool:lookup")
    assert action["details"]["success"] is True


def test_wrapped_tool_is_decided_once_when_hooks_are_on_too(hooks: dict[str, Any]) -> None:
    wrapped = hooks["wrapped"]
    r = wrapped["with_hooks"]
    assert r["ran"] == ["lookup", "lookup"]
    assert outcomes(r, "tool:lookup") == ["allow", "allow"]  # one per call, not two
    assert len(entries(r, "agent_action", "tool:lookup")) == 2
    assert wrapped["schema_kept"] is True
