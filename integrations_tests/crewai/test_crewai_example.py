"""examples/crewai_crew.py runs offline, on both tool paths, and does what it says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "crewai_crew.py"


def test_example_runs_offline_on_both_paths(run_crewai_python: Any, crewai_base: Path) -> None:
    for flags in ([], ["--native"]):
        work = crewai_base / ("example-" + ("native" if flags else "react"))
        proc = run_crewai_python([str(EXAMPLE), "--workdir", str(work), *flags], timeout=120)
        out = proc.stdout
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert ("native function calling" if flags else "text/ReAct") in out
        assert "model is told: The answer to 'life' is 42." in out
        assert 'Tool call denied by governance; it did not run. Reason: Denied by deny rule "tool:delete_*"' in out
        assert "Tool call held for human approval (escalation" in out
        assert "records deleted: none; e-mails sent: none; escalations pending: 1" in out
        assert "model is told: sent to team@example.com" in out
        assert "e-mails sent: ['team@example.com']" in out
        assert "audit chain valid: True" in out
        assert "OK: the delete never ran, the e-mail went out once, after approval" in out
        assert (work / "policies" / "researcher.yaml").exists() and any((work / "audit").iterdir())
