"""The StateStore contract, run against both implementations (memory and SQLite)."""

from __future__ import annotations

import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from claw_governance.config import GovernorConfig
from claw_governance.errors import ConfigError, EscalationError
from claw_governance.model import Escalation, EscalationStatus
from claw_governance.state import (
    ACTIVE,
    REVOKED,
    IdentityRecord,
    KeyRecord,
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
    return Escalation(id_, "bot", "refund", args_hash, {"amount": 600, "card": "[REDACTED]"}, "p.yaml:3",
                      "needs approval", EscalationStatus.PENDING, now, now + expires_in)


def test_both_implement_the_protocol(store: StateStore) -> None:
    assert isinstance(store, StateStore)


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


def test_checkpoints_keep_the_newest(store: StateStore) -> None:
    assert store.latest_checkpoint("t") is None
    store.put_checkpoint("t", 5, "h5", "sig5", 1.0)
    store.put_checkpoint("t", 9, "h9", "sig9", 2.0)
    assert store.latest_checkpoint("t") == {"seq": 9, "hash": "h9", "signature": "sig9", "created": 2.0}


def test_identities_keys_and_status(store: StateStore) -> None:
    rec = IdentityRecord("bot", "k1", ACTIVE, 1.0, 1.0, None, 1, {"owner": "me"})
    assert store.create_identity(rec, KeyRecord("k1", "bot", "ed25519", "AAA=", 1.0))
    assert not store.create_identity(rec, KeyRecord("k1b", "bot", "ed25519", "BBB=", 1.0))
    assert store.get_identity("bot") == rec
    assert store.identity_versions() == {"bot": (ACTIVE, 1)}
    revoked = store.set_identity_status("bot", REVOKED, "compromised", 2.0)
    assert revoked is not None and revoked.revoked and revoked.version == 2 and revoked.reason == "compromised"
    assert store.set_identity_status("nobody", REVOKED, "x", 2.0) is None
    store.add_key(KeyRecord("k2", "bot", "ed25519", "CCC=", 3.0))
    rotated = store.activate_key("bot", "k2", 3.0)
    assert rotated is not None and rotated.key_id == "k2" and rotated.version == 3
    assert [(k.key_id, k.retired) for k in store.keys("bot")] == [("k1", 3.0), ("k2", None)]
    assert store.activate_key("bot", "unknown", 4.0) is None
    assert [r.agent_id for r in store.list_identities()] == ["bot"]


def test_trust_adds_atomically_and_never_below_zero(store: StateStore) -> None:
    assert store.get_trust("bot") is None
    (c,) = store.add_trust({"bot": (-5, 100, 100)})
    assert (c.old, c.new) == (100, 95)
    changes = store.add_trust({"bot": (3, 100, 100), "other": (-200, 100, 100)})
    assert {(x.agent_id, x.old, x.new) for x in changes} == {("bot", 95, 98), ("other", 100, 0)}
    assert store.set_trust("other", 80).new == 80
    assert store.trust_scores() == {"bot": 98, "other": 80}


def test_nonces_are_single_use_and_purged(store: StateStore) -> None:
    now = time.time()
    assert store.use_nonce("bot", "n" * 32, now + 100)
    assert not store.use_nonce("bot", "n" * 32, now + 100)
    assert store.use_nonce("other", "n" * 32, now + 100)  # per agent
    assert store.use_nonce("bot", "old" * 8, now - 1)
    assert store.purge(now) == 1
    assert store.use_nonce("bot", "old" * 8, now + 100)


def test_escalation_approval_creates_a_one_shot_grant(store: StateStore) -> None:
    store.put_escalation(esc())
    got = store.get_escalation("e1")
    assert got is not None and got.context == {"amount": 600, "card": "[REDACTED]"}
    assert got.status is EscalationStatus.PENDING
    assert store.consume_grant("bot", "refund", "h1", time.time()) is None  # pending: no grant yet
    done = store.resolve_escalation("e1", EscalationStatus.APPROVED, "alice", "ok", time.time(), time.time() + 60)
    assert (done.status, done.resolver, done.notes) == (EscalationStatus.APPROVED, "alice", "ok")
    assert store.consume_grant("bot", "refund", "other-args", time.time()) is None
    assert store.consume_grant("bot", "other-action", "h1", time.time()) is None
    assert store.consume_grant("bot", "refund", "h1", time.time()) == "e1"
    assert store.consume_grant("bot", "refund", "h1", time.time()) is None  # used once


def test_a_second_resolution_unknown_and_expired_ids_are_errors(store: StateStore) -> None:
    store.put_escalation(esc())
    store.resolve_escalation("e1", EscalationStatus.DENIED, "bob", "no", time.time(), 0)
    with pytest.raises(EscalationError, match="already denied"):
        store.resolve_escalation("e1", EscalationStatus.APPROVED, "alice", "ok", time.time(), time.time() + 60)
    with pytest.raises(EscalationError, match="no escalation"):
        store.resolve_escalation("nope", EscalationStatus.APPROVED, "alice", "ok", time.time(), time.time() + 60)
    store.put_escalation(esc("e2", expires_in=-1))
    with pytest.raises(EscalationError, match="expired"):
        store.resolve_escalation("e2", EscalationStatus.APPROVED, "alice", "ok", time.time(), time.time() + 60)
    e2 = store.get_escalation("e2")
    assert e2 is not None and e2.status is EscalationStatus.EXPIRED  # the refusal recorded the expiry
    with pytest.raises(EscalationError, match="approved or denied"):
        store.resolve_escalation("e1", EscalationStatus.EXPIRED, "alice", "ok", time.time(), 0)


def test_expire_changes_only_due_pending_escalations_once(store: StateStore) -> None:
    store.put_escalation(esc("due", expires_in=-1))
    store.put_escalation(esc("later", expires_in=60))
    assert store.expire_escalation("later", time.time()) is None
    first = store.expire_escalation("due", time.time())
    assert first is not None and first.status is EscalationStatus.EXPIRED
    assert store.expire_escalation("due", time.time()) is None
    assert [e.id for e in store.list_escalations(EscalationStatus.PENDING)] == ["later"]
    assert [e.id for e in store.list_escalations()] == ["due", "later"]


def test_expired_grants_are_not_consumed(store: StateStore) -> None:
    store.put_escalation(esc())
    store.resolve_escalation("e1", EscalationStatus.APPROVED, "alice", "ok", time.time(), time.time() - 1)
    assert store.consume_grant("bot", "refund", "h1", time.time()) is None


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
