"""Several threads and processes on one trail; a writer killed with SIGKILL mid-stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from claw_governance.audit import open_trail
from claw_governance.audit.layout import list_segments
from claw_governance.audit.reader import TrailReader
from claw_governance.config import GovernorConfig
from claw_governance.model import AuditEvent
from claw_governance.state import MemoryStateStore

WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from claw_governance.audit import open_trail
    from claw_governance.config import GovernorConfig
    from claw_governance.model import AuditEvent
    from claw_governance.state import MemoryStateStore

    folder, state, count, rotation = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    trail = open_trail(GovernorConfig(audit_path=folder, state_path=state, audit_rotation_size_mb=rotation,
                                      audit_checkpoint_interval=500), MemoryStateStore())
    print("ready", flush=True)
    tag = sys.argv[5]
    for i in range(count):
        trail.append(AuditEvent("policy_decision", tag, "write:x", context={"i": i, "pad": "x" * 200},
                                decision={"outcome": "allow", "allowed": True}))
    trail.close()
""")


def spawn(folder: Path, state: Path, count: int, rotation: float, tag: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(folder), str(state), str(count), str(rotation), tag],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_four_processes_times_5000_entries_give_one_valid_chain(tmp_path: Path) -> None:
    folder, state = tmp_path / "audit", tmp_path / "state"
    procs = [spawn(folder, state, 5000, 0.5, f"proc-{n}") for n in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    report = TrailReader(folder, state_path=state).verify()
    assert report.valid, report.errors[:3]
    entries = list(TrailReader(folder).entries())
    decisions = [e for e in entries if e["type"] == "policy_decision"]
    assert len(decisions) == 20000
    for n in range(4):
        mine = [e["context"]["i"] for e in decisions if e["agent_id"] == f"proc-{n}"]
        assert mine == list(range(5000))  # each writer's entries in its own order, none lost
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    for _, path in list_segments(folder):
        for line in path.read_bytes().splitlines():
            orjson.loads(line)  # no torn or interleaved line anywhere
    assert len(list_segments(folder)) > 1  # rotation happened while four processes wrote


def test_threads_share_one_chain(tmp_path: Path) -> None:
    trail = open_trail(GovernorConfig(audit_path=tmp_path / "audit", audit_rotation_size_mb=0.05), MemoryStateStore())

    def worker(n: int) -> None:
        for i in range(300):
            trail.append(AuditEvent("agent_action", f"t{n}", "x", context={"i": i}))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = trail.verify()
    assert report.valid and report.entries >= 1800
    trail.close()


def test_sigkill_mid_stream_leaves_a_verifiable_trail_and_the_torn_tail_is_repaired(tmp_path: Path) -> None:
    folder, state = tmp_path / "audit", tmp_path / "state"
    proc = spawn(folder, state, 10_000_000, 100.0, "victim")
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(0.4)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    segment = list_segments(folder)[-1][1]
    # Make the death land mid-line whatever the timing was: a partial entry like a write cut short.
    with open(segment, "ab") as fh:
        fh.write(b'{"action":"write:x","agent_id":"victim","context":{"i":')
    before = TrailReader(folder, state_path=state).verify()
    assert before.valid and before.entries > 10
    assert any("incomplete last line" in w for w in before.warnings)

    trail = open_trail(GovernorConfig(audit_path=folder, state_path=state), MemoryStateStore())
    repairs = [e for e in trail.entries() if e["type"] == "repair"]
    assert len(repairs) == 1 and repairs[0]["details"]["bytes"] > 0
    quarantined = folder / repairs[0]["details"]["quarantine"]
    assert quarantined.read_bytes().startswith(b'{"action":"write:x"')
    seq = trail.append(AuditEvent("identity", "someone", details={"event": "after the crash"}))
    assert seq == before.last_seq + 2
    after = trail.verify()
    assert after.valid and not after.warnings and after.entries == before.entries + 2
    assert trail.health()["repairs"] == [quarantined.name]
    trail.close()


def test_a_second_process_repairs_a_torn_tail_it_finds_under_the_lock(tmp_path: Path) -> None:
    folder = tmp_path / "audit"
    trail = open_trail(GovernorConfig(audit_path=folder), MemoryStateStore())
    trail.append(AuditEvent("identity", "a"))
    with open(list_segments(folder)[-1][1], "ab") as fh:  # another writer died mid-line
        fh.write(b'{"partial":')
    trail.append(AuditEvent("identity", "b"))
    kinds = [e["type"] for e in trail.entries()]
    assert kinds == ["identity", "repair", "identity"]
    assert trail.verify().valid
    trail.close()


FSYNC_WRITER = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    from claw_governance.audit import open_trail
    from claw_governance.config import GovernorConfig
    from claw_governance.model import AuditEvent
    from claw_governance.state import MemoryStateStore

    folder, state = Path(sys.argv[1]), Path(sys.argv[2])
    trail = open_trail(GovernorConfig(audit_path=folder, state_path=state, durability="fsync",
                                      audit_rotation_size_mb=0.2), MemoryStateStore())
    out = threading.Lock()
    print("ready", flush=True)

    def worker(n):
        for i in range(10**9):
            seq = trail.append(AuditEvent("policy_decision", f"t{n}", "write:x", context={"i": i}))
            with out:  # acknowledged: append returned, so an fsync covering seq has completed
                sys.stdout.write(f"{seq}\\n")
                sys.stdout.flush()

    for n in range(8):
        threading.Thread(target=worker, args=(n,), daemon=True).start()
    threading.Event().wait()
""")


def test_sigkill_during_fsync_group_commit_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    folder, state = tmp_path / "audit", tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-c", FSYNC_WRITER, str(folder), str(state)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    acknowledged = {int(line) for line in out.splitlines() if line.strip().isdigit()}
    assert len(acknowledged) > 20
    stored = {e["seq"] for e in TrailReader(folder, state_path=state).entries()}
    assert acknowledged <= stored
    report = TrailReader(folder, state_path=state).verify()
    assert report.valid, report.errors[:3]


def test_fsync_append_returns_only_after_an_fsync_that_began_after_its_write(tmp_path: Path, monkeypatch: Any) -> None:
    # A spy around the real fsync records, for each completed fsync, the seq written when it began: every
    # entry up to there is covered by it. Each append must return only once such an fsync covers its seq.
    from claw_governance.audit import groupcommit

    trail = open_trail(
        GovernorConfig(audit_path=tmp_path / "audit", durability="fsync", audit_rotation_size_mb=0.05),
        MemoryStateStore(),
    )
    covered: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        began = trail._written_seq
        real_fsync(fd)
        covered.append(began)

    monkeypatch.setattr(groupcommit.os, "fsync", spy)
    late: list[int] = []

    def worker(n: int) -> None:
        for i in range(60):
            seq = trail.append(AuditEvent("agent_action", f"t{n}", "x", context={"i": i}))
            if not covered or max(covered) < seq:
                late.append(seq)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not late
    assert trail._commit.fsyncs < 480  # grouped: fewer fsyncs than entries
    assert trail.verify().valid
    trail.close()


def test_a_failed_fsync_fails_every_caller_it_would_have_covered(tmp_path: Path, monkeypatch: Any) -> None:
    import errno

    from claw_governance.audit import groupcommit
    from claw_governance.errors import AuditError

    trail = open_trail(GovernorConfig(audit_path=tmp_path / "audit", durability="fsync"), MemoryStateStore())
    trail.append(AuditEvent("agent_action", "a", "x"))

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(groupcommit.os, "fsync", broken)
    failures: list[str] = []

    def worker() -> None:
        try:
            trail.append(AuditEvent("agent_action", "a", "x"))
        except AuditError as exc:
            failures.append(str(exc))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(failures) == 6 and all("cannot fsync" in f and "Input/output" in f for f in failures)
    assert "Input/output" in str(trail.health()["last_error"])
    monkeypatch.undo()
    trail.append(AuditEvent("agent_action", "a", "x"))  # the disk is back: appends are acknowledged again
    trail.close()
