"""The fleet StateStore: PostgreSQL shared by every host (psycopg 3 and a psycopg_pool connection pool).

Selected by ``STATE_URL=postgresql://...`` (or ``Governor(state_url=...)``); install the ``postgres`` extra.
The same contract as the SQLite store, with the same atomicity across hosts:

- a grant is consumed by one ``UPDATE ... WHERE consumed IS NULL ... RETURNING`` whose candidate row is
  picked ``FOR UPDATE SKIP LOCKED``: under READ COMMITTED the outer update re-checks ``consumed IS NULL``
  after any lock wait, so of any number of hosts exactly one gets the grant;
- trust updates are ``score = LEAST(max, GREATEST(0, score + delta))`` on a row locked ``FOR UPDATE``, in
  agent-id order inside a batch (so two batches never deadlock), never read-modify-write in Python;
- a replay nonce is the primary key ``(agent_id, nonce)``: ``INSERT ... ON CONFLICT DO NOTHING`` inserts
  it on one host only;
- an escalation is resolved on its row locked ``FOR UPDATE``: of two concurrent resolutions one wins.

The hot path never waits on this store: identities and trust scores are cached per process and refreshed
every ``STATE_SYNC_INTERVAL`` seconds (``identity.shared``), exactly as with SQLite; identity changes also
send a NOTIFY at commit, which ``watch_identities`` listeners turn into an immediate refresh.

Schema: ``MIGRATIONS`` is the one ordered list of versioned migrations; the applied versions are rows of
``claw_schema_migrations``. They run at open under a transaction-scoped advisory lock, so hosts starting
together migrate once. A database newer than this code is refused, never downgraded. Tables live in the
connection's ``search_path`` (choose a schema with ``?options=-csearch_path%3Dname`` in the URL).

Adding a method (another helper's state: reviewers, budgets ...): append a migration to ``MIGRATIONS``
with its tables, then write the method with ``self._write()`` (one transaction: ``cur.execute(...)``),
``self._rows(sql, params)`` (a read) or ``self._exec(sql, params)`` (one statement, its row count); use
``%s`` placeholders and ``FOR UPDATE`` / ``ON CONFLICT`` / ``RETURNING`` where the SQLite store relies on
``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

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

try:  # the optional extra: a clear error at open when it is missing, never at import of the package
    import psycopg
    from psycopg_pool import ConnectionPool
except ImportError:  # pragma: no cover - exercised only without the extra
    psycopg = None  # type: ignore[assignment]
    ConnectionPool = None  # type: ignore[assignment,misc]

log = logging.getLogger("claw_governance.state")

CONNECT_TIMEOUT = 10.0  # seconds to wait for the first connection at open
POOL_MAX = 4

#: (version, statements). Append only: never edit a released migration.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE checkpoints (
               trail_id TEXT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL,
               signature TEXT NOT NULL, created DOUBLE PRECISION NOT NULL)""",
            """CREATE TABLE identities (
               agent_id TEXT PRIMARY KEY, key_id TEXT NOT NULL, status TEXT NOT NULL,
               created DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL, reason TEXT,
               version BIGINT NOT NULL DEFAULT 1, metadata TEXT NOT NULL DEFAULT '{}')""",
            """CREATE TABLE identity_keys (
               key_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL REFERENCES identities(agent_id),
               algorithm TEXT NOT NULL, public_key TEXT NOT NULL, created DOUBLE PRECISION NOT NULL,
               retired DOUBLE PRECISION)""",
            "CREATE INDEX identity_keys_agent ON identity_keys(agent_id, created)",
            """CREATE TABLE trust (
               agent_id TEXT PRIMARY KEY, score INTEGER NOT NULL, updated DOUBLE PRECISION NOT NULL)""",
            """CREATE TABLE nonces (
               agent_id TEXT NOT NULL, nonce TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL,
               PRIMARY KEY (agent_id, nonce))""",
            "CREATE INDEX nonces_expires ON nonces(expires)",
            """CREATE TABLE escalations (
               id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, action TEXT NOT NULL, args_hash TEXT NOT NULL,
               context TEXT NOT NULL, rule TEXT, reason TEXT NOT NULL, status TEXT NOT NULL,
               created DOUBLE PRECISION NOT NULL, expires DOUBLE PRECISION NOT NULL, resolver TEXT, notes TEXT,
               resolved_at DOUBLE PRECISION)""",
            "CREATE INDEX escalations_status ON escalations(status, created)",
            """CREATE TABLE grants (
               escalation_id TEXT PRIMARY KEY REFERENCES escalations(id), agent_id TEXT NOT NULL,
               action TEXT NOT NULL, args_hash TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL,
               consumed DOUBLE PRECISION)""",
            "CREATE INDEX grants_call ON grants(agent_id, action, args_hash)",
        ),
    ),
)
MIGRATIONS += (
    (
        2,
        (  # work contracts: jobs and the policy archive
            """CREATE TABLE jobs (
               job_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, scope TEXT NOT NULL, scope_hash TEXT NOT NULL,
               policy_hash TEXT, token_id TEXT NOT NULL, issued DOUBLE PRECISION NOT NULL,
               expires DOUBLE PRECISION NOT NULL, status TEXT NOT NULL, revoked_at DOUBLE PRECISION, reason TEXT,
               created DOUBLE PRECISION NOT NULL, tokens_issued BIGINT NOT NULL DEFAULT 1)""",
            """CREATE TABLE policy_versions (
               policy_hash TEXT PRIMARY KEY, files TEXT NOT NULL, first_seen DOUBLE PRECISION NOT NULL,
               last_seen DOUBLE PRECISION NOT NULL)""",
        ),
    ),
    (
        3,
        (  # budgets (sliding windows with a running total per key) and session data-flow labels
            """CREATE TABLE budget_events (
               key TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, amount DOUBLE PRECISION NOT NULL,
               expires DOUBLE PRECISION NOT NULL)""",
            "CREATE INDEX budget_events_key ON budget_events(key, at)",
            "CREATE INDEX budget_events_expires ON budget_events(expires)",
            "CREATE TABLE budget_totals (key TEXT PRIMARY KEY, total DOUBLE PRECISION NOT NULL)",
            """CREATE TABLE session_labels (
               key TEXT NOT NULL, label TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL,
               PRIMARY KEY (key, label))""",
            "CREATE INDEX session_labels_expires ON session_labels(expires)",
        ),
    ),
    (
        4,
        (  # reviewers as principals; what a reviewer decided (issue 16)
            """CREATE TABLE reviewers (
               name TEXT PRIMARY KEY, roles TEXT NOT NULL, groups_ TEXT NOT NULL, scope_actions TEXT NOT NULL,
               scope_agents TEXT NOT NULL, token_id TEXT UNIQUE, token_hash TEXT, password_hash TEXT,
               created DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL)""",
            "ALTER TABLE escalations ADD COLUMN approvers TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE escalations ADD COLUMN max_grant DOUBLE PRECISION",
            "ALTER TABLE escalations ADD COLUMN call_id TEXT",
            "ALTER TABLE escalations ADD COLUMN credential_id TEXT",
            "ALTER TABLE escalations ADD COLUMN edited_args TEXT",
            "ALTER TABLE escalations ADD COLUMN edited_args_hash TEXT",
            "ALTER TABLE escalations ADD COLUMN message TEXT",
            "ALTER TABLE escalations ADD COLUMN grant_until DOUBLE PRECISION",
            "ALTER TABLE grants ADD COLUMN standing BOOLEAN NOT NULL DEFAULT FALSE",
            "ALTER TABLE grants ADD COLUMN revoked DOUBLE PRECISION",
            "CREATE INDEX grants_standing ON grants(agent_id, action) WHERE standing",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def redact_url(url: str) -> str:
    """The URL without its password (for errors and health): ``postgresql://user@host:port/db``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = (f"{parts.username}@" if parts.username else "") + host + (f":{parts.port}" if parts.port else "")
        return f"{parts.scheme}://{netloc}{parts.path}"
    except ValueError:
        return "postgresql://(unparsable URL)"


class PostgresStateStore:
    """The StateStore on a PostgreSQL database shared by many hosts."""

    def __init__(self, url: str, *, max_size: int = POOL_MAX, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        if psycopg is None or ConnectionPool is None:
            raise ConfigError(
                "STATE_URL is a PostgreSQL URL but psycopg is not installed: pip install 'claw-governance[postgres]'"
            )
        self.url = url
        self.display_url = redact_url(url)
        # autocommit connections: every statement outside _write() is its own transaction, and _write()
        # opens an explicit one (conn.transaction()), so no connection returns to the pool mid-transaction.
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True, "application_name": "claw-governance-state"},
            open=False,
            name="claw-governance-state",
        )
        self._closed = threading.Event()
        self._listener: threading.Thread | None = None
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
            self._migrate()
            # NOTIFY channels are per database, not per schema: the channel names the schema
            schema = self._rows("SELECT current_schema()")[0][0]
            self.channel = "claw_identity_" + hashlib.sha256(str(schema).encode()).hexdigest()[:16]
        except Exception as exc:
            self._pool.close()
            raise ConfigError(f"{self.display_url}: cannot open the PostgreSQL state store: {_one_line(exc)}") from None

    # ------------------------------------------------------------------------------------- plumbing

    @contextlib.contextmanager
    def _write(self) -> Iterator[psycopg.Cursor[Any]]:
        """One transaction (READ COMMITTED): committed when the block ends, rolled back on an exception."""
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read."""
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run one statement in its own transaction; its row count."""
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return int(cur.rowcount)

    def _migrate(self) -> None:
        with self._write() as cur:
            apply_migrations(cur, MIGRATIONS, "claw_schema_migrations", "state store")

    @property
    def schema_version(self) -> int:
        """The newest migration applied to the database."""
        return int(self._rows("SELECT COALESCE(MAX(version), 0) FROM claw_schema_migrations")[0][0])

    def ping(self) -> float:
        """One round trip (``SELECT 1``); its duration in seconds. Raises if the database is unreachable."""
        started = time.perf_counter()
        self._rows("SELECT 1")
        return time.perf_counter() - started

    # ---------------------------------------------------------------------------------- checkpoints

    def put_checkpoint(self, trail_id: str, seq: int, entry_hash: str, signature: str, created: float) -> None:
        """See StateStore. Keeps the checkpoint with the highest seq."""
        self._exec(
            "INSERT INTO checkpoints VALUES (%s,%s,%s,%s,%s) ON CONFLICT (trail_id) DO UPDATE SET "
            "seq=excluded.seq, hash=excluded.hash, signature=excluded.signature, created=excluded.created "
            "WHERE excluded.seq >= checkpoints.seq",
            (trail_id, seq, entry_hash, signature, created),
        )

    def latest_checkpoint(self, trail_id: str) -> dict[str, Any] | None:
        """See StateStore."""
        rows = self._rows("SELECT seq, hash, signature, created FROM checkpoints WHERE trail_id=%s", (trail_id,))
        if not rows:
            return None
        seq, digest, signature, created = rows[0]
        return {"seq": int(seq), "hash": digest, "signature": signature, "created": created}

    # ----------------------------------------------------------------------------------- identities

    def create_identity(self, record: IdentityRecord, key: KeyRecord) -> bool:
        """See StateStore."""
        with self._write() as cur:
            cur.execute(
                "INSERT INTO identities VALUES (%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (agent_id) DO NOTHING",
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
            cur.execute(
                f"INSERT INTO identity_keys ({KEY_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s)",
                (key.key_id, key.agent_id, key.algorithm, key.public_key, key.created, key.retired),
            )
            return True

    def get_identity(self, agent_id: str) -> IdentityRecord | None:
        """See StateStore."""
        rows = self._rows(f"SELECT {IDENTITY_COLUMNS} FROM identities WHERE agent_id=%s", (agent_id,))
        return identity_from_row(rows[0]) if rows else None

    def list_identities(self) -> list[IdentityRecord]:
        """See StateStore."""
        rows = self._rows(f"SELECT {IDENTITY_COLUMNS} FROM identities ORDER BY agent_id")
        return [identity_from_row(r) for r in rows]

    def identity_versions(self) -> dict[str, tuple[str, int]]:
        """See StateStore."""
        return {a: (s, int(v)) for a, s, v in self._rows("SELECT agent_id, status, version FROM identities")}

    def set_identity_status(self, agent_id: str, status: str, reason: str | None, now: float) -> IdentityRecord | None:
        """See StateStore. Other hosts listening (``watch_identities``) hear of it at commit."""
        with self._write() as cur:
            cur.execute(
                f"UPDATE identities SET status=%s, reason=%s, updated=%s, version=version+1 "
                f"WHERE agent_id=%s RETURNING {IDENTITY_COLUMNS}",
                (status, reason, now, agent_id),
            )
            row = cur.fetchone()
            if row is not None:
                cur.execute("SELECT pg_notify(%s, %s)", (self.channel, agent_id))
        return identity_from_row(row) if row else None

    def add_key(self, key: KeyRecord) -> None:
        """See StateStore."""
        self._exec(
            f"INSERT INTO identity_keys ({KEY_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s)",
            (key.key_id, key.agent_id, key.algorithm, key.public_key, key.created, key.retired),
        )

    def activate_key(self, agent_id: str, key_id: str, now: float) -> IdentityRecord | None:
        """See StateStore. The identity row is locked first, so two rotations serialise."""
        with self._write() as cur:
            cur.execute("SELECT key_id FROM identities WHERE agent_id=%s FOR UPDATE", (agent_id,))
            current = cur.fetchone()
            cur.execute("SELECT 1 FROM identity_keys WHERE agent_id=%s AND key_id=%s", (agent_id, key_id))
            if current is None or cur.fetchone() is None:
                return None
            cur.execute(
                "UPDATE identity_keys SET retired=%s WHERE agent_id=%s AND key_id=%s AND key_id != %s "
                "AND retired IS NULL",
                (now, agent_id, current[0], key_id),
            )
            cur.execute(
                f"UPDATE identities SET key_id=%s, updated=%s, version=version+1 WHERE agent_id=%s "
                f"RETURNING {IDENTITY_COLUMNS}",
                (key_id, now, agent_id),
            )
            row = cur.fetchone()
            cur.execute("SELECT pg_notify(%s, %s)", (self.channel, agent_id))
        return identity_from_row(row) if row else None

    def keys(self, agent_id: str) -> list[KeyRecord]:
        """See StateStore."""
        return [
            key_from_row(r)
            for r in self._rows(
                f"SELECT {KEY_COLUMNS} FROM identity_keys WHERE agent_id=%s ORDER BY created, key_id", (agent_id,)
            )
        ]

    # ---------------------------------------------------------------------------------------- trust

    def trust_scores(self) -> dict[str, int]:
        """See StateStore."""
        return {a: int(s) for a, s in self._rows("SELECT agent_id, score FROM trust")}

    def get_trust(self, agent_id: str) -> int | None:
        """See StateStore."""
        rows = self._rows("SELECT score FROM trust WHERE agent_id=%s", (agent_id,))
        return int(rows[0][0]) if rows else None

    def add_trust(self, deltas: Mapping[str, tuple[int, int, int]]) -> list[TrustChange]:
        """See StateStore. One transaction; rows locked in agent-id order; the arithmetic happens in SQL."""
        now = time.time()
        changes = []
        with self._write() as cur:
            for agent_id in sorted(deltas):
                delta, initial, maximum = deltas[agent_id]
                cur.execute(
                    "INSERT INTO trust VALUES (%s,%s,%s) ON CONFLICT (agent_id) DO NOTHING",
                    (agent_id, max(0, initial), now),
                )
                cur.execute("SELECT score FROM trust WHERE agent_id=%s FOR UPDATE", (agent_id,))
                old_row = cur.fetchone()
                cur.execute(
                    "UPDATE trust SET score=LEAST(%s, GREATEST(0, score + %s)), updated=%s WHERE agent_id=%s "
                    "RETURNING score",
                    (maximum, delta, now, agent_id),
                )
                new_row = cur.fetchone()
                assert old_row is not None and new_row is not None
                changes.append(TrustChange(agent_id, int(old_row[0]), int(new_row[0])))
        return changes

    def set_trust(self, agent_id: str, value: int) -> TrustChange:
        """See StateStore."""
        value = max(0, value)
        with self._write() as cur:
            cur.execute("SELECT score FROM trust WHERE agent_id=%s FOR UPDATE", (agent_id,))
            row = cur.fetchone()
            cur.execute(
                "INSERT INTO trust VALUES (%s,%s,%s) ON CONFLICT (agent_id) DO UPDATE SET "
                "score=excluded.score, updated=excluded.updated",
                (agent_id, value, time.time()),
            )
        return TrustChange(agent_id, int(row[0]) if row else value, value)

    # --------------------------------------------------------------------------------------- nonces

    def use_nonce(self, agent_id: str, nonce: str, expires: float) -> bool:
        """See StateStore. The primary key lets exactly one host insert a nonce."""
        return (
            self._exec("INSERT INTO nonces VALUES (%s,%s,%s) ON CONFLICT DO NOTHING", (agent_id, nonce, expires)) == 1
        )

    def purge(self, now: float) -> int:
        """See StateStore."""
        with self._write() as cur:
            cur.execute("DELETE FROM session_labels WHERE expires <= %s", (now,))
            n = cur.rowcount
            cur.execute("DELETE FROM nonces WHERE expires <= %s", (now,))
            n += cur.rowcount
            # the keys with expired events, locked in key order (as add_to_budget locks one key) before any delete
            cur.execute("SELECT DISTINCT key FROM budget_events WHERE expires <= %s ORDER BY key", (now,))
            gone_keys = [str(r[0]) for r in cur.fetchall()]
            for key in gone_keys:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("claw_budget:" + key,))
            if gone_keys:
                cur.execute("DELETE FROM budget_events WHERE expires <= %s AND key = ANY(%s)", (now, gone_keys))
                n += cur.rowcount
                # keep each running total equal to the sum of its remaining events
                cur.execute(
                    "UPDATE budget_totals t SET total = (SELECT COALESCE(SUM(e.amount), 0) FROM budget_events e "
                    "WHERE e.key = t.key) WHERE t.key = ANY(%s)",
                    (gone_keys,),
                )
                cur.execute(
                    "DELETE FROM budget_totals t WHERE t.key = ANY(%s) AND NOT EXISTS "
                    "(SELECT 1 FROM budget_events e WHERE e.key = t.key)",
                    (gone_keys,),
                )
            cur.execute("DELETE FROM grants WHERE consumed IS NOT NULL OR revoked IS NOT NULL OR expires <= %s", (now,))
            n += cur.rowcount
        return int(n)

    # ---------------------------------------------------------------------------------- escalations

    def put_escalation(self, escalation: Escalation) -> None:
        """See StateStore."""
        e = escalation
        self._exec(
            f"INSERT INTO escalations ({ESCALATION_COLUMNS}) VALUES ({','.join(['%s'] * 21)})",
            escalation_row(e),
        )

    def get_escalation(self, escalation_id: str) -> Escalation | None:
        """See StateStore."""
        rows = self._rows(f"SELECT {ESCALATION_COLUMNS} FROM escalations WHERE id=%s", (escalation_id,))
        return escalation_from_row(rows[0]) if rows else None

    def list_escalations(self, status: EscalationStatus | None = None, limit: int = 1000) -> list[Escalation]:
        """See StateStore."""
        if status is None:
            rows = self._rows(f"SELECT {ESCALATION_COLUMNS} FROM escalations ORDER BY created, id LIMIT %s", (limit,))
        else:
            rows = self._rows(
                f"SELECT {ESCALATION_COLUMNS} FROM escalations WHERE status=%s ORDER BY created, id LIMIT %s",
                (status.value, limit),
            )
        return [escalation_from_row(r) for r in rows]

    def expire_escalation(self, escalation_id: str, now: float) -> Escalation | None:
        """See StateStore."""
        rows = self._rows(
            f"UPDATE escalations SET status='expired', resolved_at=%s WHERE id=%s AND "
            f"status='pending' AND expires <= %s RETURNING {ESCALATION_COLUMNS}",
            (now, escalation_id, now),
        )
        return escalation_from_row(rows[0]) if rows else None

    def resolve_escalation(
        self, escalation_id: str, status: EscalationStatus, resolver: str, notes: str, now: float, grant_expires: float
    ) -> Escalation:
        """See StateStore. The escalation's row is locked: of two concurrent resolutions one wins."""
        if status not in (EscalationStatus.APPROVED, EscalationStatus.DENIED):
            raise EscalationError(f"an escalation can only be approved or denied, not {status.value}")
        error: EscalationError | None = None
        with self._write() as cur:
            cur.execute(f"SELECT {ESCALATION_COLUMNS} FROM escalations WHERE id=%s FOR UPDATE", (escalation_id,))
            row = cur.fetchone()
            esc = escalation_from_row(row) if row else None
            try:
                check_resolvable(esc, escalation_id, now)
            except EscalationError as exc:
                error = exc
                if esc is not None and esc.status is EscalationStatus.PENDING:  # time is up: record it
                    cur.execute(
                        "UPDATE escalations SET status='expired', resolved_at=%s WHERE id=%s", (now, escalation_id)
                    )
            if error is None and esc is not None:
                cur.execute(
                    "UPDATE escalations SET status=%s, resolver=%s, notes=%s, resolved_at=%s WHERE id=%s",
                    (status.value, resolver, notes, now, escalation_id),
                )
                if status is EscalationStatus.APPROVED:
                    cur.execute(
                        "INSERT INTO grants (escalation_id, agent_id, action, args_hash, expires) "
                        "VALUES (%s,%s,%s,%s,%s)",
                        (esc.id, esc.agent_id, esc.action, esc.args_hash, grant_expires),
                    )
        if error is not None:
            raise error
        assert esc is not None
        return dataclasses.replace(esc, status=status, resolver=resolver, notes=notes, resolved_at=now)

    def consume_grant(self, agent_id: str, action: str, args_hash: str, now: float) -> str | None:
        """See StateStore. One UPDATE ... RETURNING: a grant is consumed at most once across every host."""
        rows = self._rows(
            "UPDATE grants SET consumed=%s WHERE escalation_id=(SELECT escalation_id FROM grants WHERE "
            "agent_id=%s AND action=%s AND args_hash=%s AND consumed IS NULL AND revoked IS NULL AND NOT standing "
            "AND expires > %s "
            "ORDER BY expires LIMIT 1 FOR UPDATE SKIP LOCKED) AND consumed IS NULL RETURNING escalation_id",
            (now, agent_id, action, args_hash, now),
        )
        return str(rows[0][0]) if rows else None

    # ----------------------------------------------------------------------------------------- jobs

    def put_job(self, job: JobRecord) -> JobRecord:
        """See StateStore. The job row is locked (or created once by ON CONFLICT): one row per job id."""
        with self._write() as cur:
            cur.execute("SELECT agent_id FROM jobs WHERE job_id=%s FOR UPDATE", (job.job_id,))
            row = cur.fetchone()
            if row is not None and row[0] != job.agent_id:
                raise ConfigError(f"job {job.job_id!r} belongs to agent {row[0]!r}, not {job.agent_id!r}")
            cur.execute(
                f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,1) "
                "ON CONFLICT (job_id) DO UPDATE SET scope=excluded.scope, scope_hash=excluded.scope_hash, "
                "policy_hash=excluded.policy_hash, token_id=excluded.token_id, issued=excluded.issued, "
                "expires=excluded.expires, tokens_issued=jobs.tokens_issued + 1 "
                f"WHERE jobs.agent_id = excluded.agent_id RETURNING {JOB_COLUMNS}",
                job_insert_row(job),
            )
            stored = cur.fetchone()
            if stored is None:  # another host created it for another agent meanwhile
                cur.execute("SELECT agent_id FROM jobs WHERE job_id=%s", (job.job_id,))
                other = cur.fetchone()
                raise ConfigError(
                    f"job {job.job_id!r} belongs to agent {other[0] if other else '?'!r}, not {job.agent_id!r}"
                )
        return job_from_row(stored)

    def get_job(self, job_id: str) -> JobRecord | None:
        """See StateStore."""
        rows = self._rows(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id=%s", (job_id,))
        return job_from_row(rows[0]) if rows else None

    def list_jobs(self, limit: int = 1000) -> list[JobRecord]:
        """See StateStore."""
        return [
            job_from_row(r)
            for r in self._rows(f"SELECT {JOB_COLUMNS} FROM jobs ORDER BY issued DESC, job_id LIMIT %s", (limit,))
        ]

    def revoke_job(self, job_id: str, reason: str, now: float) -> JobRecord | None:
        """See StateStore. Idempotent: the first revocation's time and reason stay."""
        with self._write() as cur:
            cur.execute(
                "UPDATE jobs SET status='revoked', revoked_at=%s, reason=%s WHERE job_id=%s AND status != 'revoked'",
                (now, reason, job_id),
            )
            cur.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id=%s", (job_id,))
            row = cur.fetchone()
        return job_from_row(row) if row else None

    def job_versions(self) -> dict[str, tuple[str, str]]:
        """See StateStore."""
        return {j: (s, t) for j, s, t in self._rows("SELECT job_id, status, token_id FROM jobs")}

    # ------------------------------------------------------------------------------- policy archive

    def archive_policy(self, policy_hash: str, files: Mapping[str, str], now: float) -> None:
        """See StateStore. INSERT ... ON CONFLICT: created once, then only ``last_seen`` moves."""
        self._exec(
            "INSERT INTO policy_versions VALUES (%s,%s,%s,%s) ON CONFLICT (policy_hash) DO UPDATE SET "
            "last_seen=excluded.last_seen",
            (policy_hash, orjson.dumps(dict(files)).decode(), now, now),
        )

    def get_policy_version(self, policy_hash: str) -> PolicyVersion | None:
        """See StateStore."""
        rows = self._rows(f"SELECT {POLICY_VERSION_COLUMNS} FROM policy_versions WHERE policy_hash=%s", (policy_hash,))
        return policy_version_from_row(rows[0]) if rows else None

    def list_policy_versions(self, limit: int = 1000) -> list[PolicyVersion]:
        """See StateStore."""
        return [
            policy_version_from_row(r)
            for r in self._rows(
                f"SELECT {POLICY_VERSION_COLUMNS} FROM policy_versions ORDER BY first_seen, policy_hash LIMIT %s",
                (limit,),
            )
        ]

    # -------------------------------------------------------------------------------------- budgets

    def add_to_budget(
        self, key: str, amount: float, limit: float, window_seconds: float, now: float, *, force: bool = False
    ) -> BudgetUse:
        """See StateStore. ``pg_advisory_xact_lock(hashtext(key))`` serialises the calls of one key across
        hosts until commit; the running total in ``budget_totals`` keeps the cost independent of the window."""
        start = now - window_seconds
        with self._write() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("claw_budget:" + key,))
            cur.execute("DELETE FROM budget_events WHERE key = %s AND at <= %s RETURNING amount", (key, start))
            gone = [float(r[0]) for r in cur.fetchall()]
            if gone:
                cur.execute(
                    "UPDATE budget_totals SET total = CASE WHEN EXISTS (SELECT 1 FROM budget_events WHERE "
                    "key = %s) THEN total - %s ELSE 0 END WHERE key = %s",
                    (key, sum(gone), key),
                )
            cur.execute("SELECT total FROM budget_totals WHERE key = %s", (key,))
            row = cur.fetchone()
            used = float(row[0]) if row else 0.0
            if budget_refuses(used, amount, limit, force=force):
                return BudgetUse(False, used)
            cur.execute("INSERT INTO budget_events VALUES (%s,%s,%s,%s)", (key, now, amount, now + window_seconds))
            cur.execute(
                "INSERT INTO budget_totals VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET total = %s",
                (key, used + amount, used + amount),
            )
            return BudgetUse(True, used + amount)

    def session_labels(self, key: str, add: frozenset[str], now: float, ttl_seconds: float) -> frozenset[str]:
        """See StateStore. INSERT ... ON CONFLICT extends a label's expiry (never shortens it)."""
        if add:
            with self._write() as cur:
                cur.executemany(
                    "INSERT INTO session_labels VALUES (%s,%s,%s) ON CONFLICT (key, label) DO UPDATE SET "
                    "expires = GREATEST(session_labels.expires, excluded.expires)",
                    [(key, label, now + ttl_seconds) for label in sorted(add)],
                )
                cur.execute("SELECT label FROM session_labels WHERE key = %s AND expires > %s", (key, now))
                rows = cur.fetchall()
        else:
            rows = self._rows("SELECT label FROM session_labels WHERE key = %s AND expires > %s", (key, now))
        return frozenset(str(r[0]) for r in rows)

    # ------------------------------------------------------------------------------------ reviewers

    def put_reviewer(self, record: ReviewerRecord) -> bool:
        """See StateStore. A taken name or token id: False and no change."""
        return (
            self._exec(
                f"INSERT INTO reviewers ({REVIEWER_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT DO NOTHING",
                reviewer_row(record),
            )
            == 1
        )

    def replace_reviewer(self, record: ReviewerRecord) -> bool:
        """See StateStore. One UPDATE statement."""
        row = reviewer_row(record)
        return (
            self._exec(
                "UPDATE reviewers SET roles=%s, groups_=%s, scope_actions=%s, scope_agents=%s, token_id=%s, "
                "token_hash=%s, password_hash=%s, created=%s, updated=%s WHERE name=%s",
                (*row[1:], row[0]),
            )
            == 1
        )

    def get_reviewer(self, name: str) -> ReviewerRecord | None:
        """See StateStore."""
        rows = self._rows(f"SELECT {REVIEWER_COLUMNS} FROM reviewers WHERE name=%s", (name,))
        return reviewer_from_row(rows[0]) if rows else None

    def reviewer_by_token(self, token_id: str) -> ReviewerRecord | None:
        """See StateStore."""
        rows = self._rows(f"SELECT {REVIEWER_COLUMNS} FROM reviewers WHERE token_id=%s", (token_id,))
        return reviewer_from_row(rows[0]) if rows else None

    def list_reviewers(self) -> list[ReviewerRecord]:
        """See StateStore."""
        return [reviewer_from_row(r) for r in self._rows(f"SELECT {REVIEWER_COLUMNS} FROM reviewers ORDER BY name")]

    def delete_reviewer(self, name: str) -> bool:
        """See StateStore."""
        return self._exec("DELETE FROM reviewers WHERE name=%s", (name,)) == 1

    def settle_escalation(self, escalation_id: str, resolution: Resolution, now: float) -> Escalation:
        """See StateStore. The escalation's row is locked FOR UPDATE: check, update and the grant in one
        transaction, so of two concurrent settlements exactly one succeeds."""
        if resolution.status not in (EscalationStatus.APPROVED, EscalationStatus.DENIED):
            raise EscalationError(f"an escalation can only be approved or denied, not {resolution.status.value}")
        error: EscalationError | None = None
        done: Escalation | None = None
        with self._write() as cur:
            cur.execute(f"SELECT {ESCALATION_COLUMNS} FROM escalations WHERE id=%s FOR UPDATE", (escalation_id,))
            row = cur.fetchone()
            esc = escalation_from_row(row) if row else None
            try:
                check_resolvable(esc, escalation_id, now)
            except EscalationError as exc:
                error = exc
                if esc is not None and esc.status is EscalationStatus.PENDING:  # time is up: record it
                    cur.execute(
                        "UPDATE escalations SET status='expired', resolved_at=%s WHERE id=%s", (now, escalation_id)
                    )
            if error is None and esc is not None:
                done = settled(esc, resolution, now)
                cur.execute(
                    "UPDATE escalations SET status=%s, resolver=%s, notes=%s, resolved_at=%s, credential_id=%s, "
                    "edited_args=%s, edited_args_hash=%s, message=%s, grant_until=%s WHERE id=%s",
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
                    cur.execute(
                        f"INSERT INTO grants ({GRANT_COLUMNS}) VALUES (%s,%s,%s,%s,%s,NULL,%s,NULL)",
                        (esc.id, esc.agent_id, esc.action, bound, resolution.grant_expires, standing),
                    )
        if error is not None:
            raise error
        assert done is not None
        return done

    def use_standing_grant(self, agent_id: str, action: str, now: float) -> str | None:
        """See StateStore. A read: a standing grant is not consumed."""
        rows = self._rows(
            "SELECT escalation_id FROM grants WHERE agent_id=%s AND action=%s AND standing AND revoked IS NULL "
            "AND expires > %s ORDER BY expires DESC LIMIT 1",
            (agent_id, action, now),
        )
        return str(rows[0][0]) if rows else None

    def revoke_grant(self, escalation_id: str, now: float) -> bool:
        """See StateStore. One UPDATE ... WHERE still valid: a grant is revoked once."""
        return (
            self._exec(
                "UPDATE grants SET revoked=%s WHERE escalation_id=%s AND revoked IS NULL AND consumed IS NULL "
                "AND expires > %s",
                (now, escalation_id, now),
            )
            == 1
        )

    def list_grants(self, now: float, active_only: bool = True) -> list[GrantRecord]:
        """See StateStore."""
        if active_only:
            rows = self._rows(
                f"SELECT {GRANT_COLUMNS} FROM grants WHERE consumed IS NULL AND revoked IS NULL AND expires > %s "
                "ORDER BY expires, escalation_id",
                (now,),
            )
        else:
            rows = self._rows(f"SELECT {GRANT_COLUMNS} FROM grants ORDER BY expires, escalation_id")
        return [grant_from_row(r) for r in rows]

    def watch_identities(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(agent_id)`` as soon as any host revokes, reinstates or rotates an identity.

        LISTEN/NOTIFY on a connection of its own, in a daemon thread that reconnects after errors. It only
        makes changes arrive sooner: the periodic sync (``STATE_SYNC_INTERVAL``) stays the guarantee.
        """
        if self._listener is not None:
            return
        self._listener = threading.Thread(target=self._listen, args=(callback,), name="claw-state-listen", daemon=True)
        self._listener.start()

    def _listen(self, callback: Callable[[str], None]) -> None:
        assert psycopg is not None
        while not self._closed.is_set():
            try:
                with psycopg.connect(
                    self.url, autocommit=True, connect_timeout=10, application_name="claw-governance-listen"
                ) as conn:
                    conn.execute(f'LISTEN "{self.channel}"')
                    while not self._closed.is_set():
                        for note in conn.notifies(timeout=0.5):
                            with contextlib.suppress(Exception):
                                callback(note.payload)
            except Exception as exc:
                log.warning("claw-governance state listener: %s; retrying", _one_line(exc))
                self._closed.wait(2.0)

    def close(self) -> None:
        """Close the pool and stop the listener (idempotent)."""
        self._closed.set()
        if self._listener is not None and self._listener is not threading.current_thread():
            self._listener.join(timeout=5)
        with contextlib.suppress(Exception):
            self._pool.close()


def apply_migrations(cur: Any, migrations: tuple[tuple[int, tuple[str, ...]], ...], table: str, what: str) -> int:
    """Apply the ``migrations`` newer than the versions recorded in ``table``, inside the caller's transaction.

    A transaction-scoped advisory lock (per schema and table) makes hosts that start together migrate once.
    A database newer than ``migrations`` raises ConfigError. Returns the schema version now in force.
    """
    newest = migrations[-1][0]
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s || current_schema()))", (f"claw_governance:{table}:",))
    cur.execute(f"CREATE TABLE IF NOT EXISTS {table} (version INTEGER PRIMARY KEY, applied DOUBLE PRECISION NOT NULL)")
    cur.execute(f"SELECT COALESCE(MAX(version), 0) FROM {table}")
    row = cur.fetchone()
    current = int(row[0]) if row else 0
    if current > newest:
        raise ConfigError(
            f"{what} schema version {current} is newer than this claw-governance understands ({newest}); "
            "upgrade claw-governance"
        )
    for version, statements in migrations:
        if version <= current:
            continue
        for statement in statements:
            cur.execute(statement)
        cur.execute(f"INSERT INTO {table} VALUES (%s, %s)", (version, time.time()))
    return max(current, newest)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
