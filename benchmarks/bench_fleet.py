"""Fleet mode, measured: the PostgreSQL state store against SQLite, the audit sink, grants under contention.

    python benchmarks/bench_fleet.py [--pg-url URL] [--n 20000] [--quick] [--json FILE]

In one run (same machine, same policy, same workload):

1. ``execute`` p50/p99 with the SQLite state store and with the PostgreSQL one (the hot path reads caches
   only, so the two should match), plus the cost of what issue 17 added to every call: the decision
   counters (metrics) and the tracing check, each measured alone;
2. audit replication: the throughput of one ``AuditReplicator`` round over a trail of N entries (entries/s)
   and the lag while a governor appends at full speed with the sink running (every 0.2 s);
3. grant consumption under contention: P processes ("hosts", each its own connection pool) race to consume
   G approved grants; each grant must be consumed exactly once; consumptions per second.

PostgreSQL: ``--pg-url`` (default CLAW_TEST_POSTGRES_URL or postgresql://postgres@127.0.0.1:5432/test); the
run works in a schema of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # benchmarks/ is not a package
    sys.path.insert(0, str(HERE))
from timing import interleaved, measure  # noqa: E402

from claw_governance import Governor  # noqa: E402
from claw_governance.model import Escalation, EscalationStatus  # noqa: E402

POLICY = """\
agent: bench
permissions:
  allow: ["read:*"]
trust: {max_score: 1000000}
"""
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}', safe='')}"


def governor(root: Path, **settings: Any) -> Governor:
    (root / "policies").mkdir(parents=True, exist_ok=True)
    (root / "policies" / "bench.yaml").write_text(POLICY)
    return Governor(root / "policies", root / "audit", root / "identities", load_entry_points=False, **settings)


def bench_execute(tmp: Path, url: str, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    args = {"path": "/srv/report.txt", "lines": 20}
    govs = {"sqlite": governor(tmp / "exec-sqlite"), "postgresql": governor(tmp / "exec-pg", state_url=url)}
    try:
        agents = {k: g.agent("bench") for k, g in govs.items()}
        # interleaved rounds, so both stores see the same machine load
        series: dict[str, Callable[[], object]] = {
            kind: lambda a=agent: a.execute("read:file", args, lambda ctx: "ok") for kind, agent in agents.items()
        }
        for kind, figures in interleaved(series, n, 4).items():
            out[f"execute_{kind}"] = figures
        gov = govs["sqlite"]
        counters = gov.decision_counters
        out["metrics_decided"] = measure(lambda: counters.decided("bench", "allow", 1e-5), n, warmup=500)
        out["tracing_enabled_check"] = measure(gov.tracer.enabled, n, warmup=500)
        out["trust_pg"] = govs["postgresql"].trust_score("bench")
    finally:
        for g in govs.values():
            g.close()
    return out


def bench_replication(tmp: Path, url: str, n: int, seconds: float) -> dict[str, Any]:
    from claw_governance.audit.sink import AuditReplicator

    out: dict[str, Any] = {}
    root = tmp / "repl"
    with governor(root) as gov:
        agent = gov.agent("bench")
        for i in range(n // 2):  # a decision and an outcome per call: n entries
            agent.execute("read:file", {"i": i}, lambda ctx: "ok")
    entries = sum(len(p.read_bytes().splitlines()) for p in (root / "audit").glob("segment-*.jsonl"))
    sink = AuditReplicator(root / "audit", url)
    t0 = time.perf_counter()
    copied = sink.sync()
    elapsed = time.perf_counter() - t0
    sink.close()
    assert copied == entries, (copied, entries, sink.last_error)
    out["backfill"] = {"entries": entries, "seconds": round(elapsed, 3), "entries_per_s": round(entries / elapsed)}

    # under load: a governor appending as fast as it can, its sink copying every 0.2 s
    lags: list[tuple[int, float]] = []
    with governor(tmp / "repl-live", audit_sink=url, audit_sink_interval=0.2) as gov:
        agent = gov.agent("bench")
        stop = threading.Event()
        assert gov.audit_sink is not None

        def sample() -> None:
            while not stop.wait(0.05):
                lag = gov.audit_sink.lag()
                lags.append((lag["entries"], lag["seconds"]))

        sampler = threading.Thread(target=sample)
        sampler.start()
        calls = 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            agent.execute("read:file", {"i": calls}, lambda ctx: "ok")
            calls += 1
        produced_at = time.perf_counter()
        while gov.audit_sink.lag()["entries"] and time.perf_counter() - produced_at < 30:
            time.sleep(0.01)
        caught_up = time.perf_counter() - produced_at
        stop.set()
        sampler.join()
        copied = gov.audit_sink.copied
    lag_entries = sorted(e for e, _ in lags) or [0]
    lag_seconds = sorted(s for _, s in lags) or [0.0]
    out["under_load"] = {
        "seconds": seconds,
        "calls": calls,
        "entries_per_s_appended": round(2 * calls / seconds),
        "copied": copied,
        "lag_entries_p50": lag_entries[len(lag_entries) // 2],
        "lag_entries_max": lag_entries[-1],
        "lag_seconds_p50": lag_seconds[len(lag_seconds) // 2],
        "lag_seconds_max": lag_seconds[-1],
        "catch_up_after_load_s": round(caught_up, 3),
    }
    return out


def _consumer(url: str, grants: list[tuple[str, str]], start: Any, results: Any) -> None:
    from claw_governance.state.postgres import PostgresStateStore

    store = PostgresStateStore(url)
    got: list[str] = []
    start.wait()
    t0 = time.perf_counter()
    for _ in range(3):  # each host tries every grant, three times over
        for _eid, args_hash in grants:
            won = store.consume_grant("bench", "refund", args_hash, time.time())
            if won:
                got.append(won)
    results.put((got, time.perf_counter() - t0))
    store.close()


def bench_grants(url: str, processes: int, n_grants: int) -> dict[str, Any]:
    from claw_governance.state.postgres import PostgresStateStore

    store = PostgresStateStore(url)
    grants = []
    now = time.time()
    for i in range(n_grants):
        eid = uuid.uuid4().hex
        store.put_escalation(
            Escalation(eid, "bench", "refund", f"h{i}", {}, None, "bench", EscalationStatus.PENDING, now, now + 3600)
        )
        store.resolve_escalation(eid, EscalationStatus.APPROVED, "alice", "ok", now, now + 3600)
        grants.append((eid, f"h{i}"))
    store.close()
    ctx = mp.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_consumer, args=(url, grants, start, results)) for _ in range(processes)]
    for p in procs:
        p.start()
    time.sleep(2.0)  # every process connected
    t0 = time.perf_counter()
    start.set()
    outcomes = [results.get(timeout=300) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join(60)
    won = [eid for got, _ in outcomes for eid in got]
    assert sorted(won) == sorted(e for e, _ in grants), "a grant was consumed twice or not at all"
    attempts = processes * 3 * n_grants
    return {
        "processes": processes,
        "grants": n_grants,
        "attempts": attempts,
        "consumed": len(won),
        "consumed_exactly_once": True,
        "wall_s": round(wall, 3),
        "attempts_per_s": round(attempts / wall),
        "per_host_consumed": [len(g) for g, _ in outcomes],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg-url", default=os.environ.get("CLAW_TEST_POSTGRES_URL") or DEFAULT_URL)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--quick", action="store_true", help="tiny samples (seconds): for the test suite")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    opts = parser.parse_args()
    n = 400 if opts.quick else opts.n
    import psycopg

    schema = f"claw_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(opts.pg_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    url = with_schema(opts.pg_url, schema)
    results: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results["execute"] = bench_execute(Path(tmp), url, n)
            results["replication"] = bench_replication(
                Path(tmp), url, 1000 if opts.quick else 50000, 1.0 if opts.quick else 5.0
            )
            results["grants"] = bench_grants(url, 2 if opts.quick else 4, 20 if opts.quick else 200)
    finally:
        with psycopg.connect(opts.pg_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
    text = json.dumps(results, indent=2)
    print(text)
    if opts.json is not None:
        opts.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
