"""The audit trail writer: one hash chain per trail, shared safely by threads and processes.

Concurrency model: **one chain, one lock.** Every append takes a ``threading.Lock`` (threads of this
process) and then ``flock(LOCK_EX)`` on ``<trail>/.lock`` (other processes). Under the lock the writer checks
with one ``lseek`` whether someone else appended, rotated or died mid-write: each of those changes the size
of the segment it holds (a rotating writer closes the old segment with a checkpoint before it moves on); if
so it re-reads the chain head from the file's tail, or opens the new segment. The entry is then
written with a single ``write(2)`` on an ``O_APPEND`` descriptor, so it reaches the operating system (and
survives the death of this process) before ``append`` returns.

``durability="fsync"``: after the write, the caller waits for an ``fsync`` that covers its entry. The first
waiter becomes the leader and syncs everything written so far; entries written meanwhile by other threads
ride on the next sync (group commit).

A writer that died mid-write leaves an incomplete last line. The next writer (at open, or when it finds the
file changed under the lock) moves those bytes to ``<segment>.torn-<offset>``, truncates the segment to its
last complete entry and appends a ``repair`` entry that names the quarantined file and the bytes' SHA-256:
reported, repaired, never silently dropped.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from claw_governance.audit.canonical import SORTED, NonCanonicalKey
from claw_governance.audit.keys import PublicKey, SigningKey
from claw_governance.audit.layout import (
    CHECKPOINT_FILE,
    FORMAT,
    LOCK_FILE,
    RETENTION_FILE,
    TRAIL_FILE,
    checkpoint_message,
    entry_line,
    exact_entry_line,
    genesis_hash,
    iter_lines,
    list_segments,
    parse_entry,
    read_json_file,
    record_message,
    segment_name,
    write_json_atomic,
)
from claw_governance.audit.redaction import DEFAULT_REDACTOR, Redactor
from claw_governance.audit.verify import (
    Anchor,
    VerifyReport,
    anchor_from_dict,
    load_trail_meta,
    trail_keys,
    verify_directory,
    verify_lines,
)
from claw_governance.config import GovernorConfig
from claw_governance.errors import AuditError
from claw_governance.model import AuditEvent, new_id

__all__ = ["AuditTrail", "RetentionRule", "VerifyReport", "open_trail"]

DAY = 86400.0
_TAIL_CHUNK = 65536


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """How long entries are kept: ``default_days``, or a policy's ``audit.retention`` for its agent."""

    default_days: int
    per_agent: Mapping[str, int] = field(default_factory=dict)

    def days(self, agent_id: str | None) -> int:
        """Retention for entries of ``agent_id`` (system entries use the default)."""
        if agent_id is None:
            return self.default_days
        return self.per_agent.get(agent_id, self.per_agent.get("*", self.default_days))

    @property
    def min_days(self) -> int:
        """The shortest retention of any agent."""
        return min([self.default_days, *self.per_agent.values()])

    @property
    def max_days(self) -> int:
        """The longest retention of any agent."""
        return max([self.default_days, *self.per_agent.values()])


@dataclass(slots=True)
class _Head:
    seq: int
    prev: str


def _when(value: float | str | date | datetime | None) -> float | None:
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, str):  # ISO, Unix seconds, "7d", "yesterday": the one shared parser
        from claw_governance.timeparse import parse_when

        return parse_when(value)
    if isinstance(value, datetime):
        return value.timestamp() if value.tzinfo else value.replace(tzinfo=UTC).timestamp()
    return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()


def glob_matcher(pattern: str) -> Callable[[str], bool]:
    """``*`` matches any run of characters; nothing else is special (as in policies)."""
    import re

    regex = re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)
    return lambda text: regex.fullmatch(text) is not None


class AuditTrail:
    """A hash-chained, checkpointed audit trail in a folder of JSON Lines segments (or in memory).

    Use :func:`open_trail`. ``append`` returns the entry's seq and raises ``AuditError`` if the entry could not
    be written (the governor then denies the call).
    """

    def __init__(self, path: Path | None, *, key: SigningKey | None = None, store: Any = None,
                 retention_days: int = 2555, rotation_size_mb: float = 100.0, checkpoint_interval: int = 1000,
                 checkpoint_seconds: float = 60.0, durability: str = "os",
                 redactor: Redactor = DEFAULT_REDACTOR) -> None:
        self.path = path
        self.key = key or SigningKey.generate()
        self.store = store
        self.retention = RetentionRule(retention_days)
        self.rotation_bytes = max(1, int(rotation_size_mb * 1024 * 1024))
        self.checkpoint_interval = max(1, int(checkpoint_interval))
        self.checkpoint_seconds = checkpoint_seconds
        self.durability = durability
        self.redactor = redactor
        self.trail_id = new_id()
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._closed = False
        self._head = _Head(0, genesis_hash(self.trail_id))
        self._memory: list[bytes] | None = [] if path is None else None
        self._lock_fd = -1
        self._fd = -1
        self._segment: Path | None = None
        self._end = 0
        self._synced = 0
        self._fsyncs = 0  # group commits done (entries / fsyncs = mean group size)
        self._sync_cond = threading.Condition(threading.Lock())
        self._sync_wanted = 0
        self._sync_errors = 0
        self._stop_syncer = False
        self._syncer: threading.Thread | None = None
        self._last_group = 0
        self.commit_delay = 0.0002  # seconds the syncer waits for more entries before each fsync
        self._last_cp_seq = 0
        self._last_cp_time = time.monotonic()
        # The copies of a checkpoint outside the log (state store, checkpoint.json) cost a signature, a SQLite
        # write and an atomic file write: a background thread makes them, so no append waits for them.
        self._outside_lock = threading.Lock()
        self._outside_pending: tuple[int, str, float] | None = None
        self._outside_written = 0
        self._outside_wake = threading.Event()
        self._outside_thread: threading.Thread | None = None
        self._outside_stop = False
        self._failing: str | None = None
        self._last_error: str | None = None
        self._repairs: list[dict[str, Any]] = []
        self._appended = 0
        self._written_seq = 0
        self._meta_keys: dict[str, PublicKey] = {}
        if path is not None:
            try:
                self._open_disk()
            except (OSError, AuditError, ValueError) as exc:
                # Fail closed but stay alive: every append raises until the folder becomes writable again.
                self._fail(exc)
            if self._repairs and self._failing is None:
                self._flush_pending()

    # ------------------------------------------------------------------------------------------- opening

    def _open_disk(self) -> None:
        assert self.path is not None
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            self._load_or_create_meta()
            self._open_newest_segment()
            self._last_cp_seq = self._head.seq  # the interval counts what this writer adds
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _load_or_create_meta(self) -> None:
        assert self.path is not None
        meta_path = self.path / TRAIL_FILE
        key_entry = {"key_id": self.key.public.key_id, "public_key": self.key.public.hex, "added": time.time()}
        if not meta_path.exists():
            if list_segments(self.path):
                raise AuditError(f"{meta_path} is missing but the folder holds segments: refusing to start a new "
                                 "chain over an existing one")
            meta: dict[str, Any] = {"format": FORMAT, "trail_id": new_id(), "created": time.time(),
                                    "keys": [key_entry]}
            write_json_atomic(meta_path, meta, sync=True)
        else:
            try:
                meta = load_trail_meta(self.path)
            except ValueError as exc:
                raise AuditError(str(exc)) from None
            if self.key.public.key_id not in trail_keys(meta):
                meta = {**meta, "keys": [*list(meta.get("keys") or []), key_entry]}
                write_json_atomic(meta_path, meta, sync=True)
        self.trail_id = str(meta["trail_id"])
        self._meta_keys = trail_keys(meta)

    def _open_newest_segment(self) -> None:
        assert self.path is not None
        segments = list_segments(self.path)
        if not segments:
            self._new_segment(1)
            self._head = _Head(0, genesis_hash(self.trail_id))
            return
        _first, path = segments[-1]
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._segment = path
        self._recover_head(segments)

    def _new_segment(self, first_seq: int) -> None:
        assert self.path is not None
        path = self.path / segment_name(first_seq)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._segment, self._end = fd, path, os.fstat(fd).st_size
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        if self.durability != "fsync" or self.path is None:
            return
        dfd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _recover_head(self, segments: list[tuple[int, Path]]) -> None:
        """Find the chain head from the newest segment's tail; quarantine a torn last line."""
        assert self._segment is not None
        size = os.fstat(self._fd).st_size
        tail, start = self._read_tail(self._segment, size)
        if tail and not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n") + 1
            torn = tail[cut:]
            offset = start + cut
            quarantine = self._segment.with_name(f"{self._segment.name}.torn-{offset}")
            with open(quarantine, "wb") as fh:
                fh.write(torn)
            os.ftruncate(self._fd, offset)
            self._repairs.append({"event": "torn_tail_repaired", "segment": self._segment.name, "offset": offset,
                                  "bytes": len(torn), "sha256": hashlib.sha256(torn).hexdigest(),
                                  "quarantine": quarantine.name})
            tail = tail[:cut]
            size = offset
        self._end = size
        head = _last_entry(tail)
        if head is None and size > len(tail):
            head = _last_entry(self._segment.read_bytes()[:size])
        if head is None:
            # An empty (just rotated) or unreadable newest segment: the head is in the segment before it.
            name_first = next(s for s, p in segments if p == self._segment)
            older = [p for s, p in segments if s < name_first]
            for path in reversed(older):
                found = _last_entry(path.read_bytes())
                if found is not None:
                    head = found
                    break
        if head is None:
            self._head = _Head(0, genesis_hash(self.trail_id))
        else:
            self._head = _Head(head[0], head[1])

    @staticmethod
    def _read_tail(path: Path, size: int) -> tuple[bytes, int]:
        start = max(0, size - _TAIL_CHUNK)
        with open(path, "rb") as fh:
            fh.seek(start)
            return fh.read(size - start), start

    # ---------------------------------------------------------------------------------------- appending

    def set_retention(self, rule: RetentionRule) -> None:
        """Use per-agent retention (the plugin passes the policies' ``audit.retention``)."""
        self.retention = rule

    def append(self, event: AuditEvent) -> int:
        """Redact, chain and write one entry; return its seq. Raises AuditError if it cannot be written."""
        return self.append_parts(event.type, event.agent_id, event.action, event.context, event.decision,
                                 event.policy_hash, event.details, event.sensitive_fields, event.trusted_decision,
                                 event.meta)

    def append_parts(self, entry_type: str, agent_id: str | None, action: str | None, context: Any, decision: Any,
                     policy_hash: str | None, details: Any, sensitive_fields: frozenset[str] = frozenset(),
                     trusted_decision: bool = False, meta: Any = None) -> int:
        """``append`` with the AuditEvent's fields given one by one (the governor's fast path: no event
        object is built when the built-in trail is the only audit plugin)."""
        redactor = self.redactor.with_keys(sensitive_fields) if sensitive_fields else self.redactor
        exact = False
        try:
            try:
                context = None if context is None else redactor.for_audit(context)
                details = None if details is None else redactor.for_audit(details)
                decision = None if decision is None else (
                    decision if trusted_decision else redactor.for_audit(decision))
            except NonCanonicalKey:
                exact = True
                context = None if context is None else redactor.for_audit(context, strict=True)
                details = None if details is None else redactor.for_audit(details, strict=True)
                decision = None if decision is None else redactor.for_audit(decision, strict=True)
        except Exception as exc:  # a value the redactor cannot walk must not crash the caller silently
            raise AuditError(f"cannot prepare the audit entry: {type(exc).__name__}: {exc}") from exc
        if meta:
            details = {**(details or {}), **meta}
        kind = _text(entry_type) or "unknown"
        head = {"action": _text(action), "agent_id": _text(agent_id), "context": context,
                "decision": decision, "details": details, "policy_hash": _text(policy_hash)}
        prefix = None
        if not exact:
            # Serialise everything but the chain fields now, outside the lock: in sorted order the chain's
            # prev_hash, seq and timestamp fall between policy_hash and type, so under the lock the entry is
            # this prefix with them spliced in (the same bytes as serialising the whole entry).
            try:  # (not contextlib.suppress: this is the hot path, and suppress costs three calls)
                prefix = orjson.dumps(head, option=SORTED)[:-1]
            except (TypeError, orjson.JSONEncodeError):  # the slow path below handles it
                prefix = None
        if prefix is not None:
            seq = self._append_fields(None, False, prefix, _type_json(kind))
        else:
            head["type"] = kind
            seq = self._append_fields(head, exact)
        if self.durability == "fsync" and self._memory is None:
            self._wait_synced(seq)
        return seq

    def _flush_pending(self) -> None:
        """Write pending repair entries now (under both locks)."""
        with self._lock:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                self._sync_head_locked()
            except OSError as exc:
                self._fail(exc)
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _append_fields(self, fields: dict[str, Any] | None, exact: bool, prefix: bytes = b"",
                       type_json: bytes = b"") -> int:
        """Append one entry: ``fields`` (a whole entry but the chain fields), or else the serialised
        ``prefix`` and ``type_json`` of ``append_parts``."""
        rotated = False
        with self._lock:
            if self._closed:
                raise AuditError("the audit trail is closed")
            if self._memory is not None:
                seq = (self._write_locked(fields, exact) if fields is not None
                       else self._write_prefix_locked(prefix, type_json))
                self._maybe_checkpoint_locked()
                return seq
            if self._fd < 0:
                self._reopen_locked()
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            except OSError as exc:
                self._fail(exc)
                raise AuditError(f"cannot lock the audit trail: {exc}") from exc
            try:
                self._sync_head_locked()
                if self._end >= self.rotation_bytes:
                    self._rotate_locked()
                    rotated = True
                seq = (self._write_locked(fields, exact) if fields is not None
                       else self._write_prefix_locked(prefix, type_json))
                self._maybe_checkpoint_locked()
            except OSError as exc:
                self._fail(exc)
                raise AuditError(f"cannot write the audit trail: {exc}") from exc
            finally:
                # Not contextlib.suppress (three calls on the hot path). Unlocking a valid fd does not fail,
                # and must never mask the entry's own outcome.
                try:  # noqa: SIM105
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                except OSError:
                    pass
            if self._failing is not None:
                self._failing = None
        if rotated:
            try:
                self.apply_retention()
            except (OSError, AuditError) as exc:  # retention can wait for the next rotation; the entry is safe
                self._last_error = f"retention: {exc}"
        return seq

    def _reopen_locked(self) -> None:
        try:
            if self._lock_fd < 0:
                self._open_disk()
            else:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
                try:
                    self._open_newest_segment()
                finally:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        except (OSError, AuditError, ValueError) as exc:
            self._fail(exc)
            raise AuditError(f"the audit trail cannot be opened: {self._failing}") from exc

    def _sync_head_locked(self) -> None:
        # lseek is the cheapest way to learn the size. Every change another writer makes to this segment
        # changes its size, rotation included: a rotating writer first appends a checkpoint to the old segment.
        if os.lseek(self._fd, 0, os.SEEK_END) == self._end:
            if self._repairs:
                self._write_repairs_locked()
            return
        # Another process appended, rotated or died mid-write: re-read the head under the lock.
        st = os.fstat(self._fd)
        assert self.path is not None
        segments = list_segments(self.path)
        if not st.st_mode & 0o200 or (segments and segments[-1][1] != self._segment):
            self._open_newest_segment()
        else:
            self._recover_head(segments)
        self._write_repairs_locked()

    def _write_repairs_locked(self) -> None:
        while self._repairs:
            repair = self._repairs.pop(0)
            self._write_locked({"action": None, "agent_id": None, "context": None, "decision": None,
                                "details": repair, "policy_hash": None, "type": "repair"}, False)

    def _rotate_locked(self) -> None:
        # The closing checkpoint signs the old segment's last entry and, by growing the file, tells every other
        # writer (see _sync_head_locked) to look for the new segment.
        self._checkpoint_locked()
        old_fd, old_path = self._fd, self._segment
        assert old_path is not None
        if self.durability == "fsync":
            with self._sync_lock:  # the syncer thread must not be fsyncing the fd we are closing
                os.fsync(old_fd)
                self._fd = -1
                self._new_segment(self._head.seq + 1)
                os.close(old_fd)
            with self._sync_cond:
                self._synced = max(self._synced, self._written_seq)
                self._sync_cond.notify_all()
        else:
            self._fd = -1
            self._new_segment(self._head.seq + 1)
            os.close(old_fd)
        with contextlib.suppress(OSError):
            os.chmod(old_path, 0o444)  # sealed: also tells other writers (via fstat) that we rotated

    def _write_locked(self, fields: dict[str, Any], exact: bool) -> int:
        head = self._head
        seq = head.seq + 1
        now = time.time()
        fields["seq"] = seq
        fields["prev_hash"] = head.prev
        fields["timestamp"] = int(now) if now.is_integer() else now
        try:
            line, digest = exact_entry_line(fields) if exact else entry_line(fields)
        except (TypeError, orjson.JSONEncodeError):
            # Something the fast walk let through (e.g. a lone surrogate): redo it the slow, exact way.
            fields = {k: (DEFAULT_REDACTOR.for_audit(v, strict=True) if isinstance(v, dict) else v)
                      for k, v in fields.items()}
            line, digest = exact_entry_line(fields)
        return self._emit_locked(line, digest, seq)

    def _write_prefix_locked(self, prefix: bytes, type_json: bytes) -> int:
        head = self._head
        seq = head.seq + 1
        now = time.time()
        body = b"".join((prefix, b',"prev_hash":"', head.prev.encode(), b'","seq":', str(seq).encode(),
                         b',"timestamp":', orjson.dumps(int(now) if now.is_integer() else now),
                         b',"type":', type_json))
        digest = hashlib.sha256(body + b"}").hexdigest()
        return self._emit_locked(body + b',"hash":"' + digest.encode() + b'"}\n', digest, seq)

    def _emit_locked(self, line: bytes, digest: str, seq: int) -> int:
        head = self._head
        if self._memory is not None:
            self._memory.append(line)
        else:
            written = os.write(self._fd, line)
            if written != len(line):
                # A short write (disk full): take the partial line back so the trail stays well formed.
                os.ftruncate(self._fd, self._end)
                raise OSError(errno.ENOSPC, f"short write to {self._segment} ({written} of {len(line)} bytes)")
            self._end += written
        head.seq = seq
        head.prev = digest
        self._written_seq = seq
        self._appended += 1
        return seq

    def _maybe_checkpoint_locked(self) -> None:
        due = self._head.seq - self._last_cp_seq
        if due >= self.checkpoint_interval or (due and time.monotonic() - self._last_cp_time
                                               >= self.checkpoint_seconds):
            self._checkpoint_locked()

    def _checkpoint_locked(self, *, defer: bool = True) -> None:
        """Write a signed checkpoint entry and record it outside the log (state store + checkpoint.json).

        With ``defer`` the outside copies are made by the background thread (an automatic checkpoint during
        an append); without it, before returning (``checkpoint()`` and ``close()``)."""
        cp_seq, cp_hash = self._head.seq, self._head.prev
        created = time.time()
        details = {"checkpoint_seq": cp_seq, "checkpoint_hash": cp_hash, "trail_id": self.trail_id,
                   "key_id": self.key.public.key_id, "created": created,
                   "signature": self.key.sign(checkpoint_message(self.trail_id, cp_seq, cp_hash))}
        self._write_locked({"action": None, "agent_id": None, "context": None, "decision": None,
                            "details": details, "policy_hash": None, "type": "checkpoint"}, False)
        self._last_cp_seq = self._head.seq
        self._last_cp_time = time.monotonic()
        pending = (self._head.seq, self._head.prev, created)
        if not defer:
            self._persist_outside(*pending)
            return
        with self._outside_lock:
            self._outside_pending = pending
            if self._outside_thread is None:
                self._outside_thread = threading.Thread(target=self._outside_loop, name="claw-audit-checkpoint",
                                                        daemon=True)
                self._outside_thread.start()
        self._outside_wake.set()

    def _persist_outside(self, seq: int, digest: str, created: float) -> None:
        """Store a checkpoint outside the log; never goes backwards (an older one arriving late is skipped)."""
        with self._outside_lock:
            if seq <= self._outside_written:
                return
            # A signature over the checkpoint entry itself, so even that entry cannot be cut off unseen.
            signature = self.key.sign(checkpoint_message(self.trail_id, seq, digest))
            record = {"trail_id": self.trail_id, "seq": seq, "hash": digest, "signature": signature,
                      "key_id": self.key.public.key_id, "created": created}
            try:
                if self.store is not None:
                    self.store.put_checkpoint(self.trail_id, seq, digest, signature, created)
                if self.path is not None:
                    write_json_atomic(self.path / CHECKPOINT_FILE, record, sync=self.durability == "fsync")
                self._outside_written = seq
            except Exception as exc:  # the entry itself is safe; show the missing outside copy in health
                self._last_error = f"checkpoint not stored outside the log: {type(exc).__name__}: {exc}"

    def _outside_loop(self) -> None:
        while True:
            self._outside_wake.wait()
            self._outside_wake.clear()
            with self._outside_lock:
                pending, self._outside_pending = self._outside_pending, None
            if pending is not None:
                self._persist_outside(*pending)
            if self._outside_stop:
                return

    def _drain_outside(self) -> None:
        """Stop the background thread and store any checkpoint it had not stored yet."""
        thread = self._outside_thread
        if thread is not None:
            self._outside_stop = True
            self._outside_wake.set()
            thread.join(timeout=10)
            self._outside_thread = None
            self._outside_stop = False
        with self._outside_lock:
            pending, self._outside_pending = self._outside_pending, None
        if pending is not None:
            self._persist_outside(*pending)

    def checkpoint(self) -> int:
        """Write a signed checkpoint now; return the seq it covers."""
        with self._lock:
            if self._memory is not None:
                self._checkpoint_locked(defer=False)
                return self._head.seq
            if self._fd < 0:
                self._reopen_locked()
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                self._sync_head_locked()
                self._checkpoint_locked(defer=False)
                seq = self._head.seq
            except OSError as exc:
                self._fail(exc)
                raise AuditError(f"cannot write a checkpoint: {exc}") from exc
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        if self.durability == "fsync":
            self._wait_synced(seq)
        return seq

    def _wait_synced(self, seq: int) -> None:
        """Block until an fsync covers ``seq`` (group commit through one syncer thread)."""
        if self._synced >= seq:
            return
        cond = self._sync_cond
        with cond:
            if self._syncer is None:
                self._syncer = threading.Thread(target=self._syncer_loop, name="claw-audit-fsync", daemon=True)
                self._syncer.start()
            if seq > self._sync_wanted:
                self._sync_wanted = seq
                cond.notify_all()
            errors = self._sync_errors
            while self._synced < seq:
                if self._sync_errors != errors:
                    raise AuditError(f"cannot fsync the audit trail: {self._last_error}")
                cond.wait()

    def _syncer_loop(self) -> None:
        # One fsync after another while anyone waits: every entry written during an fsync is covered by the
        # next one, so with N busy threads each fsync covers about N entries.
        cond = self._sync_cond
        while True:
            with cond:
                while not self._stop_syncer and self._sync_wanted <= self._synced:
                    cond.wait()
                if self._sync_wanted <= self._synced:
                    return
            if self.commit_delay and self._last_group > 1:
                # Like PostgreSQL's commit_delay, and only when several threads are committing (the last group
                # held more than one entry): let them add their entries to this group before the fsync.
                time.sleep(self.commit_delay)
            error: BaseException | None = None
            with self._sync_lock:  # rotation swaps the descriptor under this lock
                target = self._written_seq  # everything up to here was written before we read it
                try:
                    if self._fd < 0:
                        raise OSError(errno.EBADF, "the audit trail is closed")
                    os.fsync(self._fd)
                except OSError as exc:
                    error = exc
            with cond:
                if error is None:
                    self._last_group = target - self._synced
                    self._synced = max(self._synced, target)
                    self._fsyncs += 1
                else:
                    self._fail(error)
                    self._sync_errors += 1
                    self._sync_wanted = self._synced  # the waiters raise; new appends ask again
                cond.notify_all()

    def _stop_sync_thread(self) -> None:
        with self._sync_cond:
            self._stop_syncer = True
            self._sync_cond.notify_all()
            thread = self._syncer
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    def _fail(self, exc: BaseException) -> None:
        self._failing = f"{type(exc).__name__}: {exc}"
        self._last_error = self._failing

    # ------------------------------------------------------------------------------------------ reading

    def _snapshot(self) -> dict[str, int] | None:
        if self.path is None or self._lock_fd < 0:
            return None
        with self._lock:
            fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
            try:
                return {p.name: p.stat().st_size for _, p in list_segments(self.path)}
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _raw_lines(self) -> Iterator[bytes]:
        if self._memory is not None:
            with self._lock:
                lines = list(self._memory)
            yield from lines
            return
        assert self.path is not None
        snapshot = self._snapshot()
        for _, path in list_segments(self.path):
            if snapshot is not None and path.name not in snapshot:
                continue
            try:
                yield from iter_lines(path, None if snapshot is None else snapshot[path.name])
            except FileNotFoundError:  # removed by retention while we read
                continue

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every entry, oldest first (lines that are not entries are skipped; ``verify`` reports them)."""
        for line in self._raw_lines():
            entry = parse_entry(line)
            if entry is not None:
                yield entry

    def anchors(self) -> list[Anchor]:
        """Checkpoints outside the log: the state store's, and this writer's own head."""
        found: list[Anchor] = []
        if self.store is not None:
            try:
                stored = self.store.latest_checkpoint(self.trail_id)
            except Exception:
                stored = None
            anchor = anchor_from_dict(stored, "the state store")
            if anchor is not None:
                found.append(anchor)
        if self._written_seq:
            found.append(Anchor(self._head.seq, self._head.prev, "this process's memory"))
        return found

    def verify(self, public_keys: list[PublicKey] | None = None) -> VerifyReport:
        """Recompute the whole chain (streaming) and check every signed checkpoint and outside anchor."""
        keys = [self.key.public, *(public_keys or [])]
        if self._memory is not None:
            with self._lock:
                lines = list(self._memory)
                head = self._head.seq
            anchors = [a for a in self.anchors() if a.seq <= head]
            return verify_lines(self.trail_id, lines, keys, anchors)
        assert self.path is not None
        if self._lock_fd < 0:
            return verify_directory(self.path, trusted_keys=None)
        with self._lock:
            snapshot = self._snapshot_unlocked()
            anchors = self.anchors()
        trusted = {**self._meta_keys, **{k.key_id: k for k in keys}}
        return verify_directory(self.path, trusted_keys=list(trusted.values()), anchors=anchors,
                                snapshot=snapshot)

    def _snapshot_unlocked(self) -> dict[str, int]:
        assert self.path is not None
        fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
        try:
            return {p.name: p.stat().st_size for _, p in list_segments(self.path)}
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def query(self, agent_id: str | None = None, type: str | None = None, action: str | None = None,
              allowed: bool | None = None, outcome: str | None = None,
              since: float | str | date | datetime | None = None,
              until: float | str | date | datetime | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Entries matching every given filter, oldest first.

        ``action`` is a glob (``*`` only); ``since``/``until`` are Unix seconds, ISO strings, dates or datetimes
        (``until`` is exclusive); ``limit`` keeps the first ``limit`` matches.
        """
        return list(query_entries(self.entries(), agent_id=agent_id, type=type, action=action, allowed=allowed,
                                  outcome=outcome, since=since, until=until, limit=limit))

    # ---------------------------------------------------------------------------------------- retention

    def apply_retention(self, now: float | None = None) -> list[str]:
        """Remove whole sealed segments whose every entry is past its retention; return their names.

        Before any file is deleted a signed record is appended to ``retention.jsonl`` and a ``retention`` entry
        to the log, so the remaining trail still verifies (its first entry is vouched for by the record).
        """
        if self.path is None or self._lock_fd < 0:
            return []
        now = time.time() if now is None else now
        rule = self.retention
        with self._lock:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                self._sync_head_locked()
                segments = list_segments(self.path)
                removable: list[tuple[int, Path, dict[str, Any]]] = []
                for first, path in segments[:-1]:  # never the newest (it is being written)
                    summary = _summarise(path)
                    if summary is None or not _expired(summary, rule, now):
                        break
                    removable.append((first, path, summary))
                if not removable:
                    return []
                resume_seq = segments[len(removable)][0]
                resume_prev = removable[-1][2]["last_hash"]
                record: dict[str, Any] = {
                    "trail_id": self.trail_id, "created": now, "key_id": self.key.public.key_id,
                    "resume_seq": resume_seq, "resume_prev_hash": resume_prev,
                    "retention_days": rule.default_days,
                    "removed": [{"segment": p.name, "first_seq": s["first_seq"], "last_seq": s["last_seq"],
                                 "last_hash": s["last_hash"], "last_timestamp": s["last_ts"]}
                                for _, p, s in removable]}
                record = DEFAULT_REDACTOR.for_audit(record, strict=True)
                record["signature"] = self.key.sign(record_message(record))
                fd = os.open(self.path / RETENTION_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n")
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self._write_locked({"action": None, "agent_id": None, "context": None, "decision": None,
                                    "details": record, "policy_hash": None, "type": "retention"}, True)
                for _, path, _ in removable:
                    path.unlink()
                return [p.name for _, p, _ in removable]
            except OSError as exc:
                raise AuditError(f"retention failed: {exc}") from exc
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    # ------------------------------------------------------------------------------------------- health

    def health(self) -> dict[str, Any]:
        """``{"status": "ok"|"degraded"|"down", ...}`` for ``health_check()``."""
        status = "down" if self._failing else ("degraded" if self._last_error else "ok")
        return {"status": status, "path": None if self.path is None else str(self.path),
                "trail_id": self.trail_id, "last_seq": self._head.seq, "appended": self._appended,
                "durability": self.durability, "segment": None if self._segment is None else self._segment.name,
                "last_checkpoint_seq": self._last_cp_seq, "last_error": self._last_error,
                "repairs": list(self._repairs_done()), "key_id": self.key.public.key_id,
                "fsyncs": self._fsyncs}

    def _repairs_done(self) -> Iterator[str]:
        if self._memory is not None or self.path is None:
            return
        for item in self.path.glob("segment-*.torn-*"):
            yield item.name

    def close(self) -> None:
        """Checkpoint (if anything was written since the last one), sync and close. Idempotent."""
        self._stop_sync_thread()
        self._drain_outside()
        with self._lock:
            if self._closed:
                return
            if self._head.seq > self._last_cp_seq and self._appended:
                try:
                    if self._memory is not None:
                        self._checkpoint_locked(defer=False)
                    elif self._fd >= 0:
                        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
                        try:
                            self._sync_head_locked()
                            self._checkpoint_locked(defer=False)
                        finally:
                            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                except OSError as exc:
                    self._fail(exc)
            self._closed = True
            if self._fd >= 0:
                with contextlib.suppress(OSError):
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


_TYPE_JSON: dict[str, bytes] = {}


def _type_json(kind: str) -> bytes:
    """The serialised ``type`` value (entry types are few: cached)."""
    found = _TYPE_JSON.get(kind)
    if found is None:
        found = orjson.dumps(kind)
        if len(_TYPE_JSON) < 64:
            _TYPE_JSON[kind] = found
    return found


def _last_entry(data: bytes) -> tuple[int, str] | None:
    """(seq, hash) of the last line of ``data`` that is a complete entry."""
    end = len(data)
    while end > 0:
        start = data.rfind(b"\n", 0, end - 1) + 1
        line = data[start:end]
        end = start
        entry = parse_entry(line)
        if entry is not None and isinstance(entry.get("seq"), int) and isinstance(entry.get("hash"), str):
            return entry["seq"], entry["hash"]
    return None


def _summarise(path: Path) -> dict[str, Any] | None:
    """First/last seq, last hash and timestamps of a sealed segment, and each agent's newest timestamp."""
    summary: dict[str, Any] = {"first_seq": None, "last_seq": None, "last_hash": None, "last_ts": 0.0,
                               "agents": {}}
    agents: dict[str | None, float] = summary["agents"]
    for line in iter_lines(path):
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None  # a damaged segment is kept: retention must not destroy evidence of tampering
        if not isinstance(entry, dict):
            return None
        ts = entry.get("timestamp")
        ts = float(ts) if isinstance(ts, int | float) else 0.0
        if summary["first_seq"] is None:
            summary["first_seq"] = entry.get("seq")
        summary["last_seq"], summary["last_hash"] = entry.get("seq"), entry.get("hash")
        summary["last_ts"] = max(summary["last_ts"], ts)
        if entry.get("type") != "checkpoint":  # a checkpoint vouches for the entries before it: it has no
            agent = entry.get("agent_id")       # retention of its own (else it would pin every segment)
            agents[agent] = max(agents.get(agent, 0.0), ts)
    return summary if summary["last_hash"] else None


def _expired(summary: dict[str, Any], rule: RetentionRule, now: float) -> bool:
    if summary["last_ts"] < now - rule.max_days * DAY:
        return True  # older than the longest retention of anyone: no need to look at agents
    return all(ts < now - rule.days(agent) * DAY for agent, ts in summary["agents"].items())


def query_entries(entries: Iterator[dict[str, Any]], *, agent_id: str | None = None, type: str | None = None,
                  action: str | None = None, allowed: bool | None = None, outcome: str | None = None,
                  since: float | str | date | datetime | None = None,
                  until: float | str | date | datetime | None = None,
                  limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Filter a stream of entries (see ``AuditTrail.query``)."""
    lo, hi = _when(since), _when(until)
    match_action = glob_matcher(action) if action is not None else None
    found = 0
    for entry in entries:
        if limit is not None and found >= limit:
            return
        if agent_id is not None and entry.get("agent_id") != agent_id:
            continue
        if type is not None and entry.get("type") != type:
            continue
        if match_action is not None and not match_action(str(entry.get("action") or "")):
            continue
        raw_decision = entry.get("decision")
        decision: dict[str, Any] = raw_decision if isinstance(raw_decision, dict) else {}
        if allowed is not None and decision.get("allowed") is not allowed:
            continue
        if outcome is not None and decision.get("outcome") != outcome:
            continue
        ts = entry.get("timestamp")
        if lo is not None and not (isinstance(ts, int | float) and ts >= lo):
            continue
        if hi is not None and not (isinstance(ts, int | float) and ts < hi):
            continue
        found += 1
        yield entry


def open_trail(config: GovernorConfig, store: Any = None) -> AuditTrail:
    """The trail for a governor's settings (in memory when ``config.audit_path`` is None).

    The governor's signing key lives at ``<state>/governor_ed25519.pem`` (mode 0600); without a state path it
    is kept in memory, and its public half is listed in the trail's ``trail.json`` either way.
    """
    try:
        key = SigningKey.load_or_create(config.resolved_state_path)
    except OSError as exc:
        raise AuditError(f"cannot create the governor's audit key in {config.resolved_state_path}: {exc}") from None
    trail = AuditTrail(config.audit_path, key=key, store=store, retention_days=config.audit_retention_days,
                       rotation_size_mb=config.audit_rotation_size_mb,
                       checkpoint_interval=config.audit_checkpoint_interval, durability=config.durability)
    if config.audit_path is not None and trail.health()["status"] != "down":
        try:
            trail.apply_retention()
        except AuditError as exc:
            trail._last_error = str(exc)
    return trail


def read_checkpoint_file(directory: Path) -> dict[str, Any] | None:
    """The ``checkpoint.json`` of a trail folder, or None."""
    try:
        data = read_json_file(directory / CHECKPOINT_FILE)
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
