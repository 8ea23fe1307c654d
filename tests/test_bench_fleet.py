"""benchmarks/bench_fleet.py runs against the real PostgreSQL and its numbers are well-formed (no timing is
asserted): both stores measured in one run, replication copied everything, every grant consumed once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from postgres_support import admin_connection, base_url

ROOT = Path(__file__).resolve().parents[1]


def test_bench_fleet_quick(tmp_path: Path) -> None:
    admin_connection().close()  # fails with the install hint when there is no server  # type: ignore[attr-defined]
    out = tmp_path / "fleet.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_fleet.py"),
            "--quick",
            "--pg-url",
            base_url(),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(out.read_text())
    for kind in ("execute_sqlite", "execute_postgresql", "metrics_decided", "tracing_enabled_check"):
        assert 0 < got["execute"][kind]["p50_us"] <= got["execute"][kind]["p99_us"]
    backfill = got["replication"]["backfill"]
    assert backfill["entries"] >= 1000 and backfill["entries_per_s"] > 0
    assert got["replication"]["under_load"]["copied"] > 0  # (how far the copy got under load is a figure, not a test)
    grants = got["grants"]
    assert grants["consumed"] == grants["grants"] and grants["consumed_exactly_once"]
    assert sum(grants["per_host_consumed"]) == grants["grants"]
