"""SQLite-specific StateStore tests and store selection. The shared contract, run against memory, SQLite and
PostgreSQL, is tests/test_state_conformance.py (new contract tests belong there)."""

from __future__ import annotations

import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from claw_governance.config import GovernorConfig
from claw_governance.errors import ConfigError
from claw_governance.model import Escalation, EscalationStatus
from claw_governance.state import (
    MemoryStateStore,
    SQLiteStateStore,
    StateStore,
    open_state_store,
)
from claw_governance.state.sqlite import SCHEMA_VERSION


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    s: StateStore = MemoryStateStore() if request.param == "memory" else SQLiteStateStore(tmp_path / "s" / "state.db")
    yield s
    s.close()


def esc(id_: str = "e1", expires_in: float = 60.0, args_hash: str = "h1") -> Escalation:
    now = time.time()
    return Escalation(
        id_,
        "bot",
        "refund",
        args_hash,
        {"amount": 600, "card": "[REDACTED]"},
        "p.yaml:3",
        "needs approval",
        EscalationStatus.PENDING,
        now,
        now + expires_in,
    )


def test_open_state_store_picks_sqlite_under_the_state_path(tmp_path: Path) -> None:
    s = open_state_store(GovernorConfig(identity_path=tmp_path / "ids"))
    try:
        assert isinstance(s, SQLiteStateStore)
        assert s.path == tmp_path / "ids" / ".state" / "state.db"
        assert stat.S_IMODE(s.path.stat().st_mode) == 0o600
        assert stat.S_IMODE(s.path.parent.stat().st_mode) == 0o700
    finally:
        s.close()
    assert isinstance(open_state_store(GovernorConfig()), MemoryStateStore)


def test_sqlite_schema_is_versioned_and_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SQLiteStateStore(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = SQLiteStateStore(path)  # re-opening applies nothing twice
    assert again.schema_version == SCHEMA_VERSION
    again.close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigError, match="newer than this claw-governance"):
        SQLiteStateStore(path)


def test_sqlite_state_is_shared_between_connections(tmp_path: Path) -> None:
    a, b = SQLiteStateStore(tmp_path / "state.db"), SQLiteStateStore(tmp_path / "state.db")
    try:
        a.put_escalation(esc())
        b.resolve_escalation("e1", EscalationStatus.APPROVED, "alice", "ok", time.time(), time.time() + 60)
        assert a.consume_grant("bot", "refund", "h1", time.time()) == "e1"
        assert b.consume_grant("bot", "refund", "h1", time.time()) is None
        assert not b.use_nonce("x", "1" * 16, time.time() + 9) or not a.use_nonce("x", "1" * 16, time.time() + 9)
    finally:
        a.close()
        b.close()


def test_a_corrupt_state_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match="cannot open the state store"):
        SQLiteStateStore(path)
