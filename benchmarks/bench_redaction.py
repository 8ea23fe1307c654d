"""Redaction cost: ``execute`` p50 for a typical call, the redactor per string, and worst cases (issue 13).

    .venv/bin/python benchmarks/bench_redaction.py            # prints one JSON document

Runs against whichever ``claw_governance`` is importable, so the same script measures an older checkout
(``PYTHONPATH=/path/to/old/checkout``); parts the older code lacks are reported as null.
"""

from __future__ import annotations

import json
import random
import statistics
import string
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from claw_governance import Governor
from claw_governance.audit import redaction

POLICY = 'agent: "*"\npermissions:\n  allow: ["tool:*"]\n'


def p50_us(fn: Callable[[], object], count: int, rounds: int = 5) -> float:
    """Median of per-round medians, in microseconds (rounds absorb noise from other processes)."""
    medians = []
    for _ in range(rounds):
        samples = []
        for _ in range(count):
            start = time.perf_counter_ns()
            fn()
            samples.append(time.perf_counter_ns() - start)
        medians.append(statistics.median(samples) / 1000)
    return round(min(medians), 2)


def once_s(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 4)


def execute_p50() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "p").mkdir()
        (root / "p" / "p.yaml").write_text(POLICY)
        with Governor(root / "p", root / "audit", root / "id", load_entry_points=False) as gov:
            agent = gov.agent("bench-agent")
            args = {"customerId": 12345, "query": "open tickets", "limit": 10}

            def call() -> None:
                agent.execute("tool:lookup", args, lambda a: "3 tickets found")

            for _ in range(2000):
                call()
            return p50_us(call, 3000)


def main() -> None:
    rng = random.Random(4)
    redactor = redaction.Redactor()
    words = ["order", "shipped", "customer", "ticket", "status", "open", "closed", "refund", "the", "a", "is"]
    short = [f"{rng.choice(words)} {rng.randint(0, 99)} {rng.choice(words)}" for _ in range(20000)]
    texts_1k = [" ".join(rng.choice(words) for _ in range(180))[:1024] + str(i) for i in range(3000)]
    secret_1k = [t[:500] + " token=ghp_" + "".join(rng.choices(string.ascii_letters, k=36)) + t[500:] for t in texts_1k]
    it_short, it_1k, it_sec = iter(short * 10), iter(texts_1k * 10), iter(secret_1k * 10)
    out: dict[str, Any] = {"execute_p50_us_3_small_args": execute_p50()}
    out["redact_short_uncached_us"] = p50_us(lambda: redactor({"q": next(it_short)}), 2000)
    out["redact_1kib_text_us"] = p50_us(lambda: redactor({"q": next(it_1k)}), 1000)
    out["redact_1kib_with_secret_us"] = p50_us(lambda: redactor({"q": next(it_sec)}), 1000)
    digits = "7" * 50_000_000
    out["for_audit_50mb_digits_s"] = once_s(lambda: redactor.for_audit({"output": digits}))
    out["redact_text_50mb_digits_s"] = once_s(lambda: redaction.redact_text(digits))
    adversarial = {
        "sk-": "sk-" * 21845,
        "eyJ": "eyJ" * 21845,
        "1-": "1-" * 32768,
        "password=": "password=" * 7281,
        "://": "://a" * 16384,
        "digits+spaces": "1 " * 32768,
    }
    out["adversarial_64kib_s"] = {k: once_s(lambda v=v: redaction.redact_text(v)) for k, v in adversarial.items()}
    try:
        from detect_secrets.core.scan import scan_line
        from detect_secrets.settings import default_settings

        with default_settings():
            out["detect_secrets_scan_line_short_us"] = p50_us(lambda: list(scan_line(next(it_short))), 300, 3)
    except Exception as exc:  # not installed, or an API change: the figure is only a comparison
        out["detect_secrets_scan_line_short_us"] = f"n/a ({type(exc).__name__})"
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
