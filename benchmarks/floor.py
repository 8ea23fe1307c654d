"""The least work DESIGN.md asks of a governed call, written as plainly as CPython allows: a lower bound that
``bench_langchain.py`` and ``bench_floor.py`` put beside the real thing."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson


@contextlib.contextmanager
def floor_entries() -> Iterator[Callable[[int], None]]:
    """The least work DESIGN asks of any governed call: two entries (the decision before the tool runs, the
    outcome after), each serialised with sorted keys, SHA-256-chained to the one before and written to the OS
    under a thread lock and an flock. Nothing else: no identity, trust, policy, redaction, checkpoint, rotation
    or check for other writers. Not a trail (it is never read); a lower bound for one."""
    with tempfile.TemporaryDirectory() as tmp:
        fd = os.open(Path(tmp) / "floor.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        lock_fd = os.open(Path(tmp) / "floor.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            yield chained_appends(fd, lock_fd)
        finally:
            os.close(fd)
            os.close(lock_fd)


def chained_appends(fd: int, lock_fd: int) -> Callable[[int], None]:
    """A function of the call number that appends its two entries to ``fd`` (see _floor_entries)."""
    lock = threading.Lock()
    head = {"seq": 0, "prev": "0" * 64}

    def append(fields: dict[str, Any]) -> None:
        with lock:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            try:
                head["seq"] += 1
                fields.update(seq=head["seq"], prev_hash=head["prev"], timestamp=time.time())
                body = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
                digest = hashlib.sha256(body).hexdigest()
                os.write(fd, body[:-1] + b',"hash":"' + digest.encode() + b'"}\n')
                head["prev"] = digest
            finally:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)

    def entries(i: int) -> None:
        base = {"agent_id": "bench-agent", "action": "tool:lookup", "policy_hash": "0" * 64}
        append(
            {
                **base,
                "type": "policy_decision",
                "context": {"customer_id": i, "fields": ["name", "email"]},
                "decision": {"outcome": "allow", "allowed": True, "reason": "Allowed by rule tool:lookup"},
                "details": {"call_id": f"call_{i}", "framework": "langchain"},
            }
        )
        append(
            {
                **base,
                "type": "agent_action",
                "context": None,
                "decision": {"outcome": "allow", "allowed": True},
                "details": {
                    "call_id": f"call_{i}",
                    "framework": "langchain",
                    "output": "customer",
                    "error": None,
                    "success": True,
                    "duration_ms": 0.01,
                },
            }
        )

    return entries


def minimal_group_commit(folder: Path, threads: int, seconds: float, gather: float = 0.0) -> dict[str, float]:
    """The least group commit CPython allows: ``threads`` threads each append a ~560-byte line under a lock,
    then wait for an fdatasync that covers it; the first waiter that finds none in flight does it (after
    waiting up to ``gather`` seconds for ``threads`` entries to be pending). No JSON, hashing, redaction or
    checks: a lower bound for ``durability="fsync"``, not a trail. Returns entries/s and entries per fsync."""
    line = b'{"x":"' + b"a" * 552 + b'"}\n'
    fd = os.open(folder / "group.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    write_lock, cond = threading.Lock(), threading.Condition()
    state = {"written": 0, "synced": 0, "leading": 0, "fsyncs": 0}
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def worker(n: int) -> None:
        while time.perf_counter() < stop:
            with write_lock:
                os.write(fd, line)
                state["written"] += 1
                seq = state["written"]
            with cond:
                while state["synced"] < seq and state["leading"]:
                    cond.wait()
                if state["synced"] >= seq:
                    counts[n] += 1
                    continue
                state["leading"] = 1
            deadline = time.perf_counter() + gather
            while gather and state["written"] - state["synced"] < threads and time.perf_counter() < deadline:
                time.sleep(0)
            target = state["written"]
            os.fdatasync(fd)
            with cond:
                state["synced"] = max(state["synced"], target)
                state["fsyncs"] += 1
                state["leading"] = 0
                cond.notify_all()
            counts[n] += 1

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    os.close(fd)
    return {
        "entries_per_s": round(sum(counts) / elapsed),
        "entries_per_fsync": round(sum(counts) / max(1, state["fsyncs"]), 1),
    }
