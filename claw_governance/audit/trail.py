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
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson

from claw_governance.audit.canonical import SORTED, NonCanonicalKey, canonical_copy
from claw_governance.audit.groupcommit import GroupCommit
from claw_governance.audit.keys import PublicKey, SigningKey
from claw_governance.audit.layout import (
    CHECKPOINT_FILE,
    FORMAT,
    GENERATION_SHIFT,
    LOCK_FILE,
    RETENTION_FILE,
    TRAIL_FILE,
    entry_line,
    exact_entry_line,
    exact_hash,
    genesis_hash,
    iter_lines,
    latest_for_path,
    list_segments,
    origin_for,
    parse_entry,
    path_keys,
    read_json_file,
    record_message,
    segment_name,
    write_json_atomic,
)
from claw_governance.audit.merkle import CompactRange
from claw_governance.audit.mirror import CheckpointMirror
from claw_governance.audit.note import Checkpoint, format_checkpoint, parse_checkpoint, sign_note
from claw_governance.audit.query import glob_matcher, query_entries
from claw_governance.audit.redaction import DEFAULT_REDACTOR, Redactor
from claw_governance.audit.retention import RetentionRule, expired, retention_record, summarise
from claw_governance.audit.verify import (
    Anchor,
    VerifyReport,
    Witness,
    anchor_from_dict,
    load_trail_meta,
    trail_keys,
    verify_directory,
    verify_entries,
)
from claw_governance.audit.watch import SegmentWatch, open_watch
from claw_governance.config import GovernorConfig
from claw_governance.errors import AuditError
from claw_governance.model import AuditEvent, new_id

__all__ = [
    "AuditTrail",
    "RetentionRule",
    "TrailRefused",
    "TrailTampered",
    "VerifyReport",
    "glob_matcher",
    "open_trail",
    "query_entries",
]


class TrailRefused(AuditError):
    """The trail at this path is not the one the state store (or a witness) knows: refusing to start."""


class TrailTampered(AuditError):
    """The running writer saw its trail go back (cut, unlinked, replaced): every append is denied."""


_TAIL_CHUNK = 65536
_SEEK_END = os.SEEK_END
_LEAF_PREFIX = hashlib.sha256(b"\x00")  # copied per leaf: RFC 6962 leaf = SHA-256(0x00 || line)
_sha256 = hashlib.sha256


@dataclass(slots=True)
class _Head:
    seq: int
    prev: str


class AuditTrail:
    """A hash-chained, checkpointed audit trail in a folder of JSON Lines segments (or in memory).

    Use :func:`open_trail`. ``append`` returns the entry's seq and raises ``AuditError`` if the entry could not
    be written (the governor then denies the call).
    """

    def __init__(
        self,
        path: Path | None,
        *,
        key: SigningKey | None = None,
        store: Any = None,
        retention_days: int = 2555,
        rotation_size_mb: float = 100.0,
        checkpoint_interval: int = 1000,
        checkpoint_seconds: float = 60.0,
        durability: str = "os",
        redactor: Redactor = DEFAULT_REDACTOR,
        reset: dict[str, Any] | None = None,
        witnesses: Any = None,
    ) -> None:
        # Absolute from the start: a later chdir must not move the trail, and every folder above it is watched.
        self.path = Path(os.path.abspath(path)) if path is not None else None
        self.key = key or SigningKey.generate()
        self.store = store
        self.retention = RetentionRule(retention_days)
        self.rotation_bytes = max(1, int(rotation_size_mb * 1024 * 1024))
        self.checkpoint_interval = max(1, int(checkpoint_interval))
        self.checkpoint_seconds = checkpoint_seconds
        self.durability = durability
        self.redactor = redactor
        self.trail_id = new_id()
        self.origin = origin_for(self.trail_id)
        self.generation = 0
        self._reset = reset
        self.witnesses = witnesses  # a WitnessClient (or None): gets each checkpoint in the background
        # The Merkle tree over every entry line: ``_tree`` plus ``_pending`` (leaf hashes not merged in yet:
        # the append path hashes its leaf; the node hashes are done in a batch at checkpoint time).
        self._tree = CompactRange()
        self._pending: list[bytes] = []
        self._tampered: str | None = None
        self._ino = 0
        self._rfd = -1
        # Linux: an inotify watch tells, for one epoll_wait, that the segment was unlinked, replaced or sealed
        # (see watch.py); elsewhere (None) every append does the full fstat check.
        self._watch: SegmentWatch | None = open_watch(self.path) if self.path is not None else None
        self._lock = threading.Lock()
        self._closed = False
        self._head = _Head(0, genesis_hash(self.trail_id))
        self._memory: list[bytes] | None = [] if path is None else None
        self._lock_fd = -1
        self._lock_ino = 0
        self._sealed_at = -1  # the seq of the closing checkpoint of a rotation that could not open its segment
        self._fd = -1
        self._segment: Path | None = None
        self._end = 0
        self._commit = GroupCommit(lambda: self._fd, lambda: self._written_seq, self._fail)
        self._last_cp_seq = 0
        self._time_check_seq = 0
        self._last_cp_time = time.monotonic()
        self._mirror = CheckpointMirror(self)
        self._failing: str | None = None
        self._last_error: str | None = None
        self._repairs: list[dict[str, Any]] = []
        self._appended = 0
        self._written_seq = 0
        if self.path is not None:
            _OPEN.add(self)
            try:
                self._open_disk()
            except TrailRefused:
                self._close_fds()
                raise
            except (OSError, AuditError, ValueError) as exc:
                # Fail closed but stay alive: every append raises until the folder becomes writable again
                # (_open_disk leaves nothing half open, so the next attempt opens the whole way).
                self._fail(exc)
            if self._repairs and self._failing is None:
                self._flush_pending()

    # ------------------------------------------------------------------------------------------- opening

    def _open_disk(self) -> None:
        assert self.path is not None
        try:
            self._open_disk_once()
        except BaseException:
            # Nothing half-open survives a failed open: the next attempt opens the whole way (trail.json, the
            # known head) instead of resuming a trail under an id it never read.
            self._close_descriptors()
            raise

    def _open_disk_once(self) -> None:
        assert self.path is not None
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        self._lock_ino = os.fstat(self._lock_fd).st_ino
        if self._watch is not None:
            self._watch.watch_place(self.path, self.path / LOCK_FILE)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            self._load_or_create_meta()
            self._open_newest_segment()
            self._rebuild_tree()
            self._check_known()
            self._attach_witnesses()
            self._last_cp_seq = self._head.seq  # the interval counts what this writer adds
            if self._reset is not None and self._head.seq == 0:
                self._write_locked(
                    {
                        "action": None,
                        "agent_id": None,
                        "context": None,
                        "decision": None,
                        "details": _reset_details(self._reset),
                        "policy_hash": None,
                        "type": "reset",
                    },
                    True,
                )
                self._checkpoint_locked(defer=False)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _own_lock_after_fork(self) -> None:
        """In a forked child: the lock file opened again (see ``_reopen_locks_in_child``)."""
        if self._lock_fd < 0 or self.path is None:
            return
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)  # the parent keeps its lock: its own descriptor still refers to it
        try:
            self._lock_fd = os.open(self.path / LOCK_FILE, os.O_RDWR)  # never created here: it must be the one
            self._lock_ino = os.fstat(self._lock_fd).st_ino
        except OSError as exc:  # (the folder is gone already): this process can never write the trail
            self._lock_fd = -1
            self._tamper(f"the trail's {LOCK_FILE} cannot be opened in this forked process: {exc}")

    def _close_fds(self) -> None:
        if self._watch is not None:
            self._watch.close()
        self._close_descriptors()

    def _close_descriptors(self) -> None:
        for name in ("_fd", "_rfd", "_lock_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, -1)

    def _known(self) -> tuple[int, int, Checkpoint | None, str | None]:
        """What the state store knows about the trail at this path: (generation, size, checkpoint, hash)."""
        if self.store is None or self.path is None:
            return 0, 0, None, None
        try:
            stored = latest_for_path(self.store, self.path)
        except Exception:  # a store that cannot answer must not stop the governor; health shows it
            return 0, 0, None, None
        anchor = anchor_from_dict(stored, "the state store")
        if anchor is None or anchor.note is None:
            return 0, 0, None, None
        try:
            cp = parse_checkpoint(anchor.note)
        except ValueError:
            return 0, 0, None, None
        return anchor.seq >> GENERATION_SHIFT, cp.size, cp, anchor.hash

    def _check_known(self) -> None:
        """No silent restart: the folder must hold the trail the state store knows, at least as long."""
        generation, size, cp, digest = self._known()
        if cp is None or (self._reset is not None and self._head.seq == 0):
            return
        if generation < self.generation:
            # A newer generation (``audit reset``): its first entry must name the trail it replaced.
            first = self._first_entry()
            details = first.get("details") if first else None
            if not (
                first
                and first.get("type") == "reset"
                and isinstance(details, dict)
                and details.get("old_origin") == cp.origin
            ):
                raise TrailRefused(
                    f"{self.path}: trail {self.origin} claims to replace {cp.origin} but does not "
                    "start with a reset entry naming it: refusing to start"
                )
            return
        where = f"{self.path}"
        fix = "restore the folder, or start a new trail with `claw-gov audit reset --reason TEXT`"
        if cp.origin != self.origin:
            raise TrailRefused(
                f"{where}: the state store knows trail {cp.origin} (generation {generation}, "
                f"{size} entries) here but the folder holds {self.origin}: it was deleted or "
                f"replaced; refusing to start ({fix})"
            )
        size = max(size, self._known_size_of_trail())
        if self._head.seq < size:
            raise TrailRefused(
                f"{where}: trail {self.origin} has {self._head.seq} entries but the state store "
                f"knows {size}: entries were removed or the folder was rolled back; refusing to "
                f"start ({fix})"
            )
        found = self._entry_hash(size)
        if digest is not None and found is not None and found != digest:
            raise TrailRefused(
                f"{where}: entry {size} of trail {self.origin} is not the one the state store "
                f"knows: the trail was rewritten; refusing to start ({fix})"
            )

    def _known_size_of_trail(self) -> int:
        """How many entries the state store knows this very trail (by its id) to have had: a copy of the trail
        cut short and put where the folder was, under any path, still has to be at least that long."""
        if self.store is None:
            return 0
        try:
            anchor = anchor_from_dict(self.store.latest_checkpoint(self.trail_id), "the state store")
            return parse_checkpoint(anchor.note).size if anchor is not None and anchor.note else 0
        except Exception:  # a store that cannot answer must not stop the governor; health shows it
            return 0

    def _first_entry(self) -> dict[str, Any] | None:
        assert self.path is not None
        segments = list_segments(self.path)
        if not segments:
            return None
        for line in iter_lines(segments[0][1]):
            return parse_entry(line)
        return None

    def _entry_hash(self, seq: int) -> str | None:
        """The stored hash of entry ``seq`` (None if it is not in a retained segment)."""
        assert self.path is not None
        segments = [(f, p) for f, p in list_segments(self.path) if f <= seq]
        if not segments:
            return None
        for line in iter_lines(segments[-1][1]):
            entry = parse_entry(line)
            if entry is not None and entry.get("seq") == seq:
                found = entry.get("hash")
                return found if isinstance(found, str) else None
        return "missing"

    def _rebuild_tree(self) -> None:
        """The Merkle tree at the head: the compact range of the last checkpoint entry, plus the lines after it.

        Reads backwards from the head to the newest checkpoint entry (at most one checkpoint interval or one
        segment's worth of lines in the usual case), then folds forward.
        """
        assert self.path is not None
        self._pending.clear()
        after: list[list[bytes]] = []
        segments = list_segments(self.path)
        base: CompactRange | None = None
        for first, path in reversed(segments):
            limit = self._end if path == self._segment else None
            lines = [line[:-1] for line in iter_lines(path, limit) if line.endswith(b"\n")]
            for i in range(len(lines) - 1, -1, -1):
                line = lines[i]
                if b'"type":"checkpoint"' not in line[-120:]:
                    continue
                entry = parse_entry(line + b"\n")
                details = entry.get("details") if entry else None
                if (
                    entry is not None
                    and isinstance(details, dict)
                    and isinstance(details.get("range"), list)
                    and details.get("size") == entry.get("seq", 0) - 1
                ):
                    try:
                        base = CompactRange.from_hex(details["size"], details["range"])
                    except (ValueError, TypeError):
                        continue
                    after.append(lines[i:])
                    break
            if base is not None:
                break
            after.append(lines)
            if first == 1:
                break
        if base is None:
            base = self._retention_base(segments)
            if base is None:
                base = CompactRange()
        for chunk in reversed(after):
            base.extend_lines(chunk)
        if base.size != self._head.seq:
            raise AuditError(
                f"{self.path}: the Merkle tree covers {base.size} entries but the trail has "
                f"{self._head.seq} (damaged trail: run `claw-gov audit verify`)"
            )
        self._tree = base

    def _retention_base(self, segments: list[tuple[int, Path]]) -> CompactRange | None:
        """The compact range a signed retention record gives for the first retained entry."""
        assert self.path is not None
        if not segments or segments[0][0] == 1:
            return None
        from claw_governance.audit.verify import load_retention_records

        records, _ = load_retention_records(self.path)
        for record in reversed(records):
            if record.get("resume_seq") == segments[0][0]:
                try:
                    return CompactRange.from_hex(segments[0][0] - 1, record.get("resume_range") or [])
                except (ValueError, TypeError):
                    return None
        return None

    def _load_or_create_meta(self) -> None:
        assert self.path is not None
        meta_path = self.path / TRAIL_FILE
        key_entry = {"key_id": self.key.public.key_id, "public_key": self.key.public.hex, "added": time.time()}
        if not meta_path.exists():
            if list_segments(self.path):
                raise TrailRefused(
                    f"{meta_path} is missing but the folder holds segments: refusing to start a "
                    "new chain over an existing one"
                )
            generation, size, known, _digest = self._known()
            if known is not None and self._reset is None:
                raise TrailRefused(
                    f"{self.path}: the state store knows trail {known.origin} here ({size} entries) "
                    "but the folder is missing or empty: refusing to start a new trail (restore "
                    "it, or run `claw-gov audit reset --reason TEXT`)"
                )
            trail_id = new_id()
            meta: dict[str, Any] = {
                "format": FORMAT,
                "trail_id": trail_id,
                "origin": origin_for(trail_id),
                "generation": generation + 1 if known is not None else 0,
                "created": time.time(),
                "keys": [key_entry],
            }
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
        self.origin = origin_for(self.trail_id)
        generation = meta.get("generation", 0)
        self.generation = generation if isinstance(generation, int) and generation >= 0 else 0

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
        self._remember_inode()
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
        self._remember_inode()
        self._fsync_dir()

    def _remember_inode(self) -> None:
        """Keep a read descriptor and the inode of the segment being written (to notice it being replaced)."""
        assert self._segment is not None
        if self._rfd >= 0:
            os.close(self._rfd)
        self._rfd = os.open(self._segment, os.O_RDONLY)
        self._ino = os.fstat(self._fd).st_ino
        watch = self._watch
        if watch is not None and watch.watch(self._segment):
            # The watch is on the path: if another file took that name between our open and the watch, the
            # events would be about the wrong file. Then every append checks in full (the next one finds out).
            try:
                same = os.stat(self._segment).st_ino == self._ino
            except OSError:
                same = False
            if not same:
                watch.close()

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
            self._repairs.append(
                {
                    "event": "torn_tail_repaired",
                    "segment": self._segment.name,
                    "offset": offset,
                    "bytes": len(torn),
                    "sha256": hashlib.sha256(torn).hexdigest(),
                    "quarantine": quarantine.name,
                }
            )
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
        if size == 0 and len(segments) > 1:
            # An empty newest segment is one just rotated to: it is named for the entry after the head. Any other
            # name (a stray file) would take this writer's entries into a segment verify rejects.
            name_first = next(s for s, p in segments if p == self._segment)
            if name_first != self._head.seq + 1:
                raise TrailRefused(
                    f"{self._segment.name} is empty but the trail's last entry is {self._head.seq}: it should be "
                    f"{segment_name(self._head.seq + 1)}; refusing to write into it (a stray segment?)"
                )

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
        return self.append_parts(
            event.type,
            event.agent_id,
            event.action,
            event.context,
            event.decision,
            event.policy_hash,
            event.details,
            event.sensitive_fields,
            event.trusted_decision,
            event.meta,
        )

    def append_parts(
        self,
        entry_type: str,
        agent_id: str | None,
        action: str | None,
        context: Any,
        decision: Any,
        policy_hash: str | None,
        details: Any,
        sensitive_fields: frozenset[str] = frozenset(),
        trusted_decision: bool = False,
        meta: Any = None,
    ) -> int:
        """``append`` with the AuditEvent's fields given one by one (the governor's fast path: no event
        object is built when the built-in trail is the only audit plugin)."""
        redactor = self.redactor.with_keys(sensitive_fields) if sensitive_fields else self.redactor
        exact = False
        try:
            try:
                context = None if context is None else redactor.for_audit(context)
                details = None if details is None else redactor.for_audit(details)
                decision = (
                    None if decision is None else (decision if trusted_decision else redactor.for_audit(decision))
                )
            except NonCanonicalKey:
                exact = True
                context = None if context is None else redactor.for_audit(context, strict=True)
                details = None if details is None else redactor.for_audit(details, strict=True)
                decision = None if decision is None else redactor.for_audit(decision, strict=True)
        except Exception as exc:  # a value the redactor cannot walk must not crash the caller silently
            raise AuditError(f"cannot prepare the audit entry: {type(exc).__name__}: {exc}") from exc
        if meta:
            details = {**(details or {}), **meta}
        # (str fields are the common case: no call for them on the hot path)
        kind = (entry_type if entry_type.__class__ is str else _text(entry_type)) or "unknown"
        head = {
            "action": action if action is None or action.__class__ is str else str(action),
            "agent_id": agent_id if agent_id is None or agent_id.__class__ is str else str(agent_id),
            "context": context,
            "decision": decision,
            "details": details,
            "policy_hash": policy_hash if policy_hash is None or policy_hash.__class__ is str else str(policy_hash),
        }
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
            self._commit.wait(seq)
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

    def _append_fields(
        self, fields: dict[str, Any] | None, exact: bool, prefix: bytes = b"", type_json: bytes = b""
    ) -> int:
        """Append one entry: ``fields`` (a whole entry but the chain fields), or else the serialised
        ``prefix`` and ``type_json`` of ``append_parts``."""
        rotated = False
        with self._lock:
            if self._closed:
                raise AuditError("the audit trail is closed")
            if self._tampered is not None:
                raise TrailTampered(self._tampered)
            if self._memory is not None:
                seq = (
                    self._write_locked(fields, exact)
                    if fields is not None
                    else self._write_prefix_locked(prefix, type_json)
                )
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
                watch = self._watch
                # _sync_head_locked's common case inline (nothing changed: same size, no watch event)
                if watch is None or os.lseek(self._fd, 0, _SEEK_END) != self._end or watch.ready(0) or self._repairs:
                    self._sync_head_locked()
                if self._end >= self.rotation_bytes:
                    self._rotate_locked()
                    rotated = True
                seq = (
                    self._write_locked(fields, exact)
                    if fields is not None
                    else self._write_prefix_locked(prefix, type_json)
                )
                if seq - self._last_cp_seq >= self.checkpoint_interval or seq >= self._time_check_seq:
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
                    self._rebuild_tree()
                finally:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        except (OSError, AuditError, ValueError) as exc:
            self._fail(exc)
            raise AuditError(f"the audit trail cannot be opened: {self._failing}") from exc

    def _sync_head_locked(self) -> None:
        # Whether someone else appended or rotated: the size changed (a rotating writer first appends a
        # checkpoint to the old segment); whether the segment was unlinked, replaced or sealed: the inotify
        # watch has an event (its link count or mode changed). Either way, or without a watch, one fstat tells
        # which, as it did for every append before (1.3-1.7 µs; lseek + epoll_wait cost about half).
        if self._tampered is not None:
            raise TrailTampered(self._tampered)
        watch = self._watch
        if watch is not None:
            if os.lseek(self._fd, 0, os.SEEK_END) == self._end and not watch.ready(0):
                if self._repairs:
                    self._write_repairs_locked()
                return
            watch.drain()  # before the fstat: a change after it leaves an event for the next append
        st = os.fstat(self._fd)
        if st.st_size == self._end and st.st_nlink and st.st_mode & 0o200:
            # A link count of 1 or more does not mean the segment is still the file at its path: a hard link
            # elsewhere and then an unlink (or a rename) keep it, and entries would go to a file only the
            # attacker can reach. So the path must still name this inode (on a watch event, and on every
            # append without a watch).
            self._check_inode()
            if self._repairs:
                self._write_repairs_locked()
            return
        self._catch_up(st)
        self._write_repairs_locked()

    def _tamper(self, message: str) -> TrailTampered:
        """Remember that the trail went back under this writer; every append from now on is denied."""
        self._tampered = message
        self._failing = self._last_error = message
        return TrailTampered(message)

    def _catch_up(self, st: os.stat_result) -> None:
        """Read what other writers appended since our head (never going back), following their rotations."""
        assert self.path is not None and self._segment is not None
        name = self._segment.name
        if st.st_size < self._end:
            raise self._tamper(
                f"{name} shrank from {self._end} to {st.st_size} bytes under the writer: entries "
                "were cut from the trail"
            )
        sealed = not st.st_mode & 0o200
        if not st.st_nlink and not sealed:
            raise self._tamper(f"{name} was deleted or replaced under the writer (the audit folder was removed?)")
        data = os.pread(self._rfd, st.st_size - self._end, self._end) if st.st_size > self._end else b""
        segments = list_segments(self.path)
        newer = [(f, p) for f, p in segments if p.name > name]
        self._absorb(data, torn_ok=not sealed and not newer)
        if not sealed and not newer:
            self._check_inode()
            return
        for _first, path in newer:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            os.close(self._fd)
            self._fd, self._segment, self._end = fd, path, 0
            self._remember_inode()
            size = os.fstat(fd).st_size
            self._absorb(os.pread(self._rfd, size, 0) if size else b"", torn_ok=path == newer[-1][1])
        if not newer:
            raise self._tamper(f"{name} was sealed but no newer segment exists: the trail was cut")

    def _check_inode(self) -> None:
        # The path must still name the segment being written (a renamed folder, a hard link then an unlink,
        # a copy in its place all keep the segment alive elsewhere), and the lock file must still be the one
        # this writer locks (deleted or replaced, another writer would lock a different file and fork the
        # chain).
        assert self._segment is not None and self.path is not None
        try:
            ino = os.stat(self._segment).st_ino
        except FileNotFoundError:
            raise self._tamper(f"{self._segment.name} was deleted under the writer") from None
        if ino != self._ino:
            raise self._tamper(f"{self._segment.name} was replaced by another file under the writer")
        try:
            lock_ino = os.stat(self.path / LOCK_FILE).st_ino
        except FileNotFoundError:
            lock_ino = -1
        if lock_ino != self._lock_ino:
            raise self._tamper(
                f"the trail's {LOCK_FILE} was deleted or replaced under the writer: another writer would no "
                "longer be kept out"
            )

    def _absorb(self, data: bytes, *, torn_ok: bool) -> None:
        """Take the complete entries other writers added into the head and the tree; repair a torn tail."""
        cut = data.rfind(b"\n") + 1
        head = self._head
        for line in data[:cut].splitlines(keepends=True):
            entry = parse_entry(line)
            seq = entry.get("seq") if entry else None
            if entry is None or seq != head.seq + 1 or entry.get("prev_hash") != head.prev:
                raise self._tamper(
                    f"{self._segment.name if self._segment else '?'}: an entry appended by another "
                    f"writer does not continue the chain at seq {head.seq} (the trail was rewritten)"
                )
            head.seq, head.prev = seq, str(entry.get("hash"))
            self._pending.append(_sha256(b"\x00" + line[:-1]).digest())
        self._end += cut
        if cut < len(data):
            torn = data[cut:]
            if not torn_ok:
                raise self._tamper("an incomplete line inside a sealed segment: the trail was damaged")
            assert self._segment is not None
            offset = self._end
            quarantine = self._segment.with_name(f"{self._segment.name}.torn-{offset}")
            with open(quarantine, "wb") as fh:
                fh.write(torn)
            os.ftruncate(self._fd, offset)
            self._repairs.append(
                {
                    "event": "torn_tail_repaired",
                    "segment": self._segment.name,
                    "offset": offset,
                    "bytes": len(torn),
                    "sha256": hashlib.sha256(torn).hexdigest(),
                    "quarantine": quarantine.name,
                }
            )

    def _write_repairs_locked(self) -> None:
        while self._repairs:
            repair = self._repairs.pop(0)
            self._write_locked(
                {
                    "action": None,
                    "agent_id": None,
                    "context": None,
                    "decision": None,
                    "details": repair,
                    "policy_hash": None,
                    "type": "repair",
                },
                False,
            )

    def _rotate_locked(self) -> None:
        # The closing checkpoint signs the old segment's last entry and, by growing the file, tells every other
        # writer (see _sync_head_locked) to look for the new segment.
        if self._sealed_at != self._head.seq:  # (a retry after a failed rotation has sealed it already)
            self._checkpoint_locked()
            self._sealed_at = self._head.seq
        old_fd, old_path = self._fd, self._segment
        assert old_path is not None
        if self.durability == "fsync":
            with self._commit.lock:  # no leader may be fsyncing the fd we are closing
                os.fsync(old_fd)
                self._new_segment_or_keep(old_fd)
            self._commit.mark_synced(self._written_seq)
        else:
            self._new_segment_or_keep(old_fd)
        with contextlib.suppress(OSError):
            os.chmod(old_path, 0o444)  # sealed: also tells other writers (via fstat) that we rotated

    def _new_segment_or_keep(self, old_fd: int) -> None:
        """Open the next segment and close ``old_fd``; if the new one cannot be opened, keep writing state on the
        old one, so the next append checks it as usual (a cut made while rotation fails is then a cut seen by a
        running writer, not a head read back from a file it no longer watches)."""
        old_segment = self._segment
        self._fd = -1
        try:
            self._new_segment(self._head.seq + 1)
        except BaseException:
            if self._segment == old_segment:  # the new segment never became the one written
                self._fd = old_fd
            else:
                with contextlib.suppress(OSError):
                    os.close(old_fd)
            raise
        os.close(old_fd)
        self._sealed_at = -1

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
            fields = {
                k: (
                    DEFAULT_REDACTOR.for_audit(v, strict=True)
                    if isinstance(v, dict)
                    else _text(v)
                    if isinstance(v, str)
                    else v
                )
                for k, v in fields.items()
            }
            line, digest = exact_entry_line(fields)
        return self._emit_locked(line, digest, seq)

    def _write_prefix_locked(self, prefix: bytes, type_json: bytes) -> int:
        head = self._head
        seq = head.seq + 1
        now = time.time()
        body = b"".join(
            (
                prefix,
                b',"prev_hash":"',
                head.prev.encode(),
                b'","seq":',
                b"%d" % seq,
                b',"timestamp":',
                orjson.dumps(int(now) if now.is_integer() else now),
                b',"type":',
                type_json,
            )
        )
        h = _sha256(body)
        h.update(b"}")
        digest = h.hexdigest()
        # The Merkle leaf is the line without its newline, hashed while it is in the cache, from a copy of a
        # context that has absorbed the 0x00 prefix (no algorithm fetch per call). Measured against hashing a
        # memoryview of one framed buffer and writing a view of it: plain bytes are 0.3-0.5 µs cheaper.
        entry = b"".join((body, b',"hash":"', digest.encode(), b'"}'))
        leaf = _LEAF_PREFIX.copy()
        leaf.update(entry)
        line = entry + b"\n"
        if self._memory is not None:
            return self._emit_locked(line, digest, seq, leaf.digest())
        # _emit_locked inline (the hot path)
        written = os.write(self._fd, line)
        if written != len(line):
            os.ftruncate(self._fd, self._end)  # a short write (disk full): take the partial line back
            raise OSError(errno.ENOSPC, f"short write to {self._segment} ({written} of {len(line)} bytes)")
        self._end += written
        self._pending.append(leaf.digest())
        head.seq = seq
        head.prev = digest
        self._written_seq = seq
        self._appended += 1
        return seq

    def _emit_locked(self, line: bytes, digest: str, seq: int, leaf: bytes | None = None) -> int:
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
        self._pending.append(leaf if leaf is not None else _sha256(b"\x00" + line[:-1]).digest())
        head.seq = seq
        head.prev = digest
        self._written_seq = seq
        self._appended += 1
        return seq

    def _maybe_checkpoint_locked(self) -> None:
        # The clock is read every 16 entries, not every entry (a time-based checkpoint may come 15 entries late).
        self._time_check_seq = self._head.seq + 16
        due = self._head.seq - self._last_cp_seq
        if due >= self.checkpoint_interval or (
            due and time.monotonic() - self._last_cp_time >= self.checkpoint_seconds
        ):
            self._checkpoint_locked()

    def _fold(self) -> CompactRange:
        """Hash the pending lines into the tree (under the lock); return the tree at the head."""
        pending = self._pending
        if pending:
            tree = self._tree
            tree.extend_leaves(pending)
            if self.witnesses is not None:
                self.witnesses.add_leaves(pending)
            pending.clear()
        return self._tree

    def _attach_witnesses(self) -> None:
        """Hand the opened tree to the witness client and refuse a trail shorter than a witness saw."""
        if self.witnesses is None:
            return
        self.witnesses.attach(self._tree)
        try:
            latest = self.witnesses.latest(self.origin)
        except (OSError, ValueError) as exc:  # a witness that is down must not stop the governor
            self._last_error = f"witness not reachable at start: {type(exc).__name__}: {exc}"
            return
        if self._head.seq == 0 and self._reset is None:
            # A fresh trail: if a witness holds another trail signed by this governor's key, the folder was
            # deleted (and the state store with it): starting over silently would hide that.
            try:
                others = self.witnesses.origins_signed_by(self.key.public)
            except (OSError, ValueError):
                others = []
            others = [(name, cp) for name, cp in others if cp.origin != self.origin]
            if others:
                name, cp = others[0]
                raise TrailRefused(
                    f"{self.path}: witness {name} holds trail {cp.origin} ({cp.size} entries) signed "
                    "by this governor's key, but the folder holds a new, empty trail: it was deleted "
                    "or replaced; refusing to start (restore it, or run `claw-gov audit reset "
                    "--reason TEXT`)"
                )
        for spec, cp in latest:
            if cp.size > self._head.seq:
                raise TrailRefused(
                    f"{self.path}: witness {spec.witness.name} has cosigned {cp.size} entries of "
                    f"trail {self.origin} but the folder holds {self._head.seq}: entries were "
                    "removed or the folder was rolled back; refusing to start (restore it, or run "
                    "`claw-gov audit reset --reason TEXT`)"
                )

    def signed_checkpoint(self, tree: CompactRange | None = None) -> Checkpoint:
        """A C2SP checkpoint of the tree (default: the head, under the caller's lock), signed by this writer."""
        tree = tree or self._fold()
        text = format_checkpoint(self.origin, tree.size, tree.root())
        return Checkpoint(self.origin, tree.size, tree.root(), text, (sign_note(text, self.origin, self.key),))

    def _checkpoint_locked(self, *, defer: bool = True) -> None:
        """Write a checkpoint entry (the signed tree of the entries before it) and record the tree including
        it outside the log (state store, checkpoint.json, witnesses).

        With ``defer`` the outside copies are made by the background thread (an automatic checkpoint during
        an append); without it, before returning (``checkpoint()`` and ``close()``)."""
        if self._memory is None:
            self._check_inode()
        tree = self._fold()
        cp = self.signed_checkpoint(tree)
        created = time.time()
        details = {
            "checkpoint": cp.note(),
            "size": tree.size,
            "range": tree.to_hex(),
            "origin": self.origin,
            "trail_id": self.trail_id,
            "key_id": self.key.public.key_id,
            "created": created,
            "checkpoint_seq": self._head.seq,
            "checkpoint_hash": self._head.prev,
        }
        self._write_locked(
            {
                "action": None,
                "agent_id": None,
                "context": None,
                "decision": None,
                "details": details,
                "policy_hash": None,
                "type": "checkpoint",
            },
            False,
        )
        self._last_cp_seq = self._head.seq
        self._last_cp_time = time.monotonic()
        # The tree including the checkpoint entry is signed and stored outside the log by the mirror (in the
        # background during an append): no append waits for a signature, a SQLite write or a witness.
        self._mirror.offer(self._head.seq, self._head.prev, created, self._fold().copy(), defer=defer)

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
            self._commit.wait(seq)
        return seq

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
        """Checkpoints outside the log: the state store's (for this trail and for this path)."""
        found: list[Anchor] = []
        if self.store is not None:
            keys = [self.trail_id, *(path_keys(self.path) if self.path is not None else ())]
            for key in keys:
                try:
                    stored = self.store.latest_checkpoint(key)
                except Exception:
                    stored = None
                anchor = anchor_from_dict(stored, "the state store")
                if anchor is not None:
                    seq = anchor.seq & ((1 << GENERATION_SHIFT) - 1)
                    found.append(Anchor(seq, anchor.hash, anchor.source, anchor.note))
        return found

    def verify(
        self,
        public_keys: list[PublicKey] | None = None,
        *,
        witnesses: list[Witness] | None = None,
        min_witnesses: int = 0,
        require_anchored: bool = False,
    ) -> VerifyReport:
        """Recompute the whole chain and Merkle tree (streaming) and check every checkpoint against the keys
        this process trusts: its own signing key and ``public_keys`` (never a key read from the audit folder).

        The running writer vouches for its head: a checkpoint of its in-memory tree, signed now, is checked
        like any outside checkpoint, so a tail cut under it is INVALID even without a witness.
        """
        keys = [self.key.public, *(public_keys or [])]
        with self._lock:
            head_cp = self.signed_checkpoint() if self._head.seq and self._tampered is None else None
            head = (self._head.seq, self._head.prev)
            lines = list(self._memory) if self._memory is not None else None
            snapshot = self._snapshot_unlocked() if lines is None and self._lock_fd >= 0 else None
        anchors = self.anchors()
        if head_cp is not None:
            anchors.append(Anchor(head[0], head[1], "this process's memory", head_cp.note()))
        if self.witnesses is not None:
            anchors.extend(self.witnesses.latest_anchors(self.origin))
        wit = witnesses if witnesses is not None else (self.witnesses.trusted() if self.witnesses else [])
        if lines is not None:
            return verify_entries(
                lines,
                trail_id=self.trail_id,
                trusted_keys=keys,
                anchors=anchors,
                witnesses=wit,
                min_witnesses=min_witnesses,
                require_anchored=require_anchored,
            )
        assert self.path is not None
        report = verify_directory(
            self.path,
            trusted_keys=keys,
            anchors=anchors,
            snapshot=snapshot,
            witnesses=wit,
            min_witnesses=min_witnesses,
            require_anchored=require_anchored,
            key_source="the governor's key",
        )
        if self._tampered is not None:
            import dataclasses

            errors = (*report.errors, {"segment": None, "seq": head[0], "message": self._tampered})
            report = dataclasses.replace(report, valid=False, errors=errors)
        return report

    def _snapshot_unlocked(self) -> dict[str, int] | None:
        if self.path is None or self._lock_fd < 0:
            return None
        fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
        try:
            return {p.name: p.stat().st_size for _, p in list_segments(self.path)}
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

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
        """Entries matching every given filter, oldest first.

        ``action`` is a glob (``*`` only); ``since``/``until`` are Unix seconds, ISO strings, dates or datetimes
        (``until`` is exclusive); ``limit`` keeps the first ``limit`` matches.
        """
        return list(
            query_entries(
                self.entries(),
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
                    summary = summarise(path)
                    if summary is None or summary["range"] is None or not expired(summary, rule, now):
                        break
                    removable.append((first, path, summary))
                if not removable:
                    return []
                record = retention_record(
                    trail_id=self.trail_id,
                    origin=self.origin,
                    key_id=self.key.public.key_id,
                    created=now,
                    retention_days=rule.default_days,
                    resume_seq=segments[len(removable)][0],
                    removed=[(p.name, s) for _, p, s in removable],
                )
                record["signature"] = self.key.sign(record_message(record))
                fd = os.open(self.path / RETENTION_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n")
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self._write_locked(
                    {
                        "action": None,
                        "agent_id": None,
                        "context": None,
                        "decision": None,
                        "details": record,
                        "policy_hash": None,
                        "type": "retention",
                    },
                    True,
                )
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
        status = "down" if self._failing or self._tampered else ("degraded" if self._last_error else "ok")
        if status == "ok" and self.path is not None and self._fd >= 0 and not self._closed:
            # A segment unlinked or replaced under an idle writer shows here, before the next call fails.
            try:
                st = os.fstat(self._fd)
                if not st.st_nlink and st.st_mode & 0o200:
                    status = "down"
                    self._last_error = f"{self._segment} was deleted under the writer"
            except OSError:
                status = "down"
        if status == "ok" and self.witnesses is not None and self.witnesses.any_down():
            status = "degraded"
        return {
            "status": status,
            "path": None if self.path is None else str(self.path),
            "trail_id": self.trail_id,
            "last_seq": self._head.seq,
            "appended": self._appended,
            "durability": self.durability,
            "segment": None if self._segment is None else self._segment.name,
            "last_checkpoint_seq": self._last_cp_seq,
            "last_error": self._last_error,
            "repairs": list(self._repairs_done()),
            "key_id": self.key.public.key_id,
            "fsyncs": self._commit.fsyncs,
            "origin": self.origin,
            "tampered": self._tampered,
            **({"witnesses": self.witnesses.health()} if self.witnesses is not None else {}),
        }

    def _repairs_done(self) -> Iterator[str]:
        if self._memory is not None or self.path is None:
            return
        for item in self.path.glob("segment-*.torn-*"):
            yield item.name

    def close(self) -> None:
        """Checkpoint (if anything was written since the last one), sync and close. Idempotent."""
        self._commit.stop()
        self._mirror.drain()
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
                except TrailTampered:
                    pass  # already recorded; a closing checkpoint must not vouch for a trail that went back
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
            if self._rfd >= 0:
                os.close(self._rfd)
                self._rfd = -1
            if self._watch is not None:
                self._watch.close()

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate in an action name (JSON can carry one): keep it visible
            text = text.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
    return text


def _reset_details(record: dict[str, Any]) -> Any:
    """The reset entry's details: the operator's reason is free text (redacted like any entry); the rest is
    what the governance itself made (origins, a signed note, a path), kept exact: the secret detectors must
    not rewrite a digit run inside a signature or an id."""
    reason = DEFAULT_REDACTOR.for_audit({"reason": record.get("reason")}, strict=True)["reason"]
    return {**canonical_copy({k: v for k, v in record.items() if k != "reason"}), "reason": reason}


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
    """(seq, hash) of the last line of ``data`` that is a complete entry; TrailRefused if that entry does not
    match its own hash (the head a writer continues from must be an entry the trail really holds: an edited
    last entry would otherwise be chained on, and the next checkpoint would sign the edit)."""
    end = len(data)
    while end > 0:
        start = data.rfind(b"\n", 0, end - 1) + 1
        line = data[start:end]
        end = start
        entry = parse_entry(line)
        if entry is not None and isinstance(entry.get("seq"), int) and isinstance(entry.get("hash"), str):
            claimed = entry.pop("hash")
            # (verify's rule, _Check._full_entry: the sorted orjson form, else pure RFC 8785 for keys outside the BMP)
            if hashlib.sha256(orjson.dumps(entry, option=SORTED)).hexdigest() != claimed and (
                exact_hash(entry) != claimed
            ):
                raise TrailRefused(
                    f"entry {entry['seq']}, the trail's last, does not match its hash: the trail was edited; "
                    "refusing to continue it (run `claw-gov audit verify`)"
                )
            return entry["seq"], claimed
    return None


_OPEN: weakref.WeakSet[AuditTrail] = weakref.WeakSet()


def _reopen_locks_in_child() -> None:
    # An flock belongs to the open file description, which a forked child shares with its parent: the parent's
    # lock would admit the child's appends too, and both would write the same seq. The child gets its own.
    for trail in list(_OPEN):
        trail._own_lock_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reopen_locks_in_child)


def open_trail(config: GovernorConfig, store: Any = None) -> AuditTrail:
    """The trail for a governor's settings (in memory when ``config.audit_path`` is None).

    The governor's signing key lives at ``<state>/governor_ed25519.pem`` (mode 0600), or encrypted at
    ``<state>/governor_ed25519.key`` when ``identity_passphrase`` is set (see audit/keys.py); without a state
    path it is kept in memory, and its public half is listed in the trail's ``trail.json`` either way.
    """
    try:
        key = SigningKey.load_or_create(
            config.resolved_state_path, config.identity_passphrase, config.identity_scrypt_log2_n
        )
    except OSError as exc:
        raise AuditError(f"cannot create the governor's audit key in {config.resolved_state_path}: {exc}") from None
    witnesses = None
    if config.audit_witnesses:
        from claw_governance.audit.trust import parse_witness_list
        from claw_governance.audit.witness_client import WitnessClient

        witnesses = WitnessClient(parse_witness_list(config.audit_witnesses))
    trail = AuditTrail(
        config.audit_path,
        key=key,
        store=store,
        retention_days=config.audit_retention_days,
        rotation_size_mb=config.audit_rotation_size_mb,
        checkpoint_interval=config.audit_checkpoint_interval,
        durability=config.durability,
        witnesses=witnesses,
    )
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


def reset_trail(config: GovernorConfig, store: Any, reason: str) -> tuple[Path | None, str]:
    """Start a new trail at ``config.audit_path`` that records the one it replaces (``claw-gov audit reset``).

    The old folder, if any, is moved aside (never deleted). The new trail's first entry (type ``reset``)
    names the old origin, its last checkpoint known to the state store, every origin before it, and the
    reason; the state store then follows the new trail (a new generation). Returns (moved folder, origin).
    """
    if config.audit_path is None:
        raise AuditError("reset needs an audit path")
    path = config.audit_path
    if not reason.strip():
        raise AuditError("--reason must say why the trail is reset")
    known = latest_for_path(store, path) if store is not None else None
    anchor = anchor_from_dict(known, "the state store")
    old_note = anchor.note if anchor is not None else None
    old_origin = None
    if old_note is not None:
        try:
            old_origin = parse_checkpoint(old_note).origin
        except ValueError:
            old_origin = None
    previous: list[str] = []
    moved: Path | None = None
    if path.exists():
        try:
            meta = load_trail_meta(path)
            old_origin = old_origin or origin_for(meta["trail_id"])
            first = next(iter(list_segments(path)), None)
            if first is not None:
                for line in iter_lines(first[1]):
                    entry = parse_entry(line) or {}
                    details = entry.get("details")
                    if entry.get("type") == "reset" and isinstance(details, dict):
                        previous = [str(o) for o in details.get("previous_origins") or []]
                        if isinstance(details.get("old_origin"), str):
                            previous.append(details["old_origin"])
                    break
        except ValueError:
            pass
        from claw_governance.timeparse import compact_utc

        moved = path.with_name(f"{path.name}.replaced-{compact_utc()}")
        path.rename(moved)
    if old_origin is None and moved is None:
        raise AuditError(f"{path}: no trail is known here; nothing to reset (just start the governor)")
    record = {
        "reason": reason,
        "old_origin": old_origin,
        "old_checkpoint": old_note,
        "previous_origins": previous,
        "moved_to": None if moved is None else str(moved),
    }
    key = SigningKey.load_or_create(
        config.resolved_state_path, config.identity_passphrase, config.identity_scrypt_log2_n
    )
    trail = AuditTrail(path, key=key, store=store, durability=config.durability, reset=record)
    origin = trail.origin
    trail.close()
    return moved, origin
