"""The embedded StateStore: one SQLite file (WAL) in the state directory, safe for several processes.

- WAL journal, ``synchronous=NORMAL`` (a commit survives a killed process; ~17 us per commit here), a busy
  timeout so concurrent writers wait instead of failing.
- Every write is one ``BEGIN IMMEDIATE`` transaction: the write lock is taken up front, so a read-then-write
  never races another process (no lost update; no SQLITE_BUSY on lock upgrade).
- Versioned schema: ``PRAGMA user_version`` holds the schema version; ``MIGRATIONS`` are applied in order
  at open, each in its own transaction. A file newer than this code is refused, never downgraded.
- One connection per store, shared by the threads of the process under a lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from claw_governance.errors import ConfigError, EscalationError
from claw_governance.model import Escalation, EscalationStatus
from claw_governance.state.base import (
    ESCALATION_COLUMNS,
    GRANT_COLUMNS,
    IDENTITY_COLUMNS,
    JOB_COLUMNS,
    KEY_COLUMNS,
    POLICY_VERSION_COLUMNS,
    REVIEWER_COLUMNS,
    BudgetUse,
    GrantRecord,
    IdentityRecord,
    JobRecord,
    KeyRecord,
    PolicyVersion,
    Resolution,
    ReviewerRecord,
    TrustChange,
    budget_refuses,
    check_resolvable,
    escalation_from_row,
    escalation_row,
    grant_for,
    grant_from_row,
    identity_from_row,
    job_from_row,
    job_insert_row,
    json_text,
    key_from_row,
    policy_version_from_row,
    reviewer_from_row,
    reviewer_row,
    settled,
)
from claw_governance.state.faults import StateStoreError, describe, translatable


def _busy_timeout_ms() -> int:
    """How long a write waits for another process's lock: ``CLAW_STATE_BUSY_TIMEOUT_MS``, default 2000.

    The decision path writes here (grants, escalations, nonces, trust), so this bounds how long a locked
    database can stall a tool call before it is denied with "state store is locked by another process".
    """
    raw = os.environ.get("CLAW_STATE_BUSY_TIMEOUT_MS", "").strip()
    if not raw:
        return 2_000
    if not raw.isdigit() or not 0 <= int(raw) <= 600_000:
        raise ConfigError(f"CLAW_STATE_BUSY_TIMEOUT_MS must be 0..600000 milliseconds, not {raw!r}")
    return int(raw)


BUSY_TIMEOUT_MS = 2_000  # the default of _busy_timeout_ms() (was 10 s: a locked file stalled every call)

#: (version, statements). Append only: never edit a released migration.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE checkpoints (
               trail_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL,
               signature TEXT NOT NULL, created REAL NOT NULL)""",
            """CREATE TABLE identities (
               agent_id TEXT PRIMARY KEY, key_id TEXT NOT NULL, status TEXT NOT NULL,
               created REAL NOT NULL, updated REAL NOT NULL, reason TEXT,
               version INTEGER NOT NULL DEFAULT 1, metadata TEXT NOT NULL DEFAULT '{}')""",
            """CREATE TABLE identity_keys (
               key_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL REFERENCES identities(agent_id),
               algorithm TEXT NOT NULL, public_key TEXT NOT NULL, created REAL NOT NULL, retired REAL)""",
            "CREATE INDEX identity_keys_agent ON identity_keys(agent_id, created)",
            """CREATE TABLE trust (
               agent_id TEXT PRIMARY KEY, score INTEGER NOT NULL, updated REAL NOT NULL)""",
            """CREATE TABLE nonces (
               agent_id TEXT NOT NULL, nonce TEXT NOT NULL, expires REAL NOT NULL,
               PRIMARY KEY (agent_id, nonce)) WITHOUT ROWID""",
            "CREATE INDEX nonces_expires ON nonces(expires)",
            """CREATE TABLE escalations (
               id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, action TEXT NOT NULL, args_hash TEXT NOT NULL,
               context TEXT NOT NULL, rule TEXT, reason TEXT NOT NULL, status TEXT NOT NULL,
               created REAL NOT NULL, expires REAL NOT NULL, resolver TEXT, notes TEXT, resolved_at REAL)""",
            "CREATE INDEX escalations_status ON escalations(status, created)",
            """CREATE TABLE grants (
               escalation_id TEXT PRIMARY KEY REFERENCES escalations(id), agent_id TEXT NOT NULL,
               action TEXT NOT NULL, args_hash TEXT NOT NULL, expires REAL NOT NULL, consumed REAL)""",
            "CREATE INDEX grants_call ON grants(agent_id, action, args_hash)",
        ),
    ),
    (
        2,
        (  # work contracts: jobs and the policy archive
            """CREATE TABLE jobs (
               job_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, scope TEXT NOT NULL, scope_hash TEXT NOT NULL,
               policy_hash TEXT, token_id TEXT NOT NULL, issued REAL NOT NULL, expires REAL NOT NULL,
               status TEXT NOT NULL, revoked_at REAL, reason TEXT, created REAL NOT NULL,
               tokens_issued INTEGER NOT NULL DEFAULT 1)""",
            """CREATE TABLE policy_versions (
               policy_hash TEXT PRIMARY KEY, files TEXT NOT NULL, first_seen REAL NOT NULL,
               last_seen REAL NOT NULL)""",
        ),
    ),
)
MIGRATIONS += (
    (
        3,
        (
            """CREATE TABLE budget_events (
               key TEXT NOT NULL, at REAL NOT NULL, amount REAL NOT NULL, expires REAL NOT NULL)""",
            "CREATE INDEX budget_events_key ON budget_events(key, at)",
            "CREATE INDEX budget_events_expires ON budget_events(expires)",
            # The running sum of a key's events still in the window: each call reads one row and removes only the
            # events that left the window since, so its cost does not grow with the number of events.
            """CREATE TABLE budget_totals (key TEXT PRIMARY KEY, total REAL NOT NULL) WITHOUT ROWID""",
            """CREATE TABLE session_labels (
               key TEXT NOT NULL, label TEXT NOT NULL, expires REAL NOT NULL,
               PRIMARY KEY (key, label)) WITHOUT ROWID""",
        ),
    ),
)
MIGRATIONS += (
    (
        4,
        (  # reviewers as principals; what a reviewer decided (issue 16)
            """CREATE TABLE reviewers (
               name TEXT PRIMARY KEY, roles TEXT NOT NULL, groups_ TEXT NOT NULL, scope_actions TEXT NOT NULL,
               scope_agents TEXT NOT NULL, token_id TEXT UNIQUE, token_hash TEXT, password_hash TEXT,
               created REAL NOT NULL, updated REAL NOT NULL)""",
            "ALTER TABLE escalations ADD COLUMN approvers TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE escalations ADD COLUMN max_grant REAL",
            "ALTER TABLE escalations ADD COLUMN call_id TEXT",
            "ALTER TABLE escalations ADD COLUMN credential_id TEXT",
            "ALTER TABLE escalations ADD COLUMN edited_args TEXT",
            "ALTER TABLE escalations ADD COLUMN edited_args_hash TEXT",
            "ALTER TABLE escalations ADD COLUMN message TEXT",
            "ALTER TABLE escalations ADD COLUMN grant_until REAL",
            "ALTER TABLE grants ADD COLUMN standing INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE grants ADD COLUMN revoked REAL",
            "CREATE INDEX grants_standing ON grants(agent_id, action) WHERE standing = 1",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


class SQLiteStateStore:
    """The StateStore on one SQLite database file (created with its folder, mode 0600/0700)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        self._lock = threading.RLock()
        self.busy_timeout_ms = busy = _busy_timeout_ms()
        self._db = sqlite3.connect(str(self.path), timeout=busy / 1000, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute(f"PRAGMA busy_timeout={busy}")
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ConfigError(f"{self.path}: SQLite could not switch to WAL mode (got {mode})")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except (sqlite3.DatabaseError, StateStoreError) as exc:
            self._db.close()
            raise ConfigError(f"{self.path}: cannot open the state store: {exc}") from None
        except BaseException:
            self._db.close()
            raise

    # ------------------------------------------------------------------------------------- plumbing

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # A driver error (locked, corrupt, closed ...) leaves as a StateStoreError with an actionable line.
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise describe(exc, self.path) from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                if translatable(exc):
                    raise describe(exc, self.path) from None  # type: ignore[arg-type]
                raise

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise describe(exc, self.path) from None

    def health(self) -> dict[str, Any]:
        """``{"status": "ok"}``, or ``"down"`` with the reason (locked, corrupt ...). Never raises.

        Reads the schema and one row of each table (a corrupt page in use shows; a full integrity check
        would cost O(size) and is left to ``sqlite3 state.db 'PRAGMA integrity_check'``).
        """
        try:
            with self._lock:
                self._db.execute("SELECT count(*) FROM sqlite_master").fetchall()
                for table in ("identities", "trust", "escalations", "grants", "nonces", "checkpoints"):
                    self._db.execute(
                        f"SELECT * FROM {table} ORDER BY rowid DESC LIMIT 1"
                        if table not in ("nonces",)
                        else f"SELECT * FROM {table} LIMIT 1"
                    ).fetchall()
                self._db.execute("SELECT count(*) FROM escalations WHERE status='pending'").fetchall()
        except sqlite3.Error as exc:
            fault = describe(exc, self.path)
            return {"status": "down", "kind": fault.kind, "error": str(fault), "path": str(self.path)}
        except Exception as exc:  # never raise from a health probe
            return {"status": "down", "kind": "error", "error": f"{type(exc).__name__}: {exc}", "path": str(self.path)}
        return {"status": "ok", "path": str(self.path), "busy_timeout_ms": self.busy_timeout_ms}

    def _migrate(self) -> None:
        with self._write() as db:
            current = int(db.execute("PRAGMA user_version").fetchone()[0])
            if current > SCHEMA_VERSION:
                raise ConfigError(
                    f"{self.path}: state store schema version {current} is newer than this "
                    f"claw-governance understands ({SCHEMA_VERSION}); upgrade claw-governance"
                )
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={version}")

    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        return int(self._read("PRAGMA user_version")[0][0])

    # ---------------------------------------------------------------------------------- checkpoints

    def put_checkpoint(self, trail_id: str, seq: int, entry_hash: str, signature: str, created: float) -> None:
        """See StateStore. Keeps the checkpoint with the highest seq."""
        with self._write() as db:
            db.execute(
                "INSERT INTO checkpoints VALUES (?,?,?,?,?) ON CONFLICT(trail_id) DO UPDATE SET "
                "seq=excluded.seq, hash=excluded.hash, signature=excluded.signature, "
                "created=excluded.created WHERE excluded.seq >= checkpoints.seq",
                (trail_id, seq, entry_hash, signature, created),
            )

    def latest_checkpoint(self, trail_id: str) -> dict[str, Any] | None:
        """See StateStore."""
        rows = self._read("SELECT seq, hash, signature, created FROM checkpoints WHERE trail_id=?", (trail_id,))
        if not rows:
            return None
        seq, digest, signature, created = rows[0]
        return {"seq": seq, "hash": digest, "signature": signature, "created": created}

    # ----------------------------------------------------------------------------------- identities

    def create_identity(self, record: IdentityRecord, key: KeyRecord) -> bool:
        """See StateStore."""
        with self._write() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO identities VALUES (?,?,?,?,?,?,?,?)",
                (
                    record.agent_id,
                    record.key_id,
                    record.status,
                    record.created,
                    record.updated,
                    record.reason,
                    record.version,
                    orjson.dumps(dict(record.metadata), default=str).decode(),
                ),
            )
            if cur.rowcount != 1:
                return False
            db.execute(
                "INSERT INTO identity_keys VALUES (?,?,?,?,?,?)",
                (key.key_id, key.agent_id, key.algorithm, key.public_key, key.created, key.retired),
            )
            return True

    def get_identity(self, agent_id: str) -> IdentityRecord | None:
        """See StateStore."""
        rows = self._read(f"SELECT {IDENTITY_COLUMNS} FROM identities WHERE agent_id=?", (agent_id,))
        return identity_from_row(rows[0]) if rows else None

    def list_identities(self) -> list[IdentityRecord]:
        """See StateStore."""
        rows = self._read(f"SELECT {IDENTITY_COLUMNS} FROM identities ORDER BY agent_id")
        return [identity_from_row(r) for r in rows]

    def identity_versions(self) -> dict[str, tuple[str, int]]:
        """See StateStore."""
        return {a: (s, v) for a, s, v in self._read("SELECT agent_id, status, version FROM identities")}

    def set_identity_status(self, agent_id: str, status: str, reason: str | None, now: float) -> IdentityRecord | None:
        """See StateStore."""
        with self._write() as db:
            rows = db.execute(
                f"UPDATE identities SET status=?, reason=?, updated=?, version=version+1 "
                f"WHERE agent_id=? RETURNING {IDENTITY_COLUMNS}",
                (status, reason, now, agent_id),
            ).fetchall()
        return identity_from_row(rows[0]) if rows else None

    def add_key(self, key: KeyRecord) -> None:
        """See StateStore."""
        with self._write() as db:
            db.execute(
                "INSERT INTO identity_keys VALUES (?,?,?,?,?,?)",
                (key.key_id, key.agent_id, key.algorithm, key.public_key, key.created, key.retired),
            )

    def activate_key(self, agent_id: str, key_id: str, now: float) -> IdentityRecord | None:
        """See StateStore."""
        with self._write() as db:
            known = db.execute(
                "SELECT 1 FROM identity_keys WHERE agent_id=? AND key_id=?", (agent_id, key_id)
            ).fetchone()
            if known is None:
                return None
            db.execute(
                "UPDATE identity_keys SET retired=? WHERE agent_id=? AND key_id=("
                "SELECT key_id FROM identities WHERE agent_id=?) AND key_id != ? AND retired IS NULL",
                (now, agent_id, agent_id, key_id),
            )
            rows = db.execute(
                f"UPDATE identities SET key_id=?, updated=?, version=version+1 WHERE agent_id=? "
                f"RETURNING {IDENTITY_COLUMNS}",
                (key_id, now, agent_id),
            ).fetchall()
        return identity_from_row(rows[0]) if rows else None

    def keys(self, agent_id: str) -> list[KeyRecord]:
        """See StateStore."""
        return [
            key_from_row(r)
            for r in self._read(
                f"SELECT {KEY_COLUMNS} FROM identity_keys WHERE agent_id=? ORDER BY created, key_id",
                (agent_id,),
            )
        ]

    # ---------------------------------------------------------------------------------------- trust

    def trust_scores(self) -> dict[str, int]:
        """See StateStore."""
        return {a: int(s) for a, s in self._read("SELECT agent_id, score FROM trust")}

    def get_trust(self, agent_id: str) -> int | None:
        """See StateStore."""
        rows = self._read("SELECT score FROM trust WHERE agent_id=?", (agent_id,))
        return int(rows[0][0]) if rows else None

    def add_trust(self, deltas: Mapping[str, tuple[int, int, int]]) -> list[TrustChange]:
        """See StateStore. One transaction for the whole batch; ``score = MIN(?, MAX(0, score + ?))`` in SQL."""
        import time

        now = time.time()
        changes = []
        with self._write() as db:
            for agent_id, (delta, initial, maximum) in deltas.items():
                db.execute("INSERT OR IGNORE INTO trust VALUES (?,?,?)", (agent_id, max(0, initial), now))
                old = int(db.execute("SELECT score FROM trust WHERE agent_id=?", (agent_id,)).fetchone()[0])
                new = int(
                    db.execute(
                        "UPDATE trust SET score=MIN(?, MAX(0, score + ?)), updated=? WHERE agent_id=? RETURNING score",
                        (maximum, delta, now, agent_id),
                    ).fetchone()[0]
                )
                changes.append(TrustChange(agent_id, old, new))
        return changes

    def set_trust(self, agent_id: str, value: int) -> TrustChange:
        """See StateStore."""
        import time

        value = max(0, value)
        with self._write() as db:
            row = db.execute("SELECT score FROM trust WHERE agent_id=?", (agent_id,)).fetchone()
            db.execute(
                "INSERT INTO trust VALUES (?,?,?) ON CONFLICT(agent_id) DO UPDATE SET score=excluded.score, "
                "updated=excluded.updated",
                (agent_id, value, time.time()),
            )
        return TrustChange(agent_id, int(row[0]) if row else value, value)

    # --------------------------------------------------------------------------------------- nonces

    def use_nonce(self, agent_id: str, nonce: str, expires: float) -> bool:
        """See StateStore. The primary key makes a second insert of the same nonce fail, in any process."""
        with self._write() as db:
            cur = db.execute("INSERT OR IGNORE INTO nonces VALUES (?,?,?)", (agent_id, nonce, expires))
            return cur.rowcount == 1

    def add_to_budget(
        self, key: str, amount: float, limit: float, window_seconds: float, now: float, *, force: bool = False
    ) -> BudgetUse:
        """See StateStore. ``BEGIN IMMEDIATE`` takes the database's write lock before the total is read, so no
        other process can admit into any budget between this read and this insert. The running total in
        ``budget_totals`` makes the cost independent of how many events the window holds."""
        start = now - window_seconds
        with self._write() as db:
            gone, count = db.execute(
                "SELECT COALESCE(SUM(amount), 0), COUNT(*) FROM budget_events WHERE key = ? AND at <= ?", (key, start)
            ).fetchone()
            if count:
                db.execute("DELETE FROM budget_events WHERE key = ? AND at <= ?", (key, start))
                db.execute(
                    "UPDATE budget_totals SET total = CASE WHEN EXISTS (SELECT 1 FROM budget_events WHERE "
                    "key = ?) THEN total - ? ELSE 0 END WHERE key = ?",
                    (key, gone, key),
                )
            row = db.execute("SELECT total FROM budget_totals WHERE key = ?", (key,)).fetchone()
            used = float(row[0]) if row else 0.0
            if budget_refuses(used, amount, limit, force=force):
                return BudgetUse(False, used)
            db.execute("INSERT INTO budget_events VALUES (?,?,?,?)", (key, now, amount, now + window_seconds))
            db.execute(
                "INSERT INTO budget_totals VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET total = ?",
                (key, used + amount, used + amount),
            )
            return BudgetUse(True, used + amount)

    def session_labels(self, key: str, add: frozenset[str], now: float, ttl_seconds: float) -> frozenset[str]:
        """See StateStore."""
        if add:
            with self._write() as db:
                db.executemany(
                    "INSERT INTO session_labels VALUES (?,?,?) ON CONFLICT(key, label) DO UPDATE SET "
                    "expires = MAX(expires, excluded.expires)",
                    [(key, label, now + ttl_seconds) for label in sorted(add)],
                )
                rows = db.execute(
                    "SELECT label FROM session_labels WHERE key = ? AND expires > ?", (key, now)
                ).fetchall()
        else:
            rows = self._read("SELECT label FROM session_labels WHERE key = ? AND expires > ?", (key, now))
        return frozenset(str(r[0]) for r in rows)

    def purge(self, now: float) -> int:
        """See StateStore."""
        with self._write() as db:
            n = db.execute("DELETE FROM session_labels WHERE expires <= ?", (now,)).rowcount
            n += db.execute("DELETE FROM nonces WHERE expires <= ?", (now,)).rowcount
            gone = db.execute("DELETE FROM budget_events WHERE expires <= ?", (now,)).rowcount
            if gone:  # keep each running total equal to the sum of its remaining events
                db.execute(
                    "UPDATE budget_totals SET total = (SELECT COALESCE(SUM(e.amount), 0) FROM budget_events e "
                    "WHERE e.key = budget_totals.key)"
                )
                db.execute("DELETE FROM budget_totals WHERE key NOT IN (SELECT DISTINCT key FROM budget_events)")
            n += gone
            n += db.execute(
                "DELETE FROM grants WHERE consumed IS NOT NULL OR revoked IS NOT NULL OR expires <= ?", (now,)
            ).rowcount
        return int(n)

    # ---------------------------------------------------------------------------------- escalations

    def put_escalation(self, escalation: Escalation) -> None:
        """See StateStore."""
        e = escalation
        with self._write() as db:
            db.execute(
                f"INSERT INTO escalations ({ESCALATION_COLUMNS}) VALUES ({','.join('?' * 21)})",
                escalation_row(e),
            )

    def get_escalation(self, escalation_id: str) -> Escalation | None:
        """See StateStore."""
        rows = self._read(f"SELECT {ESCALATION_COLUMNS} FROM escalations WHERE id=?", (escalation_id,))
        return escalation_from_row(rows[0]) if rows else None

    def list_escalations(self, status: EscalationStatus | None = None, limit: int = 1000) -> list[Escalation]:
        """See StateStore."""
        if status is None:
            rows = self._read(f"SELECT {ESCALATION_COLUMNS} FROM escalations ORDER BY created LIMIT ?", (limit,))
        else:
            rows = self._read(
                f"SELECT {ESCALATION_COLUMNS} FROM escalations WHERE status=? ORDER BY created LIMIT ?",
                (status.value, limit),
            )
        return [escalation_from_row(r) for r in rows]

    def expire_escalation(self, escalation_id: str, now: float) -> Escalation | None:
        """See StateStore."""
        with self._write() as db:
            rows = db.execute(
                f"UPDATE escalations SET status='expired', resolved_at=? WHERE id=? AND "
                f"status='pending' AND expires <= ? RETURNING {ESCALATION_COLUMNS}",
                (now, escalation_id, now),
            ).fetchall()
        return escalation_from_row(rows[0]) if rows else None

    def resolve_escalation(
        self, escalation_id: str, status: EscalationStatus, resolver: str, notes: str, now: float, grant_expires: float
    ) -> Escalation:
        """See StateStore."""
        if status not in (EscalationStatus.APPROVED, EscalationStatus.DENIED):
            raise EscalationError(f"an escalation can only be approved or denied, not {status.value}")
        error: EscalationError | None = None
        with self._write() as db:
            rows = db.execute(f"SELECT {ESCALATION_COLUMNS} FROM escalations WHERE id=?", (escalation_id,)).fetchall()
            esc = escalation_from_row(rows[0]) if rows else None
            try:
                check_resolvable(esc, escalation_id, now)
            except EscalationError as exc:
                error = exc
                if esc is not None and esc.status is EscalationStatus.PENDING:  # time is up: record it
                    db.execute(
                        "UPDATE escalations SET status='expired', resolved_at=? WHERE id=?", (now, escalation_id)
                    )
            if error is None and esc is not None:
                db.execute(
                    "UPDATE escalations SET status=?, resolver=?, notes=?, resolved_at=? WHERE id=?",
                    (status.value, resolver, notes, now, escalation_id),
                )
                if status is EscalationStatus.APPROVED:
                    db.execute(
                        "INSERT INTO grants (escalation_id, agent_id, action, args_hash, expires) VALUES (?,?,?,?,?)",
                        (esc.id, esc.agent_id, esc.action, esc.args_hash, grant_expires),
                    )
        if error is not None:
            raise error
        assert esc is not None
        return dataclasses.replace(esc, status=status, resolver=resolver, notes=notes, resolved_at=now)

    def consume_grant(self, agent_id: str, action: str, args_hash: str, now: float) -> str | None:
        """See StateStore. One UPDATE statement: atomic, so a grant is consumed at most once."""
        with self._write() as db:
            rows = db.execute(
                "UPDATE grants SET consumed=? WHERE escalation_id=(SELECT escalation_id FROM grants WHERE "
                "agent_id=? AND action=? AND args_hash=? AND consumed IS NULL AND revoked IS NULL AND standing=0 "
                "AND expires > ? "
                "ORDER BY expires LIMIT 1) AND consumed IS NULL RETURNING escalation_id",
                (now, agent_id, action, args_hash, now),
            ).fetchall()
        return str(rows[0][0]) if rows else None

    # ----------------------------------------------------------------------------------------- jobs

    def put_job(self, job: JobRecord) -> JobRecord:
        """See StateStore. The token is replaced in place: one row per job id."""
        with self._write() as db:
            row = db.execute("SELECT agent_id FROM jobs WHERE job_id=?", (job.job_id,)).fetchone()
            if row is not None and row[0] != job.agent_id:
                raise ConfigError(f"job {job.job_id!r} belongs to agent {row[0]!r}, not {job.agent_id!r}")
            db.execute(
                f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,1) ON CONFLICT(job_id) DO UPDATE "
                "SET scope=excluded.scope, scope_hash=excluded.scope_hash, policy_hash=excluded.policy_hash, "
                "token_id=excluded.token_id, issued=excluded.issued, expires=excluded.expires, "
                "tokens_issued=jobs.tokens_issued + 1",
                job_insert_row(job),
            )
            stored = db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id=?", (job.job_id,)).fetchone()
        return job_from_row(stored)

    def get_job(self, job_id: str) -> JobRecord | None:
        """See StateStore."""
        rows = self._read(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id=?", (job_id,))
        return job_from_row(rows[0]) if rows else None

    def list_jobs(self, limit: int = 1000) -> list[JobRecord]:
        """See StateStore."""
        return [
            job_from_row(r)
            for r in self._read(f"SELECT {JOB_COLUMNS} FROM jobs ORDER BY issued DESC, job_id LIMIT ?", (limit,))
        ]

    def revoke_job(self, job_id: str, reason: str, now: float) -> JobRecord | None:
        """See StateStore."""
        with self._write() as db:
            db.execute(
                "UPDATE jobs SET status='revoked', revoked_at=?, reason=? WHERE job_id=? AND status != 'revoked'",
                (now, reason, job_id),
            )
            row = db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        return job_from_row(row) if row else None

    def job_versions(self) -> dict[str, tuple[str, str]]:
        """See StateStore."""
        return {j: (s, t) for j, s, t in self._read("SELECT job_id, status, token_id FROM jobs")}

    # ------------------------------------------------------------------------------- policy archive

    def archive_policy(self, policy_hash: str, files: Mapping[str, str], now: float) -> None:
        """See StateStore."""
        with self._write() as db:
            db.execute(
                "INSERT INTO policy_versions VALUES (?,?,?,?) ON CONFLICT(policy_hash) DO UPDATE SET "
                "last_seen=excluded.last_seen",
                (policy_hash, orjson.dumps(dict(files)).decode(), now, now),
            )

    def get_policy_version(self, policy_hash: str) -> PolicyVersion | None:
        """See StateStore."""
        rows = self._read(f"SELECT {POLICY_VERSION_COLUMNS} FROM policy_versions WHERE policy_hash=?", (policy_hash,))
        return policy_version_from_row(rows[0]) if rows else None

    def list_policy_versions(self, limit: int = 1000) -> list[PolicyVersion]:
        """See StateStore."""
        return [
            policy_version_from_row(r)
            for r in self._read(
                f"SELECT {POLICY_VERSION_COLUMNS} FROM policy_versions ORDER BY first_seen, policy_hash LIMIT ?",
                (limit,),
            )
        ]

    # ------------------------------------------------------------------------------------ reviewers

    def put_reviewer(self, record: ReviewerRecord) -> bool:
        """See StateStore."""
        with self._write() as db:
            cur = db.execute(
                f"INSERT OR IGNORE INTO reviewers ({REVIEWER_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                reviewer_row(record),
            )
            return cur.rowcount == 1

    def replace_reviewer(self, record: ReviewerRecord) -> bool:
        """See StateStore."""
        row = reviewer_row(record)
        with self._write() as db:
            cur = db.execute(
                "UPDATE reviewers SET roles=?, groups_=?, scope_actions=?, scope_agents=?, token_id=?, "
                "token_hash=?, password_hash=?, created=?, updated=? WHERE name=?",
                (*row[1:], row[0]),
            )
            return cur.rowcount == 1

    def get_reviewer(self, name: str) -> ReviewerRecord | None:
        """See StateStore."""
        rows = self._read(f"SELECT {REVIEWER_COLUMNS} FROM reviewers WHERE name=?", (name,))
        return reviewer_from_row(rows[0]) if rows else None

    def reviewer_by_token(self, token_id: str) -> ReviewerRecord | None:
        """See StateStore."""
        rows = self._read(f"SELECT {REVIEWER_COLUMNS} FROM reviewers WHERE token_id=?", (token_id,))
        return reviewer_from_row(rows[0]) if rows else None

    def list_reviewers(self) -> list[ReviewerRecord]:
        """See StateStore."""
        return [reviewer_from_row(r) for r in self._read(f"SELECT {REVIEWER_COLUMNS} FROM reviewers ORDER BY name")]

    def delete_reviewer(self, name: str) -> bool:
        """See StateStore."""
        with self._write() as db:
            return db.execute("DELETE FROM reviewers WHERE name=?", (name,)).rowcount == 1

    def settle_escalation(self, escalation_id: str, resolution: Resolution, now: float) -> Escalation:
        """See StateStore. One BEGIN IMMEDIATE transaction: check, update, insert the grant."""
        if resolution.status not in (EscalationStatus.APPROVED, EscalationStatus.DENIED):
            raise EscalationError(f"an escalation can only be approved or denied, not {resolution.status.value}")
        error: EscalationError | None = None
        done: Escalation | None = None
        with self._write() as db:
            rows = db.execute(f"SELECT {ESCALATION_COLUMNS} FROM escalations WHERE id=?", (escalation_id,)).fetchall()
            esc = escalation_from_row(rows[0]) if rows else None
            try:
                check_resolvable(esc, escalation_id, now)
            except EscalationError as exc:
                error = exc
                if esc is not None and esc.status is EscalationStatus.PENDING:  # time is up: record it
                    db.execute(
                        "UPDATE escalations SET status='expired', resolved_at=? WHERE id=?", (now, escalation_id)
                    )
            if error is None and esc is not None:
                done = settled(esc, resolution, now)
                db.execute(
                    "UPDATE escalations SET status=?, resolver=?, notes=?, resolved_at=?, credential_id=?, "
                    "edited_args=?, edited_args_hash=?, message=?, grant_until=? WHERE id=?",
                    (
                        done.status.value,
                        done.resolver,
                        done.notes,
                        now,
                        done.credential_id,
                        None if done.edited_args is None else json_text(dict(done.edited_args)),
                        done.edited_args_hash,
                        done.message,
                        done.grant_until,
                        escalation_id,
                    ),
                )
                if resolution.status is EscalationStatus.APPROVED:
                    bound, standing = grant_for(esc, resolution)
                    db.execute(
                        f"INSERT INTO grants ({GRANT_COLUMNS}) VALUES (?,?,?,?,?,NULL,?,NULL)",
                        (esc.id, esc.agent_id, esc.action, bound, resolution.grant_expires, int(standing)),
                    )
        if error is not None:
            raise error
        assert done is not None
        return done

    def use_standing_grant(self, agent_id: str, action: str, now: float) -> str | None:
        """See StateStore. A read: a standing grant is not consumed."""
        rows = self._read(
            "SELECT escalation_id FROM grants WHERE agent_id=? AND action=? AND standing=1 AND "
            "revoked IS NULL AND expires > ? ORDER BY expires DESC LIMIT 1",
            (agent_id, action, now),
        )
        return str(rows[0][0]) if rows else None

    def revoke_grant(self, escalation_id: str, now: float) -> bool:
        """See StateStore."""
        with self._write() as db:
            return (
                db.execute(
                    "UPDATE grants SET revoked=? WHERE escalation_id=? AND revoked IS NULL AND "
                    "consumed IS NULL AND expires > ?",
                    (now, escalation_id, now),
                ).rowcount
                == 1
            )

    def list_grants(self, now: float, active_only: bool = True) -> list[GrantRecord]:
        """See StateStore."""
        where = " WHERE consumed IS NULL AND revoked IS NULL AND expires > ?" if active_only else ""
        rows = self._read(
            f"SELECT {GRANT_COLUMNS} FROM grants{where} ORDER BY expires",
            (now,) if active_only else (),
        )
        return [grant_from_row(r) for r in rows]

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()
