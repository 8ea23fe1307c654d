"""The floor under each speed goal of issue 15, measured beside the real thing and the peer in one run.

Three goals of issue 15 depend on costs this code does not choose. For each, this script measures, on this
machine and in the same run, what the governed call costs, what the least work DESIGN.md asks for costs
(written as plainly as CPython allows, ``floor.py``), and the system calls and hashes that work is made of:

1. ``execute()`` against AGT ``govern()`` with audit on, allowed calls, 2 and 100 rules (goals 5x and 20x).
   The floor of a governed call is the policy decision alone (``evaluate()``) plus two SHA-256-chained
   entries written to the OS under a lock (the decision before the tool runs, the outcome after: DESIGN.md).
   ``AGT / floor`` is the best ratio any implementation of this design in CPython could show.
2. fsync group commit from 8 threads (goal 20,000 entries/s). A thread waits for its own entry to be durable,
   so one commit carries at most 8 entries: the ceiling is ``8 / (one write + fdatasync)`` on this disk. The
   least group commit CPython allows (``floor.minimal_group_commit``: a line, a lock, an fdatasync, no JSON,
   hashing or checks) runs beside the trail's, with and without gathering.
3. LangChain ``tool.invoke`` overhead (goal < 10 %): ``bench_langchain.py`` prints its own floor (the
   adapter over a no-op governor plus the two entries); this script does not repeat it.

Series of one comparison are sampled in interleaved rounds (A, B, C, A, B, C, ...), per call with
``perf_counter_ns``, the garbage collector off inside each round, so noise hits them alike.

    python benchmarks/bench_floor.py [--calls 3000] [--rounds 5] [--json benchmarks/results/floor.json]
"""

from __future__ import annotations

import argparse
import fcntl
import gc
import hashlib
import json
import os
import select
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # benchmarks/ is not a package
    sys.path.insert(0, str(HERE))
from bench_audit import bench_group_commit  # noqa: E402
from floor import floor_entries, minimal_group_commit  # noqa: E402
from peers import agt as agt_peer  # noqa: E402
from workloads import AGENT_ID, Query, build_workload, claw_policy_yaml  # noqa: E402

from claw_governance import CallOutcome, Governor  # noqa: E402
from claw_governance.audit.redaction import DEFAULT_REDACTOR  # noqa: E402
from claw_governance.audit.watch import open_watch  # noqa: E402
from claw_governance.model import AuditEvent  # noqa: E402

LINE = b'{"action":"tool:lookup","agent_id":"bench-agent",' + b'"x":"' + b"a" * 480 + b'"}\n'  # ~560 bytes


def _interleaved(series: dict[str, Callable[[int], Any]], calls: int, rounds: int) -> dict[str, list[float]]:
    """Per-call samples in µs for every series, round after round, each round one block per series."""
    samples: dict[str, list[float]] = {name: [] for name in series}
    clock = time.perf_counter_ns
    for fn in series.values():  # warm-up: caches, memos, the first segment
        for i in range(300):
            fn(i)
    gc.collect()
    gc.freeze()
    for _ in range(rounds):
        for name, fn in series.items():
            out = samples[name]
            gc.disable()
            try:
                for i in range(calls):
                    t0 = clock()
                    fn(i)
                    out.append((clock() - t0) / 1000)
            finally:
                gc.enable()
    return samples


def _batched(fn: Callable[[], Any], n: int = 20_000, rounds: int = 5) -> float:
    """µs per operation for sub-microsecond steps: the median over ``rounds`` of a timed loop of ``n``."""
    per: list[float] = []
    for _ in range(rounds):
        gc.disable()
        try:
            t0 = time.perf_counter_ns()
            for _ in range(n):
                fn()
            per.append((time.perf_counter_ns() - t0) / n / 1000)
        finally:
            gc.enable()
    return statistics.median(per)


def governed_call(calls: int, rounds: int) -> dict[str, Any]:
    """Goal 1: execute() vs AGT vs the floor, at 2 and 100 rules."""
    have_agt = agt_peer.available() is not None
    return {"agt": have_agt, **{f"rules_{n}": _governed_call_at(n, calls, rounds, have_agt) for n in (2, 100)}}


def _governed_call_at(n: int, calls: int, rounds: int, have_agt: bool) -> dict[str, float]:
    w = build_workload(n)
    allowed: list[Query] = w.allowed
    k = len(allowed)
    with tempfile.TemporaryDirectory() as tmp, floor_entries() as floor:
        base = Path(tmp)
        (base / "policies").mkdir()
        (base / "policies" / "bench.yaml").write_text(claw_policy_yaml(w.rules))
        with Governor(base / "policies", base / "audit", base / "identities", load_entry_points=False) as gov:
            agent = gov.agent(AGENT_ID)

            def noop(ctx: Any) -> None:
                return None

            def execute(i: int) -> None:
                q = allowed[i % k]
                agent.execute(q.action, q.args, noop)

            def evaluate(i: int) -> None:
                q = allowed[i % k]
                agent.evaluate(q.action, q.args)

            series: dict[str, Callable[[int], Any]] = {
                "execute": execute,
                "evaluate": evaluate,
                "floor_two_entries": floor,
            }
            if have_agt:
                peer = agt_peer.AGTGovern(w, audit=True)

                def agt(i: int) -> None:
                    peer.call(allowed[i % k])

                series["agt_govern_audit_on_allowed"] = agt
            samples = _interleaved(series, calls, rounds)
    row = {name: round(statistics.median(values), 2) for name, values in samples.items()}
    row["floor_execute"] = round(row["evaluate"] + row["floor_two_entries"], 2)
    if have_agt:
        peer_p50 = row["agt_govern_audit_on_allowed"]
        row["ratio_execute"] = round(peer_p50 / row["execute"], 1)
        row["ratio_at_floor"] = round(peer_p50 / row["floor_execute"], 1)
    return row


def our_steps(n: int = 2) -> dict[str, float]:
    """Where our ``execute()`` spends its time, one public step at a time (µs p50, allowed calls)."""
    w = build_workload(n)
    query = w.allowed[0]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "policies").mkdir()
        (base / "policies" / "bench.yaml").write_text(claw_policy_yaml(w.rules))
        with Governor(base / "policies", base / "audit", base / "identities", load_entry_points=False) as gov:
            agent = gov.agent(AGENT_ID)  # creates the identity: a known agent, as in production
            call = gov.make_call(AGENT_ID, query.action, query.args)
            decision = gov.before_call(call)
            assert decision.allowed, decision.reason
            outcome = CallOutcome(True, None, None, 0.01)
            event = AuditEvent(
                "policy_decision",
                AGENT_ID,
                query.action,
                query.args,
                {"outcome": "allow", "allowed": True, "reason": decision.reason},
                decision.policy_hash,
                None,
                frozenset(),
                True,
                {"call_id": call.call_id, "framework": "python"},
            )
            series: dict[str, Callable[[int], Any]] = {
                "make_call (build the ToolCall)": lambda i: gov.make_call(AGENT_ID, query.action, query.args),
                "evaluate (the policy decision alone)": lambda i: agent.evaluate(query.action, query.args),
                "before_call (identity, trust, policy, the decision entry)": lambda i: gov.before_call(call),
                "after_call (trust +1, the outcome entry)": lambda i: gov.after_call(call, decision, outcome),
                "one audit entry (AuditTrail.append)": lambda i: gov.audit.append(event),
                "execute (all of it, and the tool)": lambda i: agent.execute(query.action, query.args, _noop),
            }
            samples = _interleaved(series, 4000, 3)
    return {name: round(statistics.median(values), 2) for name, values in samples.items()}


def _noop(ctx: Any) -> None:
    return None


def entry_steps() -> dict[str, float]:
    """What one audit entry is made of, each step alone (µs per operation)."""
    steps: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        fd = os.open(base / "segment.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        lock_fd = os.open(base / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        watch = open_watch(base)
        lock = threading.Lock()
        try:

            def flock_pair() -> None:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
                fcntl.flock(lock_fd, fcntl.LOCK_UN)

            def thread_lock() -> None:
                with lock:
                    pass

            steps["thread lock + unlock"] = _batched(thread_lock)
            steps["flock(LOCK_EX) + flock(LOCK_UN)"] = _batched(flock_pair)
            steps["lseek(SEEK_END): did another process append?"] = _batched(lambda: os.lseek(fd, 0, os.SEEK_END))
            if watch is not None:
                watch.watch(base / "segment.jsonl")
                steps["epoll_wait(0) on the inotify watch: was the segment removed?"] = _batched(lambda: watch.ready(0))
            else:
                epoll = select.epoll(1)
                steps["epoll_wait(0) (no inotify here)"] = _batched(lambda: epoll.poll(0))
            steps["write(2) of one ~560-byte line (O_APPEND)"] = _batched(lambda: os.write(fd, LINE), n=10_000)
            leaf = hashlib.sha256(b"\x00")

            def hashes() -> None:
                hashlib.sha256(LINE).hexdigest()
                leaf.copy().update(LINE)

            steps["SHA-256 chain hash + Merkle leaf of the line"] = _batched(hashes)
            head = {
                "action": "tool:lookup",
                "agent_id": "bench-agent",
                "context": {"customer_id": 7, "fields": ["name", "email"]},
                "decision": {"outcome": "allow", "allowed": True, "reason": "Allowed by rule tool:lookup"},
                "details": {"call_id": "call_7", "framework": "python"},
                "policy_hash": "0" * 64,
            }
            steps["orjson.dumps of the entry, sorted keys (RFC 8785 order)"] = _batched(
                lambda: orjson.dumps(head, option=orjson.OPT_SORT_KEYS)
            )
            args = {"customer_id": 7, "fields": ["name", "email"]}
            steps["secret redaction of the arguments (must precede the write)"] = _batched(
                lambda: DEFAULT_REDACTOR.for_audit(args)
            )
            steps["time.time()"] = _batched(time.time)
        finally:
            os.close(fd)
            os.close(lock_fd)
            if watch is not None:
                watch.close()
    steps["sum: one entry"] = round(sum(steps.values()), 2)
    return {k: round(v, 3) for k, v in steps.items()}


def fsync_ceiling(cycles: int, threads: int, seconds: float) -> dict[str, Any]:
    """Goal 2: one write + fdatasync on this disk, the ceiling it sets, and the trail's group commit."""
    with tempfile.TemporaryDirectory() as tmp:
        fd = os.open(Path(tmp) / "sync.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            for _ in range(20):
                os.write(fd, LINE)
                os.fdatasync(fd)
            samples = []
            for _ in range(cycles):
                t0 = time.perf_counter_ns()
                os.write(fd, LINE)
                os.fdatasync(fd)
                samples.append((time.perf_counter_ns() - t0) / 1000)
        finally:
            os.close(fd)
        cycle = statistics.median(samples)
        group = bench_group_commit(Path(tmp) / "audit", threads, seconds)
        minimal = {
            f"gather_{gather * 1e6:.0f}us": minimal_group_commit(Path(tmp), threads, seconds, gather)
            for gather in (0.0, 0.0002, 0.0005)
        }
    return {
        "write_fdatasync_p50_us": round(cycle, 1),
        "write_fdatasync_min_us": round(min(samples), 1),
        "ceiling_entries_per_s": round(threads / cycle * 1e6),
        "threads": threads,
        "group_commit": group,
        "minimal_group_commit": minimal,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="samples per series per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fsync-cycles", type=int, default=500)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="group commit run length")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if agt_peer.available() is None:
        print("AGT not installed (pip install -r benchmarks/requirements.txt): ratios are left out", file=sys.stderr)
    results: dict[str, Any] = {"load_start": os.getloadavg()[0]}
    results["governed_call"] = governed_call(args.calls, args.rounds)
    results["entry_steps_us"] = entry_steps()
    results["our_steps_us"] = our_steps()
    entry = results["entry_steps_us"]["sum: one entry"]
    for n in (2, 100):
        row = results["governed_call"][f"rules_{n}"]
        # every step the product promises, none of its Python: the decision, then two entries made of the
        # measured system calls, hashes, serialisation and redaction
        row["floor_with_every_promised_step"] = round(row["evaluate"] + 2 * entry, 2)
        if "agt_govern_audit_on_allowed" in row:
            row["ratio_at_promised_floor"] = round(
                row["agt_govern_audit_on_allowed"] / row["floor_with_every_promised_step"], 1
            )
    results["fsync"] = fsync_ceiling(args.fsync_cycles, args.threads, args.seconds)
    results["load_end"] = os.getloadavg()[0]

    print(f"load {results['load_start']:.1f} -> {results['load_end']:.1f}")
    for n in (2, 100):
        row = results["governed_call"][f"rules_{n}"]
        print(f"{n} rules, p50 us: " + ", ".join(f"{k} {v}" for k, v in row.items()))
    print("our execute(), step by step (us p50, 2 rules):")
    for step, us in results["our_steps_us"].items():
        print(f"  {us:8.2f}  {step}")
    print("one audit entry, step by step (us per operation):")
    for step, us in results["entry_steps_us"].items():
        print(f"  {us:8.3f}  {step}")
    f = results["fsync"]
    print(
        f"fsync: write + fdatasync p50 {f['write_fdatasync_p50_us']} us (min {f['write_fdatasync_min_us']}); "
        f"{f['threads']} threads can commit at most {f['ceiling_entries_per_s']:,} entries/s; the trail's group "
        f"commit did {f['group_commit']['entries_per_s']:,.0f}/s ({f['group_commit']['entries_per_fsync']} per fsync)"
    )
    print(
        "  the least group commit in CPython (floor.minimal_group_commit): "
        + ", ".join(
            f"{k}: {v['entries_per_s']:,}/s ({v['entries_per_fsync']} per fsync)"
            for k, v in f["minimal_group_commit"].items()
        )
    )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
