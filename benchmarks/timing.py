"""The timing loop of ``bench_session.py`` and ``bench_fleet.py``: per-call samples with ``perf_counter_ns``
after a warm-up, and interleaved rounds (A, B, C, A, B, C, ...) so every series sees the same machine load."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def measure(fn: Callable[[], object], n: int, warmup: int = 200) -> dict[str, float]:
    """p50, p99 and mean in µs of ``n`` calls of ``fn``, each timed alone, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        fn()
        samples.append(clock() - t0)
    samples.sort()
    return {
        "p50_us": samples[len(samples) // 2] / 1000,
        "p99_us": samples[int(len(samples) * 0.99)] / 1000,
        "mean_us": statistics.fmean(samples) / 1000,
    }


def interleaved(
    series: dict[str, Callable[[], object]], n: int, rounds: int, warmup: int = 200
) -> dict[str, dict[str, float]]:
    """Every series measured ``rounds`` times, round after round in the order given, ``n // rounds`` calls a
    round; the figures of each series are the median over its rounds."""
    results: dict[str, list[dict[str, float]]] = {name: [] for name in series}
    for _ in range(rounds):
        for name, fn in series.items():
            results[name].append(measure(fn, n // rounds, warmup))
    return {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for name, rs in results.items()}
