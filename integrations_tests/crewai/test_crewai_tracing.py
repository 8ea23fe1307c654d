"""OpenTelemetry under real CrewAI (both tool paths): one span per governed tool call, a child of the
application's span around the crew run, with the decision as attributes and events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def test_each_governed_crew_tool_call_is_one_child_span(run_crewai_python: Any, crewai_base: Path) -> None:
    out = crewai_base / "tracing" / "spans.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = run_crewai_python([str(HERE / "crewai_tracing.py"), str(out)])
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(out.read_text())
    for path in ("react", "native"):
        got = results[path]
        assert got["error"] is None and got["ran"] == ["lookup"], got
        by_action = {s["attributes"]["claw.action"]: s for s in got["spans"]}
        assert set(by_action) == {"tool:lookup", "tool:delete_records"}, got["spans"]
        for span in got["spans"]:
            assert span["parent"] == got["run_span"] and span["trace"] == got["run_trace"]
            assert span["attributes"]["claw.framework"] == "crewai"
            assert span["attributes"]["claw.agent_id"] == "researcher"
        lookup, delete = by_action["tool:lookup"], by_action["tool:delete_records"]
        assert lookup["attributes"]["claw.outcome"] == "allow" and lookup["attributes"]["claw.tool.success"]
        assert delete["attributes"]["claw.outcome"] == "deny" and delete["events"] == ["claw.denied"]
        assert delete["attributes"]["claw.rule.pattern"] == "tool:delete_*"
