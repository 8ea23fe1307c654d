"""Issue 13 against real CrewAI: closing never opens a door (class 6), outcomes come from crewai's real
exception path, never from a tool's output text (class 7). Scenarios: doors_scenarios.py (one child process).

On the code before this change: after close() the delete ran (hooks removed by close), and 11 hostile
fetches starting with "Error executing tool:" cost 5 trust points each while "Tool execution blocked by hook."
outputs left no agent_action entry; these assertions failed there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def doors(run_crewai_python: Any, crewai_base: Path) -> dict[str, Any]:
    out = crewai_base / "doors"
    proc = run_crewai_python([str(HERE / "doors_scenarios.py"), str(out)])
    assert proc.returncode == 0, proc.stderr[-6000:]
    results: dict[str, Any] = json.loads((out / "results.json").read_text())
    assert not results["errors"], "\n".join(results["errors"].values())
    return results


def test_closed_governor_keeps_denying_through_global_hooks_and_wrapped_tools(doors: dict[str, Any], path: str) -> None:
    r = doors[f"closed_{path}"]
    assert r["hooks_while_closed"] == [1, 1]  # close() left the hooks in place
    assert r["ran"] == [] and r["effects"] == []  # neither the denied nor the allowed tool ran
    assert "governor is closed" in r["denied"]["seen"] and "governor is closed" in r["allowed"]["seen"]
    assert "governor is closed" in r["wrapped_direct"]
    assert r["hooks_after_disable"] == [0, 0]  # an explicit disable() removes them


def test_hostile_output_text_is_not_a_failure(doors: dict[str, Any], path: str) -> None:
    r = doors[f"spoof_{path}"]
    assert r["ran"].count("fetch_page") == 5
    assert r["trust_before"] == 100 and r["trust_after_fetches"] == 100
    # every fetch left its agent_action entry, "blocked by hook" text included, each a success
    assert len(r["fetch_actions"]) == 5
    assert all(a["success"] is True and a["error"] is None for a in r["fetch_actions"])


def test_a_real_exception_is_a_failure(doors: dict[str, Any], path: str) -> None:
    r = doors[f"spoof_{path}"]
    assert "flaky" in r["ran"]
    assert len(r["flaky_actions"]) == 1 and r["flaky_actions"][0]["success"] is False
    assert "backend unavailable" in r["flaky_actions"][0]["error"]
    assert r["trust_after_failure"] == r["trust_after_fetches"] - 5
