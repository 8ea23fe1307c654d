"""The LangChain overhead benchmark runs and reports well-formed numbers (no timing is asserted here)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_langchain


def test_bare_invoke_measurement_is_well_formed() -> None:
    r = bench_langchain.run(calls=20, rounds=1)
    for side in (
        "ungoverned",
        "governed",
        "governor_only",
        "langchain_plus_governor",
        "noop_governor",
        "langchain_plus_floor",
    ):
        assert r[f"{side}_p50"] > 0 and r[f"{side}_p99"] >= r[f"{side}_p50"]
    assert r["ratio_p50"] == r["governed_p50"] / r["ungoverned_p50"]
    # warm-up (200) + timed (20) calls, each governed call writing two entries: the governed side was audited
    assert r["audit_entries"] >= 2 * 2 * 220
    assert r["floor_adapter_us"] == r["noop_governor_p50"] - r["ungoverned_p50"]
    assert r["floor_audit_us"] == r["langchain_plus_floor_p50"] - r["ungoverned_p50"]
    assert r["floor_p50_us"] == r["floor_adapter_us"] + r["floor_audit_us"]


def test_agent_turn_measurement_is_well_formed() -> None:
    r = bench_langchain.run_agent(calls=5, rounds=1)
    assert r["agent_ungoverned_p50"] > 0 and r["agent_governed_p50"] > 0
    assert r["agent_ratio_p50"] == r["agent_governed_p50"] / r["agent_ungoverned_p50"]
