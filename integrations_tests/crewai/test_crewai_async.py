"""crewai's async entry points are governed: ``crew.akickoff()`` (global and scoped hooks, both tool paths) and
``GovernedCrewTool.arun`` / ``_arun`` for sync and async tools. A refused tool body never runs."""

from __future__ import annotations

from typing import Any

from crewai_checks import outcomes


def test_akickoff_is_governed_by_the_global_hooks(crew_results: dict[str, Any], path: str) -> None:
    r = crew_results[f"async_{path}"]["akickoff"]
    assert r["error"] is None, r["error"]
    assert "delete_records" not in r["ran"] and r["effects"] == []
    assert "denied by governance" in r["seen"]
    assert outcomes(r, "tool:delete_records") == ["deny"]
    assert r["ran"] == ["lookup"] and outcomes(r, "tool:lookup") == ["allow"]


def test_akickoff_is_governed_by_the_scoped_hooks(crew_results: dict[str, Any], path: str) -> None:
    r = crew_results[f"async_{path}"]["akickoff_scoped"]
    assert r["ran"] == [] and r["effects"] == []
    assert "denied by governance" in r["seen"]
    assert outcomes(r, "tool:delete_records") == ["deny"]


def test_governed_crew_tool_arun_runs_only_on_allow(crew_results: dict[str, Any]) -> None:
    r = crew_results["async_react"]["wrapped_arun"]
    results = r["results"]
    assert r["ran"] == ["lookup_async"] and r["effects"] == []
    assert results["async_allowed"] == "found q"
    for key in ("sync_denied", "async_denied"):
        assert "denied by governance" in results[key], results[key]
    assert "held for human approval" in results["async_escalated"]
    assert results["raised"] == "ToolCallDenied"
    assert outcomes(r, "tool:delete_records") == ["deny"]
    assert outcomes(r, "tool:delete_async") == ["deny", "deny"]
    assert outcomes(r, "tool:send_email") == ["escalate"]
    assert outcomes(r, "tool:lookup") == ["allow"]
