"""The fleet-wide audit view: each host's local trail copied to PostgreSQL in the background.

The local trail stays the write-ahead record: a call waits only for its local entry, never for the database.
``AuditReplicator`` tails the trail folder's segment files (it never takes the writer's lock and never touches
``audit.trail``), and copies every complete line, byte for byte, into ``claw_audit_entries`` keyed by
``(trail_id, seq)`` with ``ON CONFLICT DO NOTHING``: a copy restarted, or several processes of one host copying
the same trail, never duplicates a row. The trail's description (``trail.json``: its public keys), its
retention records and its newest outside checkpoint (``checkpoint.json``) are copied too; the checkpoint only
once every entry up to it is in the database, so the database never holds an anchor its rows cannot meet.

A database outage shows as ``degraded`` with the lag (entries and seconds) in ``health()`` and the metrics;
the copy resumes where the database's rows end when it is back.

``FleetReader`` reads the database for ``claw-gov audit query|report|verify --store URL``: entries of every
trail, and verification of each trail's rows against their hash chain and signed checkpoints
(``verify_trail_rows``, the one place that calls the verifier).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson

from claw_governance.audit.keys import PublicKey
from claw_governance.audit.layout import (
    CHECKPOINT_FILE,
    RETENTION_FILE,
    TRAIL_FILE,
    list_segments,
    read_json_file,
)
from claw_governance.audit.trail import query_entries
from claw_governance.audit.verify import Anchor, VerifyReport, anchor_from_dict, verify_entries
from claw_governance.errors import AuditError, ConfigError
from claw_governance.state.postgres import apply_migrations, redact_url

log = logging.getLogger("claw_governance.audit")

BATCH = 2000  # rows per transaction
INTERVAL = 1.0  # seconds between rounds
MAX_BACKOFF = 30.0  # seconds between rounds while the database is down
CLOSE_TIMEOUT = 5.0  # seconds close() spends on a final round

#: (version, statements) of the audit tables; append only.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE claw_audit_trails (
                   trail_id TEXT PRIMARY KEY, host TEXT NOT NULL, path TEXT NOT NULL, meta TEXT NOT NULL,
                   retention TEXT NOT NULL DEFAULT '[]', first_seen DOUBLE PRECISION NOT NULL,
                   last_seen DOUBLE PRECISION NOT NULL)""",
            """CREATE TABLE claw_audit_entries (
                   trail_id TEXT NOT NULL, seq BIGINT NOT NULL, line TEXT NOT NULL, ts DOUBLE PRECISION,
                   type TEXT, agent_id TEXT, action TEXT, outcome TEXT, PRIMARY KEY (trail_id, seq))""",
            "CREATE INDEX claw_audit_entries_ts ON claw_audit_entries (ts)",
            "CREATE INDEX claw_audit_entries_agent ON claw_audit_entries (agent_id, ts)",
            """CREATE TABLE claw_audit_checkpoints (
                   trail_id TEXT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL, signature TEXT,
                   body TEXT NOT NULL, created DOUBLE PRECISION NOT NULL)""",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def _connect(url: str, application_name: str = "claw-audit-sink") -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigError(
            "AUDIT_SINK is a PostgreSQL URL but psycopg is not installed: pip install 'claw-governance[postgres]'"
        ) from None
    return psycopg.connect(url, autocommit=True, connect_timeout=10, application_name=application_name)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def prepare(conn: Any) -> None:
    """Create or upgrade the audit tables (idempotent; one host at a time)."""
    with conn.transaction(), conn.cursor() as cur:
        apply_migrations(cur, MIGRATIONS, "claw_audit_schema_migrations", "audit sink")


@dataclass(frozen=True, slots=True)
class _Row:
    seq: int
    line: str
    ts: float | None
    type: str | None
    agent_id: str | None
    action: str | None
    outcome: str | None


def _row(line: bytes) -> _Row | None:
    """The row for one complete line, or None for a line that is not an entry (it then shows as a gap)."""
    try:
        entry = orjson.loads(line)
        seq = entry["seq"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if not isinstance(seq, int) or isinstance(seq, bool):
        return None
    decision = entry.get("decision")
    ts = entry.get("timestamp")

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    return _Row(
        seq,
        line.decode("utf-8", errors="surrogateescape"),
        float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else None,
        text(entry.get("type")),
        text(entry.get("agent_id")),
        text(entry.get("action")),
        text(decision.get("outcome")) if isinstance(decision, dict) else None,
    )


class AuditReplicator:
    """Copies one trail folder to PostgreSQL in a background thread (``start``), or a round at a time (``sync``)."""

    def __init__(self, trail_path: Path, url: str, *, interval: float = INTERVAL, host: str | None = None) -> None:
        try:
            import psycopg  # noqa: F401  (checked now: a missing extra is a configuration error, not a lag)
        except ImportError:
            raise ConfigError(
                "AUDIT_SINK is a PostgreSQL URL but psycopg is not installed: pip install 'claw-governance[postgres]'"
            ) from None
        self.path = Path(trail_path)
        self.url = url
        self.display_url = redact_url(url)
        self.interval = interval
        self.host = host or socket.gethostname()
        self.trail_id: str | None = None
        self.replicated_seq = 0  # the newest seq known to be in the database (contiguous copy)
        self.local_seq = 0  # the newest complete entry seen in the files
        self.oldest_unreplicated: float | None = None  # timestamp of the oldest entry not yet copied
        self.copied = 0  # rows this replicator inserted
        self.last_error: str | None = None
        self.last_success: float | None = None
        self.rounds = 0
        self._conn: Any = None
        self._position: tuple[int, int] | None = None  # (segment first seq, byte offset) to read from
        self._checkpoint_copied: tuple[int, str | None] | None = None
        self._meta_mtime: tuple[float, float] = (0.0, 0.0)
        self._lock = threading.Lock()  # one round at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = interval

    # ----------------------------------------------------------------------------------- the thread

    def start(self) -> AuditReplicator:
        """Run rounds in a daemon thread every ``interval`` seconds (backing off while the database is down)."""
        self._thread = threading.Thread(target=self._run, name="claw-audit-sink", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._backoff):
            self.sync()

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Stop the thread after one last round (bounded by ``timeout``: a dead database never holds up exit)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._lock.acquire(timeout=timeout):
            try:
                if self.last_error is None or self._conn is not None:
                    self._round_locked()
            except Exception as exc:
                self._note_error(exc)
            finally:
                self._lock.release()
        with contextlib.suppress(Exception):
            if self._conn is not None:
                self._conn.close()
        self._conn = None

    # ------------------------------------------------------------------------------------ one round

    def sync(self) -> int:
        """One round: copy what is new; the number of rows copied. Errors are kept for health, never raised."""
        with self._lock:
            try:
                copied = self._round_locked()
            except Exception as exc:
                self._note_error(exc)
                self._backoff = min(MAX_BACKOFF, max(self.interval, self._backoff * 2))
                return 0
            self._backoff = self.interval
            return copied

    def _note_error(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {_one_line(exc)}"
        if message != self.last_error:
            log.error("claw-governance audit sink %s: %s", self.display_url, message)
        self.last_error = message
        with contextlib.suppress(Exception):
            if self._conn is not None:
                self._conn.close()
        self._conn = None  # reconnect next round
        self._position = None  # and re-read from where the database's rows end: nothing read is lost

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            conn = _connect(self.url)
            prepare(conn)
            self._conn = conn
        return self._conn

    def _round_locked(self) -> int:
        self.rounds += 1
        meta = self._read_meta()
        if meta is None:
            return 0  # no trail yet
        self._observe_local_head()  # before the database: an outage must still show how far behind it is
        conn = self._connection()
        trail_id = meta["trail_id"]
        if trail_id != self.trail_id:
            self.trail_id = trail_id
            self._position = None
            self._checkpoint_copied = None
            self._meta_mtime = (0.0, 0.0)
        self._copy_meta(conn, meta)
        if self._position is None:
            row = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM claw_audit_entries WHERE trail_id=%s", (trail_id,)
            ).fetchone()
            self.replicated_seq = int(row[0])
        copied = 0
        batch: list[_Row] = []
        for row_ in self._new_rows():
            batch.append(row_)
            if len(batch) >= BATCH:
                copied += self._insert(conn, trail_id, batch)
                batch = []
        if batch:
            copied += self._insert(conn, trail_id, batch)
        self._copy_checkpoint(conn, trail_id)
        self.last_error = None
        self.last_success = time.time()
        if self.replicated_seq >= self.local_seq:
            self.oldest_unreplicated = None
        return copied

    def _observe_local_head(self) -> None:
        """The newest complete entry of the trail (read from the end of the newest segment): the lag's top."""
        segments = list_segments(self.path)
        if not segments:
            return
        try:
            with open(segments[-1][1], "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - 65536))
                tail = fh.read()
        except OSError:
            return
        for line in reversed(tail.splitlines(keepends=True)):
            row = _row(line) if line.endswith(b"\n") else None
            if row is not None:
                self.local_seq = max(self.local_seq, row.seq)
                break
        if self.local_seq > self.replicated_seq and self.oldest_unreplicated is None:
            self.oldest_unreplicated = time.time()  # noticed now: the lag's age is at least this

    def _read_meta(self) -> dict[str, Any] | None:
        try:
            meta = read_json_file(self.path / TRAIL_FILE)
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError) as exc:
            raise AuditError(f"{self.path / TRAIL_FILE} cannot be read: {exc}") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("trail_id"), str):
            raise AuditError(f"{self.path / TRAIL_FILE} is not a trail description")
        return meta

    def _copy_meta(self, conn: Any, meta: dict[str, Any]) -> None:
        """trail.json (its keys) and retention.jsonl, whenever either file changed."""
        stamps = []
        for name in (TRAIL_FILE, RETENTION_FILE):
            try:
                stamps.append(os.stat(self.path / name).st_mtime)
            except FileNotFoundError:
                stamps.append(0.0)
        mtimes = (stamps[0], stamps[1])
        if mtimes == self._meta_mtime:
            return
        records = []
        with contextlib.suppress(FileNotFoundError):
            for raw in (self.path / RETENTION_FILE).read_bytes().splitlines():
                with contextlib.suppress(orjson.JSONDecodeError):
                    record = orjson.loads(raw)
                    if isinstance(record, dict):
                        records.append(record)
        now = time.time()
        conn.execute(
            "INSERT INTO claw_audit_trails VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (trail_id) DO UPDATE SET "
            "host=excluded.host, path=excluded.path, meta=excluded.meta, retention=excluded.retention, "
            "last_seen=excluded.last_seen",
            (
                meta["trail_id"],
                self.host,
                str(self.path.resolve()),
                orjson.dumps(meta).decode(),
                orjson.dumps(records).decode(),
                now,
                now,
            ),
        )
        self._meta_mtime = mtimes

    def _new_rows(self) -> Iterator[_Row]:
        """Complete lines after ``replicated_seq``, oldest first; remembers where the reading stopped."""
        segments = list_segments(self.path)
        if not segments:
            return
        if self._position is None:
            # resume: the newest segment that starts at or before the first seq still to copy
            start = self.replicated_seq + 1
            candidates = [first for first, _ in segments if first <= start]
            self._position = (candidates[-1] if candidates else segments[0][0], 0)
        first_seq, offset = self._position
        for seg_first, path in segments:
            if seg_first < first_seq:
                continue
            begin = offset if seg_first == first_seq else 0
            try:
                with open(path, "rb") as fh:
                    fh.seek(begin)
                    pos = begin
                    for line in fh:
                        if not line.endswith(b"\n"):
                            break  # a line being written: next round
                        pos += len(line)
                        row = _row(line)
                        if row is None:
                            continue
                        self.local_seq = max(self.local_seq, row.seq)
                        if row.seq <= self.replicated_seq:
                            continue
                        if self.oldest_unreplicated is None and row.ts is not None:
                            self.oldest_unreplicated = row.ts
                        yield row
            except FileNotFoundError:
                continue  # removed by retention meanwhile
            self._position = (seg_first, pos)

    def _insert(self, conn: Any, trail_id: str, rows: list[_Row]) -> int:
        # COPY into a session-local staging table, then one INSERT ... ON CONFLICT DO NOTHING: the bulk speed
        # of COPY with the idempotence COPY alone does not have.
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS claw_sink_batch (LIKE claw_audit_entries) ON COMMIT DELETE ROWS"
            )
            with cur.copy("COPY claw_sink_batch FROM STDIN") as copy:
                for r in rows:
                    copy.write_row((trail_id, r.seq, r.line, r.ts, r.type, r.agent_id, r.action, r.outcome))
            cur.execute("INSERT INTO claw_audit_entries SELECT * FROM claw_sink_batch ON CONFLICT DO NOTHING")
        self.replicated_seq = max(self.replicated_seq, rows[-1].seq)
        self.copied += len(rows)
        self.oldest_unreplicated = None
        return len(rows)

    def _copy_checkpoint(self, conn: Any, trail_id: str) -> None:
        """checkpoint.json, once the entries it names are in the database."""
        try:
            body = read_json_file(self.path / CHECKPOINT_FILE)
        except (OSError, orjson.JSONDecodeError):
            return
        anchor = anchor_from_dict(body, CHECKPOINT_FILE)
        if anchor is None or not isinstance(body, dict) or body.get("trail_id") != trail_id:
            return
        if anchor.seq > self.replicated_seq or self._checkpoint_copied == (anchor.seq, anchor.hash):
            return
        created = body.get("created")
        conn.execute(
            "INSERT INTO claw_audit_checkpoints VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (trail_id) DO UPDATE SET "
            "seq=excluded.seq, hash=excluded.hash, signature=excluded.signature, body=excluded.body, "
            "created=excluded.created WHERE excluded.seq >= claw_audit_checkpoints.seq",
            (
                trail_id,
                anchor.seq,
                anchor.hash,
                anchor.note,
                orjson.dumps(body).decode(),
                float(created) if isinstance(created, int | float) else time.time(),
            ),
        )
        self._checkpoint_copied = (anchor.seq, anchor.hash)

    # ---------------------------------------------------------------------------------------- health

    def lag(self) -> dict[str, Any]:
        """Entries seen locally but not yet in the database, and the age of the oldest of them."""
        entries = max(0, self.local_seq - self.replicated_seq)
        seconds = 0.0
        if entries and self.oldest_unreplicated is not None:
            seconds = max(0.0, time.time() - self.oldest_unreplicated)
        return {"entries": entries, "seconds": round(seconds, 3)}

    def health(self) -> dict[str, Any]:
        """``{"status": "ok"|"degraded", ...}``: degraded while the database cannot be written."""
        return {
            "status": "degraded" if self.last_error else "ok",
            "url": self.display_url,
            "trail_id": self.trail_id,
            "replicated_seq": self.replicated_seq,
            "local_seq": self.local_seq,
            "lag": self.lag(),
            "copied": self.copied,
            "last_success": self.last_success,
            "last_error": self.last_error,
        }


# ------------------------------------------------------------------------------------------ reading


def verify_trail_rows(
    trail_id: str,
    lines: Iterable[bytes],
    keys: Iterable[PublicKey],
    anchors: Iterable[Anchor] = (),
    retention: list[dict[str, Any]] | None = None,
    source: str = "database",
) -> VerifyReport:
    """Verify one trail's rows (complete lines, oldest first): hash chain, seq, RFC 6962 tree, signed in-log
    checkpoints, signed retention records and the outside checkpoints (signed notes) in ``anchors``, trusting
    only ``keys``. The one function through which the fleet view uses the verifier (``verify_entries``)."""
    return verify_entries(
        lines,
        trail_id=trail_id,
        trusted_keys=keys,
        checkpoints=[a.note for a in anchors if a.note],
        retention_records=retention or (),
        source=source,
    )


class FleetReader:
    """Every trail copied to one database, read like a trail (``entries``, ``query``, ``verify``).

    ``public_keys``: the keys to trust for every trail; without them each trail's own keys as copied from its
    ``trail.json`` are used, and the report says so (``key_source``).
    """

    def __init__(self, url: str, *, public_keys: list[PublicKey] | None = None, trail_id: str | None = None) -> None:
        self.url = url
        self.display_url = redact_url(url)
        self.public_keys = public_keys
        self.only = trail_id
        try:
            self._conn = _connect(url, "claw-audit-reader")
            prepare(self._conn)
        except ConfigError:
            raise
        except Exception as exc:
            raise AuditError(f"{self.display_url}: cannot read the fleet audit store: {_one_line(exc)}") from None

    def close(self) -> None:
        """Close the connection."""
        with contextlib.suppress(Exception):
            self._conn.close()

    def trails(self) -> list[dict[str, Any]]:
        """``{"trail_id", "host", "path", "entries", "last_seq", "last_seen"}`` of every trail."""
        rows = self._conn.execute(
            "SELECT t.trail_id, t.host, t.path, t.last_seen, COUNT(e.seq), COALESCE(MAX(e.seq), 0) "
            "FROM claw_audit_trails t LEFT JOIN claw_audit_entries e ON e.trail_id = t.trail_id "
            "GROUP BY t.trail_id ORDER BY t.host, t.trail_id"
        ).fetchall()
        return [
            {"trail_id": t, "host": h, "path": p, "last_seen": s, "entries": int(n), "last_seq": int(m)}
            for t, h, p, s, n, m in rows
            if self.only is None or t == self.only
        ]

    def entries(
        self,
        agent_id: str | None = None,
        type: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every entry of every trail, by time; each carries ``trail_id`` (which host's trail it came from)."""
        where: list[str] = ["TRUE"]
        params: list[Any] = []
        for column, value in (("trail_id", self.only), ("agent_id", agent_id), ("type", type)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        if since is not None:
            where.append("ts >= %s")
            params.append(since)
        if until is not None:
            where.append("ts < %s")
            params.append(until)
        # a server-side cursor (in a read transaction): constant memory however large the fleet's trail
        with self._conn.transaction(), self._conn.cursor(name=f"claw_fleet_{os.urandom(4).hex()}") as cur:
            cur.execute(
                f"SELECT trail_id, line FROM claw_audit_entries WHERE {' AND '.join(where)} ORDER BY ts, trail_id, seq",
                params,
            )
            for trail_id, line in cur:
                entry = orjson.loads(line)
                entry["trail_id"] = trail_id
                yield entry

    def query(
        self,
        agent_id: str | None = None,
        type: str | None = None,
        action: str | None = None,
        allowed: bool | None = None,
        outcome: str | None = None,
        since: float | str | date | datetime | None = None,
        until: float | str | date | datetime | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """As ``AuditTrail.query``, over every trail (agent and type filtered in the database)."""
        return list(
            query_entries(
                self.entries(agent_id=agent_id, type=type),
                agent_id=agent_id,
                type=type,
                action=action,
                allowed=allowed,
                outcome=outcome,
                since=since,
                until=until,
                limit=limit,
            )
        )

    def verify_trail(self, trail_id: str) -> VerifyReport:
        """Verify one trail's rows with the trusted keys (or its own copied keys) and its copied checkpoint."""
        row = self._conn.execute(
            "SELECT meta, retention FROM claw_audit_trails WHERE trail_id=%s", (trail_id,)
        ).fetchone()
        if row is None:
            return VerifyReport(False, 0, ({"segment": None, "seq": None, "message": f"no trail {trail_id}"},))
        retention = orjson.loads(row[1])
        # Only keys given by the caller vouch for a trail, never a key copied from its trail.json.
        keys, key_source = list(self.public_keys or []), "given" if self.public_keys else "none"
        anchors = []
        cp = self._conn.execute(
            "SELECT seq, hash, signature FROM claw_audit_checkpoints WHERE trail_id=%s", (trail_id,)
        ).fetchone()
        if cp is not None:
            anchor = anchor_from_dict({"seq": int(cp[0]), "hash": cp[1], "signature": cp[2]}, "the database")
            if anchor is not None:
                anchors.append(anchor)
        source = f"trail {trail_id}"
        with self._conn.transaction(), self._conn.cursor(name=f"claw_verify_{os.urandom(4).hex()}") as cur:
            cur.execute("SELECT line FROM claw_audit_entries WHERE trail_id=%s ORDER BY seq", (trail_id,))
            lines = (line.encode("utf-8", errors="surrogateescape") for (line,) in cur)
            report = verify_trail_rows(trail_id, lines, keys, anchors, retention, source)
        return VerifyReport(
            report.valid,
            report.entries,
            report.errors,
            report.warnings,
            trail_id,
            report.first_seq,
            report.last_seq,
            report.last_hash,
            report.segments,
            report.checkpoints,
            key_source,
        )

    def verify(self, **options: Any) -> VerifyReport:
        """Every trail verified; one combined report (errors name their trail), valid only if all are.

        (Witness options of ``TrailReader.verify`` are accepted for a uniform CLI; the fleet view checks the
        signed checkpoints copied with each trail.)"""
        trails = self.trails()
        if not trails:
            return VerifyReport(False, 0, ({"segment": None, "seq": None, "message": "no trail in the database"},))
        reports = [self.verify_trail(t["trail_id"]) for t in trails]
        errors = tuple(e for r in reports for e in r.errors)
        warnings = tuple(f"trail {r.trail_id}: {w}" for r in reports for w in r.warnings)
        return VerifyReport(
            all(r.valid for r in reports),
            sum(r.entries for r in reports),
            errors,
            warnings,
            ",".join(str(r.trail_id) for r in reports),
            min(r.first_seq for r in reports),
            max(r.last_seq for r in reports),
            None,
            len(reports),
            sum(r.checkpoints for r in reports),
            reports[0].key_source,
        )
