"""benchmarks/bench_session.py runs and its numbers are well-formed (no timing is asserted): every variant
measured with check and execute in one run, every measured call allowed (the script checks that itself)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_session_quick(tmp_path: Path) -> None:
    out = tmp_path / "session.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_session.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    variants = ("plain", "condition", "labels", "budget", "labels_budget")
    assert set(results) == {f"{m}_{v}" for m in ("check", "execute") for v in variants}
    for figures in results.values():
        assert 0 < figures["p50_us"] <= figures["p99_us"]
