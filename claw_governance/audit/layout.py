"""The on-disk format of a trail, shared by the writer, the verifier and the exporter.

A trail is a folder::

    trail.json                       {"format", "trail_id", "origin", "generation", "created", "keys": [...]}
                                     (the keys are informational: verification never trusts them)
    segment-000000000001.jsonl       entries, one JSON object per line; named by the first seq it holds
    segment-000000001843.jsonl       ... (sealed segments are made read-only when the next one starts)
    checkpoint.json                  the newest signed checkpoint (also kept in the state store), with the
                                     C2SP signed note and every witness cosignature it got
    witnessed.jsonl                  every checkpoint a witness cosigned: {"size", "note"} per line
    retention.jsonl                  one signed record per retention run that removed old segments
    .lock                            flock(2) target: one writer at a time, across threads and processes

Each line is the RFC 8785 form of the entry without ``hash``, with ``,"hash":"<64 hex>"`` added before the
closing brace. ``hash`` = SHA-256 over that RFC 8785 form; ``prev_hash`` is the previous entry's hash, or the
trail's genesis hash (bound to its trail id) for seq 1.

The entries are also the leaves of an RFC 6962 Merkle tree (leaf ``i`` = line ``i`` without its newline; see
``merkle.py``). A ``checkpoint`` entry at seq ``c`` carries a C2SP checkpoint (a signed note, ``note.py``) of
the tree of size ``c - 1`` and the compact range of that tree, so a writer that opens the trail does not
have to re-read it; the copy outside the log covers the tree of size ``c`` (the checkpoint entry included).
The origin of a trail is ``claw-governance.local/audit/<trail_id>``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from claw_governance.audit.canonical import SORTED, jcs_dumps

FORMAT = "claw-audit/2"
WITNESSED_FILE = "witnessed.jsonl"
ORIGIN_PREFIX = "claw-governance.local/audit/"
TRAIL_FILE = "trail.json"
CHECKPOINT_FILE = "checkpoint.json"
RETENTION_FILE = "retention.jsonl"
LOCK_FILE = ".lock"
SEGMENT_RE = re.compile(r"^segment-(\d{12})\.jsonl$")
HASH_RE = re.compile(r"^[0-9a-f]{64}$")

ENTRY_FIELDS = (
    "action",
    "agent_id",
    "context",
    "decision",
    "details",
    "policy_hash",
    "prev_hash",
    "seq",
    "timestamp",
    "type",
)


def segment_name(first_seq: int) -> str:
    """The file name of the segment whose first entry has ``first_seq``."""
    return f"segment-{first_seq:012d}.jsonl"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """``(first_seq, path)`` of every segment, oldest first (other files are ignored)."""
    found: list[tuple[int, Path]] = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        match = SEGMENT_RE.match(name)
        if match:
            found.append((int(match.group(1)), directory / name))
    found.sort()
    return found


def genesis_hash(trail_id: str) -> str:
    """``prev_hash`` of seq 1: binds the whole chain to one trail id (a foreign segment cannot start it)."""
    return hashlib.sha256(b"claw-audit genesis v1\n" + trail_id.encode()).hexdigest()


def origin_for(trail_id: str) -> str:
    """The C2SP origin line of a trail: stable for its life, unique (the trail id is random)."""
    return ORIGIN_PREFIX + trail_id


def path_key(directory: Path) -> str:
    """The state-store key under which the newest checkpoint of *whatever trail lives at* ``directory`` is kept.

    Keyed by the folder, not the trail: when the folder is deleted or replaced, the store still knows what
    was there. ``seq`` of that record is ``generation << 40 | size`` so a reset (a new generation) moves it
    forward although the new trail is shorter (the store only ever keeps the highest seq).

    The folder is named as configured (absolute, symlinks *not* followed): an ``audit`` folder replaced by a
    symlink to another folder is still the folder the store knows, not a new place with no history.
    """
    return "audit-path:" + os.path.abspath(directory)


def path_keys(directory: Path) -> tuple[str, ...]:
    """:func:`path_key` and, where symlinks make it differ, the key of the folder they lead to (which is how
    records were keyed before 2026-12-02): every place the store may know this folder's trail under."""
    keys = (path_key(directory), "audit-path:" + str(directory.resolve()))
    return keys[:1] if keys[0] == keys[1] else keys


def latest_for_path(store: Any, directory: Path) -> dict[str, Any] | None:
    """The highest-seq checkpoint record the state store keeps under any of :func:`path_keys`."""
    found = [store.latest_checkpoint(key) for key in path_keys(directory)]
    records = [r for r in found if isinstance(r, dict) and isinstance(r.get("seq"), int)]
    return max(records, key=lambda r: int(r["seq"])) if records else None


GENERATION_SHIFT = 40


def checkpoint_message(trail_id: str, seq: int, entry_hash: str) -> bytes:
    """The bytes a checkpoint signature covers."""
    return f"claw-audit checkpoint v1\n{trail_id}\n{seq}\n{entry_hash}".encode()


def record_message(record: dict[str, Any]) -> bytes:
    """The bytes a retention record's signature covers: its RFC 8785 form without ``signature``."""
    body = {k: v for k, v in record.items() if k != "signature"}
    return b"claw-audit retention v1\n" + jcs_dumps(body)


def entry_line(entry: dict[str, Any]) -> tuple[bytes, str]:
    """``(line, hash)`` for an entry dict of normalised values (see ``Redactor.for_audit``)."""
    body = orjson.dumps(entry, option=SORTED)
    digest = hashlib.sha256(body).hexdigest()
    return body[:-1] + b',"hash":"' + digest.encode() + b'"}\n', digest


def exact_entry_line(entry: dict[str, Any]) -> tuple[bytes, str]:
    """Like :func:`entry_line` through the pure RFC 8785 serialiser (keys outside the BMP)."""
    body = jcs_dumps(entry)
    digest = hashlib.sha256(body).hexdigest()
    return body[:-1] + b',"hash":"' + digest.encode() + b'"}\n', digest


def exact_hash(entry: dict[str, Any]) -> str | None:
    """SHA-256 over the pure RFC 8785 form, or None if the entry holds something that is not JSON."""
    try:
        return hashlib.sha256(jcs_dumps(entry)).hexdigest()
    except (TypeError, ValueError):
        return None


def parse_entry(line: bytes) -> dict[str, Any] | None:
    """The entry on one complete line (ending in a newline), or None for a torn or garbage line."""
    if not line.endswith(b"\n"):
        return None
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return entry if isinstance(entry, dict) else None


def read_json_file(path: Path) -> Any:
    """Parse a small JSON file; raises OSError or orjson.JSONDecodeError."""
    return orjson.loads(path.read_bytes())


def write_json_atomic(path: Path, value: Any, *, sync: bool = False) -> None:
    """Replace ``path`` with ``value`` as JSON so that readers see the old or the new file, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, orjson.dumps(value, option=SORTED | orjson.OPT_INDENT_2) + b"\n")
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def iter_lines(path: Path, limit: int | None = None) -> Iterator[bytes]:
    """The lines of a segment (the last one may lack its newline), reading at most ``limit`` bytes."""
    with open(path, "rb") as fh:
        if limit is None:
            yield from fh
            return
        left = limit
        for line in fh:
            if left <= 0:
                return
            if len(line) > left:
                yield line[:left]
                return
            left -= len(line)
            yield line
