"""The benchmark harness runs and its numbers are well-formed. No test here asserts a timing.

``benchmarks/run.py --quick`` runs in a subprocess (seconds) into a temporary directory. The peers (AGT,
cedarpy) are measured whenever they are importable in this interpreter, and then the test demands their rows
and their cross-checks; when they are not installed, the test demands that the run measured our own
workloads and recorded the peers as absent.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import workloads  # noqa: E402

PEERS_IMPORTABLE = {
    "agt": importlib.util.find_spec("agentmesh") is not None,
    "cedarpy": importlib.util.find_spec("cedarpy") is not None,
}
OURS = ("claw_evaluate", "claw_evaluate_unseen", "claw_check", "claw_execute")
PEER_SERIES = {
    "agt": ("agt_govern_audit_off", "agt_govern_audit_on", "agt_govern_audit_on_allowed"),
    "cedarpy": ("cedarpy",),
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick", "--no-install", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + "\n--- stdout ---\n" + proc.stdout[-1500:]
    return out, json.loads((out / "results.json").read_text()), proc.stdout


def test_files_written(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    out, data, _ = quick_run
    for name in ("results.json", "results.md", "latency.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "results.md").read_text()
    assert "Decision only" in md and "Goals" in md and "| rules |" in md
    assert set(data) >= {"meta", "latency", "ratios", "crosscheck", "audit_verify", "multiprocess", "goals", "errors"}
    assert data["errors"] == []


def test_numbers_well_formed(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    _, data, _ = quick_run
    assert data["latency"]
    for row in data["latency"]:
        assert set(row) >= {
            "series",
            "label",
            "group",
            "rule_count",
            "samples",
            "p50_us",
            "p99_us",
            "mean_us",
            "min_us",
        }, row
        assert row["samples"] > 0
        assert 0 < row["min_us"] <= row["p50_us"] <= row["p99_us"], row
        assert row["mean_us"] > 0
    for row in data["ratios"]:
        assert row["p50_ratio"] > 0 and row["p99_ratio"] > 0
    for row in data["multiprocess"]:
        assert row["throughput_per_s"] > 0 and 0 < row["p50_us"] <= row["p99_us"]
        assert row["trail_entries"] >= 0 and isinstance(row["trail_valid"], bool)
    assert {r["processes"] for r in data["multiprocess"]} >= {1, 2}
    av = data["audit_verify"]
    assert av["entries_written"] > 0 and av["entries_verified"] >= 1 and av["verify_seconds"] > 0
    assert isinstance(av["valid"], bool)
    meta = data["meta"]
    assert meta["cpus"] >= 1 and meta["python"] and meta["date_utc"] and meta["timer_overhead_us"] > 0
    for goal in data["goals"]:
        assert set(goal) == {"goal", "met", "detail"} and goal["met"] in (True, False, None)


def test_our_workloads_measured(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    _, data, _ = quick_run
    measured = {(r["series"], r["rule_count"]) for r in data["latency"]}
    for n in (2, 100):
        for key in ("claw_evaluate", "claw_evaluate_unseen", "claw_check"):
            assert (key, n) in measured
    assert ("claw_execute", 100) in measured  # the 2-rule policy allows nothing
    groups = {r["group"] for r in data["latency"]}
    assert "fsync" in groups
    assert {r["series"] for r in data["latency"] if r["group"] == "fsync"} >= {"claw_check_fsync", "claw_execute_fsync"}
    assert any(c["system"] == "claw-governance" for c in data["crosscheck"])


def test_peers_measured_when_importable(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    _, data, _ = quick_run
    series = {r["series"] for r in data["latency"]}
    for peer, importable in PEERS_IMPORTABLE.items():
        assert bool(data["meta"]["peers"][peer]) == importable, peer
        systems = {c["system"] for c in data["crosscheck"]}
        if importable:
            assert set(PEER_SERIES[peer]) <= series, peer
            assert peer in systems and all(c["agree"] for c in data["crosscheck"])
            assert any(r["peer"] in PEER_SERIES[peer] for r in data["ratios"])
        else:
            assert not set(PEER_SERIES[peer]) & series
    if PEERS_IMPORTABLE["agt"]:
        agt = [c for c in data["crosscheck"] if c["system"] == "agt"]
        assert all("fired for 4 of 4" in c["note"] for c in agt)


# ------------------------------------------------------------------------------- workloads, without timing


@pytest.mark.parametrize("n", [2, 10, 100, 1000])
def test_workload_shape(n: int) -> None:
    w = workloads.build_workload(n)
    assert len(w.rules) == n
    assert len({(r.effect, r.kind, r.value, r.conditional) for r in w.rules}) == n
    assert all(q.expected != "escalate" for q in w.timed)
    assert [q.expected for q in w.checked if q.label == "refund > 500"] == ["escalate"] * 4
    labels = {q.label for q in w.timed}
    assert {"deny destructive verb", "refund <= 500", "default deny"} <= labels
    assert w.allowed, "every rule count has allowed calls, so execute() is timed at each (issue 15: at 2 rules)"
    if n >= 100:
        assert {"allow exact", "allow prefix glob", "allow suffix glob", "deny beats allow"} <= labels
        assert any(q.expected == "allow" for q in w.timed) and any(q.expected == "deny" for q in w.timed)


def test_renderings_agree_with_claw_governance(tmp_path: Path) -> None:
    from claw_governance.policy import load_policy_set

    w = workloads.build_workload(100)
    path = tmp_path / "p.yaml"
    path.write_text(workloads.claw_policy_yaml(w.rules))
    policy = load_policy_set(path)
    from claw_governance import ToolCall

    for q in w.checked:
        assert policy.decide(ToolCall(workloads.AGENT_ID, q.action, q.args)).outcome.value == q.expected, q
    agt = workloads.agt_policy_yaml(w.rules)
    assert "amount.value > 500" in agt and "require_approval" in agt and "default_action: deny" in agt
    cedar = workloads.cedar_policies(w.rules)
    assert cedar.count(";") == n_rules(cedar) == 100


def n_rules(cedar: str) -> int:
    """Cedar policies in a text (one per line)."""
    return sum(1 for line in cedar.splitlines() if line.startswith(("permit", "forbid")))


def test_floor_benchmark_runs_and_reports_every_floor(tmp_path: Path) -> None:
    out = tmp_path / "floor.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "bench_floor.py"),
            *("--calls", "40", "--rounds", "1", "--seconds", "0.3", "--fsync-cycles", "20", "--json", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    for n in (2, 100):
        row = result["governed_call"][f"rules_{n}"]
        assert row["execute"] > 0 and row["evaluate"] > 0 and row["floor_two_entries"] > 0
        assert row["floor_execute"] == pytest.approx(row["evaluate"] + row["floor_two_entries"], abs=0.02)
        if PEERS_IMPORTABLE["agt"]:
            assert row["ratio_at_floor"] > 0 and row["ratio_at_promised_floor"] > 0
    steps = result["entry_steps_us"]
    assert steps["sum: one entry"] == pytest.approx(sum(v for k, v in steps.items() if k != "sum: one entry"), abs=0.02)
    assert len(result["our_steps_us"]) == 6 and all(v > 0 for v in result["our_steps_us"].values())
    fsync = result["fsync"]
    assert fsync["write_fdatasync_p50_us"] > 0 and fsync["group_commit"]["entries"] > 0
    assert all(v["entries_per_s"] > 0 for v in fsync["minimal_group_commit"].values())
    assert "the least group commit in CPython" in proc.stdout
