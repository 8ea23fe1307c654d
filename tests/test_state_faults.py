"""State-store faults and health (issue 13, class 9), with a really corrupted and a really locked SQLite file.

On the previous code: health_check() raised DatabaseError on the corrupted file, and a locked file gave
"Governance error in claw_consume_grant (OperationalError)" after a 10 s wait; these tests failed there.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from claw_governance import Governor, Outcome
from claw_governance.state.faults import StateStoreError, describe
from claw_governance.state.sqlite import SQLiteStateStore

POLICY = """\
agent: bot
permissions:
  allow: ["read:*"]
  escalate: ["refund"]
"""

HOLD_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
db.execute("INSERT INTO trust VALUES ('holder', 1, 0)")
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
db.execute("ROLLBACK")
"""


@pytest.fixture
def governor(tmp_path: Path, make_governor: Callable[..., Governor]) -> Governor:
    return make_governor(POLICY, state_path=tmp_path / "state")


def corrupt(db: Path) -> None:
    """Checkpoint the WAL into the file, then overwrite every page but the header with random bytes."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    size = db.stat().st_size
    with db.open("r+b") as fh:
        fh.seek(100)
        fh.write(os.urandom(size - 100))


def test_corrupted_database_health_reports_down_and_calls_are_denied_with_a_reason(
    governor: Governor, tmp_path: Path
) -> None:
    agent = governor.agent("bot")
    for i in range(200):
        assert agent.check("refund", {"i": i, "pad": "x" * 200}).outcome is Outcome.ESCALATE
    db = tmp_path / "state" / "state.db"
    corrupt(db)
    report = governor.health_check()  # never raises
    assert report["status"] == "down"
    state = report["components"]["state"]
    assert state["status"] == "down" and state["kind"] == "corrupt" and str(db) in state["error"]
    decision = agent.check("refund", {"i": 999})
    assert decision.outcome is Outcome.DENY
    assert decision.reason.startswith(f"state store is corrupt ({db})") and decision.reason.endswith(": denied")
    assert "OperationalError" not in decision.reason and "DatabaseError" not in decision.reason


@pytest.fixture
def lock_holder(governor: Governor, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    governor.agent("bot")  # the schema exists before another process locks the file
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path / "state" / "state.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    yield proc
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)


def test_locked_database_denies_with_an_actionable_reason(
    governor: Governor, tmp_path: Path, lock_holder: subprocess.Popen[str]
) -> None:
    db = tmp_path / "state" / "state.db"
    decision = governor.agent("bot").check("refund", {"amount": 1})  # consume_grant must write
    assert decision.outcome is Outcome.DENY
    assert decision.reason == f"state store is locked by another process ({db}): denied"
    report = governor.health_check()
    assert "locked by another process" in report["faults"]["state"]
    assert report["components"]["state"]["status"] == "ok"  # WAL: reads still work; the fault is listed
    assert governor.agent("bot").check("read:x").allowed  # a call that needs no write is unaffected


def test_busy_timeout_is_bounded_and_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteStateStore(tmp_path / "a.db")
    try:
        assert store.busy_timeout_ms == 2000  # was 10 000: every call stalled 10 s on a locked file
        assert store._db.execute("PRAGMA busy_timeout").fetchone()[0] == 2000
    finally:
        store.close()
    monkeypatch.setenv("CLAW_STATE_BUSY_TIMEOUT_MS", "250")
    store = SQLiteStateStore(tmp_path / "b.db")
    try:
        assert store._db.execute("PRAGMA busy_timeout").fetchone()[0] == 250
    finally:
        store.close()
    monkeypatch.setenv("CLAW_STATE_BUSY_TIMEOUT_MS", "soon")
    with pytest.raises(Exception, match="CLAW_STATE_BUSY_TIMEOUT_MS"):
        SQLiteStateStore(tmp_path / "c.db")


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("database is locked", "locked"),
        ("database table is locked", "locked"),
        ("database disk image is malformed", "corrupt"),
        ("file is not a database", "corrupt"),
        ("attempt to write a readonly database", "readonly"),
        ("Cannot operate on a closed database.", "closed"),
        ("disk I/O error", "io"),
        ("something else", "error"),
    ],
)
def test_fault_texts_name_the_file(message: str, kind: str) -> None:
    fault = describe(sqlite3.OperationalError(message), "/srv/state.db")
    assert isinstance(fault, StateStoreError) and fault.kind == kind
    assert "(/srv/state.db)" in str(fault) and "\n" not in str(fault)


def test_health_check_never_raises_when_a_component_probe_fails(governor: Governor) -> None:
    def broken() -> dict[str, object]:
        raise RuntimeError("probe exploded")

    governor.audit.health = broken  # type: ignore[method-assign]
    report = governor.health_check()
    assert report["components"]["audit"] == {"status": "down", "error": "RuntimeError: probe exploded"}
    assert report["status"] == "down"
