"""Streaming verification of a trail: constant memory, one pass, every kind of damage named.

What is checked, in one pass over the segments (oldest first):

* every line is a JSON object with the entry fields; ``hash`` is SHA-256 over the RFC 8785 form of the rest;
* ``seq`` increases by exactly one and ``prev_hash`` is the previous entry's hash (seq 1: the genesis hash of
  this trail id; after retention: the ``resume_prev_hash`` of a signed retention record);
* each segment's first seq matches its file name;
* the RFC 6962 Merkle tree over the lines is recomputed; each in-log checkpoint (a C2SP signed note) must
  name this trail's origin and the tree's exact size and root, and be signed by a TRUSTED key;
* each retention entry and record carries a valid signature by a trusted key;
* every checkpoint kept outside the log (state store, ``checkpoint.json``, ``witnessed.jsonl``, a witness's
  latest, the running writer's own head) must match the recomputed tree at its size: a truncated tail, a
  deleted newest segment or a rolled-back trail shows here.

Trust: only the keys the caller passes. Keys listed in ``trail.json`` are never trusted (whoever can write the
folder can write that file). A trail that no trusted checkpoint covers is INVALID. Entries after the last
trusted checkpoint are the *unanchored tail* (``report.unanchored``); ``require_anchored`` makes it INVALID.
With witnesses and ``min_witnesses`` K, a checkpoint anchors only if K of them cosigned it.

The first error names the segment and seq where the trail first goes wrong; verification then resynchronises
on the damaged entry and continues, so independent damage further on is reported too (up to a limit).

:func:`verify_entries` verifies lines and checkpoints handed over in memory (no files): what a copy of the
trail in a database is checked with.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from claw_governance.audit.canonical import SORTED, jcs_dumps
from claw_governance.audit.keys import PublicKey
from claw_governance.audit.layout import (
    CHECKPOINT_FILE,
    FORMAT,
    HASH_RE,
    RETENTION_FILE,
    TRAIL_FILE,
    WITNESSED_FILE,
    exact_hash,
    genesis_hash,
    iter_lines,
    list_segments,
    origin_for,
    read_json_file,
    record_message,
)
from claw_governance.audit.merkle import CompactRange
from claw_governance.audit.note import Checkpoint, parse_checkpoint
from claw_governance.keys import by_alias

MAX_ERRORS = 100
_loads = orjson.loads
_dumps = orjson.dumps
_sha256 = hashlib.sha256
_EMPTY = _sha256()
_LEAF_PREFIX = _sha256(b"\x00")
_NODE_PREFIX = _sha256(b"\x01")
_HASH_KEY = b',"hash":"'
_PREV_KEY = b',"prev_hash":"'


@dataclass(frozen=True, slots=True)
class Witness:
    """A witness the verifier trusts: its cosigner name and Ed25519 key."""

    name: str
    key: PublicKey


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Result of ``verify()``.

    ``valid`` is True only if no error was found. ``entries`` counts the complete entries read. ``errors`` is a
    tuple of ``{"segment", "seq", "message"}``, the first one being where the trail first goes wrong.
    ``warnings`` are findings that do not break the chain (e.g. an incomplete last line left by a writer that
    was killed mid-write: it was never acknowledged, and the next writer to open the trail repairs it).

    Coverage: entries ``1..anchored_size`` are covered by a checkpoint signed by a trusted key (and cosigned
    by ``min_witnesses`` witnesses when that was asked); ``unanchored`` entries come after it.
    ``witnessed_size`` is the largest tree size cosigned by the required number of witnesses (0 if none).
    """

    valid: bool
    entries: int
    errors: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = field(default_factory=tuple)
    trail_id: str | None = None
    first_seq: int = 0
    last_seq: int = 0
    last_hash: str | None = None
    segments: int = 0
    checkpoints: int = 0
    key_source: str = ""
    origin: str | None = None
    tree_size: int = 0
    root_hash: str | None = None
    anchored_size: int = 0
    witnessed_size: int = 0
    min_witnesses: int = 0

    @property
    def unanchored(self) -> int:
        """How many entries come after the last trusted checkpoint."""
        return max(0, self.last_seq - max(self.anchored_size, self.first_seq - 1))

    @property
    def unwitnessed(self) -> int:
        """How many entries no checkpoint cosigned by the required witnesses covers."""
        return max(0, self.last_seq - max(self.witnessed_size, self.first_seq - 1))

    def entry_status(self, seq: int) -> str:
        """``"witnessed"``, ``"anchored"`` (trusted signature), ``"unanchored"`` or ``"absent"`` for one seq."""
        if not self.first_seq <= seq <= self.last_seq:
            return "absent"
        if seq <= self.witnessed_size:
            return "witnessed"
        return "anchored" if seq <= self.anchored_size else "unanchored"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for the CLI and reports)."""
        return {
            "valid": self.valid,
            "entries": self.entries,
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "trail_id": self.trail_id,
            "origin": self.origin,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "segments": self.segments,
            "checkpoints": self.checkpoints,
            "key_source": self.key_source,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "anchored_size": self.anchored_size,
            "unanchored": self.unanchored,
            "witnessed_size": self.witnessed_size,
            "unwitnessed": self.unwitnessed,
            "min_witnesses": self.min_witnesses,
        }


@dataclass(frozen=True, slots=True)
class Anchor:
    """A checkpoint kept outside the log: a signed note (``note``), or an entry ``seq`` with ``hash``.

    The running writer's own head is an Anchor without a note (trusted because it is in this process's
    memory): entry ``seq`` must exist with exactly ``hash``.
    """

    seq: int
    hash: str | None
    source: str
    note: str | None = None


class _Check:
    """One verification run; feed it segments, then call ``finish``."""

    def __init__(
        self,
        trail_id: str,
        keys: dict[str, PublicKey],
        anchors: Iterable[Anchor],
        retention: list[dict[str, Any]],
        *,
        origin: str | None = None,
        witnesses: Sequence[Witness] = (),
        min_witnesses: int = 0,
    ) -> None:
        self.trail_id = trail_id
        self.origin = origin if origin is not None else origin_for(trail_id)
        self.keys = keys
        self.witnesses = list(witnesses)
        self.min_witnesses = min_witnesses
        self.errors: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.anchors: dict[int, list[Anchor]] = {}
        self.notes: dict[int, list[tuple[str, Checkpoint]]] = {}  # outside checkpoints by tree size
        self.anchored = 0  # largest tree size a trusted checkpoint covers
        self.witnessed = 0  # largest tree size cosigned by min_witnesses witnesses
        self.retention = retention
        self.entries = 0
        self.checkpoints = 0
        self.segments = 0
        self.first_seq = 0
        self.expected_seq: int | None = None  # None until the first entry fixes the starting point
        self.prev: str | None = None
        self.segment = ""
        self.name_seq = 0
        self.at_segment_start = False
        self.tree = CompactRange()
        for anchor in anchors:
            self.add_anchor(anchor)

    # ------------------------------------------------------------------------------- outside anchors

    def trusted_note(self, cp: Checkpoint) -> bool:
        """Signed by a trusted key under this trail's origin."""
        return any(cp.signed_by(key) for key in self.keys.values())

    def cosigners(self, cp: Checkpoint) -> int:
        """How many of the trusted witnesses validly cosigned ``cp``."""
        return sum(1 for w in self.witnesses if cp.cosigned_by(w.name, w.key) is not None)

    def add_anchor(self, anchor: Anchor) -> None:
        """Register a checkpoint kept outside the log (checked when the tree reaches its size)."""
        if anchor.note is None:
            if anchor.hash is not None:
                self.anchors.setdefault(anchor.seq, []).append(anchor)
            return
        try:
            cp = parse_checkpoint(anchor.note)
        except ValueError as exc:
            self.error(None, f"the checkpoint in {anchor.source} is malformed: {exc}", anchor.source)
            return
        if cp.origin != self.origin:
            self.error(
                None,
                f"the checkpoint in {anchor.source} is for {cp.origin!r}, not this trail "
                f"({self.origin!r}): the trail was replaced or deleted and started again",
                anchor.source,
            )
            return
        if not self.trusted_note(cp):
            self.error(
                cp.size,
                f"the checkpoint in {anchor.source} is not signed by a trusted key (wrong public "
                "key, or a forged checkpoint)",
                anchor.source,
            )
            return
        self.notes.setdefault(cp.size, []).append((anchor.source, cp))
        if anchor.hash is not None:
            self.anchors.setdefault(anchor.seq, []).append(Anchor(anchor.seq, anchor.hash, anchor.source))

    def covered(self, size: int, cp: Checkpoint | None) -> None:
        """A trusted checkpoint of ``size`` matched the recomputed tree."""
        if not self.min_witnesses or (cp is not None and self.cosigners(cp) >= self.min_witnesses):
            self.anchored = max(self.anchored, size)
        if cp is not None and self.witnesses and self.cosigners(cp) >= max(1, self.min_witnesses):
            self.witnessed = max(self.witnessed, size)

    def leaf(self, raw: bytes) -> None:
        """Add one line (with its newline) to the recomputed tree; check outside checkpoints at this size."""
        nodes = self.tree.nodes
        size = self.tree.size
        h = _sha256(b"\x00" + raw[:-1]).digest()
        s = size
        while s & 1:
            h = _sha256(b"\x01" + nodes.pop() + h).digest()
            s >>= 1
        nodes.append(h)
        size += 1
        self.tree.size = size
        if size in self.notes:
            self.check_notes(size)

    def check_notes(self, size: int) -> None:
        root = self.tree.root()
        for source, cp in self.notes.pop(size):
            if cp.root != root:
                self.error(
                    size,
                    f"the checkpoint in {source} (tree size {size}) does not match the trail: the "
                    "entries up to it were changed, or the trail was replaced or rolled back",
                )
            else:
                self.covered(size, cp)

    def error(self, seq: int | None, message: str, segment: str | None = None) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(
                {"segment": segment if segment is not None else self.segment, "seq": seq, "message": message}
            )

    def start(self, first_seq: int, prev_hash: str | None) -> None:
        """Where the chain must start: seq 1 at genesis, or a retention record's resume point."""
        if first_seq == 1:
            self.expected_seq, self.prev = 1, genesis_hash(self.trail_id)
            return
        for record in self.retention:
            if record.get("resume_seq") == first_seq and record.get("resume_prev_hash") == prev_hash:
                self.expected_seq, self.prev = first_seq, prev_hash
                try:
                    base = CompactRange.from_hex(first_seq - 1, record.get("resume_range") or [])
                except (ValueError, TypeError):
                    self.error(first_seq, "the retention record's Merkle compact range is malformed")
                    base = CompactRange()
                # in place: the feeding loop holds a reference to this tree
                self.tree.size, self.tree.nodes[:] = base.size, base.nodes
                return
        self.error(
            first_seq,
            f"the trail starts at seq {first_seq}: entries 1..{first_seq - 1} are missing and "
            "no signed retention record accounts for them (deleted or replaced oldest segment?)",
        )
        self.expected_seq, self.prev = first_seq, prev_hash

    def segment_start(self, name: str, name_seq: int) -> None:
        self.segment = name
        self.segments += 1
        self.name_seq = name_seq
        self.at_segment_start = True

    def garbage(self, reason: str) -> None:
        self.error(self.expected_seq, f"not an audit entry ({reason}); the line was skipped")

    def entry(self, raw: bytes) -> None:
        # Fastest path: a line in the writer's own layout (canonical body + ',"hash":"<64 hex>"}\n'). Hashing its
        # stored bytes authenticates them exactly; then only the fixed tail (prev_hash, seq, timestamp, type,
        # the last keys in sorted order) needs parsing. A quote inside a JSON string is escaped, so the last
        # ',"prev_hash":"' of the body is the top-level one. Anything unusual takes the full path below.
        if raw[-76:-67] == _HASH_KEY and raw[-3:] == b'"}\n':
            claimed_b = raw[-67:-3]
            body = raw[:-76] + b"}"
            if _sha256(body).hexdigest().encode() == claimed_b:
                cut = body.rfind(_PREV_KEY)
                if cut > 0:
                    try:
                        tail = _loads(b"{" + body[cut + 1 :])
                    except orjson.JSONDecodeError:
                        tail = None
                    if type(tail) is dict and self._fast_link(tail, claimed_b.decode(), raw):
                        return
        self._full_entry(raw)

    def _fast_link(self, tail: dict[str, Any], claimed: str, raw: bytes) -> bool:
        seq = tail.get("seq")
        if (
            seq != self.expected_seq
            or tail.get("prev_hash") != self.prev
            or self.at_segment_start
            or type(seq) is not int
        ):
            return False
        kind = tail.get("type")
        if kind == "checkpoint" or kind == "retention" or type(kind) is not str:
            return False  # signed entries are checked in full
        self.entries += 1
        if seq in self.anchors:
            self.check_anchors(seq, claimed)
        self.expected_seq = seq + 1
        self.prev = claimed
        return True

    def _full_entry(self, raw: bytes) -> None:
        try:
            entry = _loads(raw)
        except orjson.JSONDecodeError:
            self.garbage("not valid JSON")
            return
        if type(entry) is not dict:
            self.garbage("not a JSON object")
            return
        claimed = entry.pop("hash", None)
        seq = entry.get("seq")
        prev = entry.get("prev_hash")
        # The common case, kept short: one more link of an intact chain (a million of these must take < 10 s).
        if (
            seq == self.expected_seq
            and prev == self.prev
            and not self.at_segment_start
            and type(seq) is int
            and type(claimed) is str
            and _sha256(body := _dumps(entry, option=SORTED)).hexdigest() == claimed
            and raw == _line(body, claimed)
        ):
            self.entries += 1
            kind = entry.get("type")
            if kind == "checkpoint":
                self.checkpoint(seq, entry)
            elif kind == "retention":
                self.retention_entry(seq, entry)
            elif type(kind) is not str:
                self.error(seq, "entry without a type")
            if seq in self.anchors:
                self.check_anchors(seq, claimed)
            self.expected_seq = seq + 1
            self.prev = claimed
            return
        if not (
            isinstance(claimed, str)
            and isinstance(seq, int)
            and not isinstance(seq, bool)
            and isinstance(prev, str)
            and isinstance(entry.get("type"), str)
        ):
            self.garbage("missing seq, type, prev_hash or hash")
            return
        self.entries += 1
        if self.expected_seq is None:
            self.first_seq = seq
            self.start(seq, prev)
        if self.at_segment_start:
            self.at_segment_start = False
            if seq != self.name_seq:
                self.error(
                    seq,
                    f"segment {self.segment} should start at seq {self.name_seq} but starts at {seq} "
                    "(renamed or replaced segment)",
                )
        ok = True
        if seq != self.expected_seq:
            ok = False
            if isinstance(self.expected_seq, int) and seq > self.expected_seq:
                missing = f"{self.expected_seq}" if seq == self.expected_seq + 1 else f"{self.expected_seq}..{seq - 1}"
                self.error(
                    self.expected_seq,
                    f"entry {missing} is missing (found seq {seq} where "
                    f"{self.expected_seq} was expected): deleted entry or segment",
                )
            else:
                self.error(
                    seq,
                    f"seq {seq} appears where {self.expected_seq} was expected: entries inserted, "
                    "duplicated or out of order",
                )
        elif prev != self.prev:
            ok = False
            self.error(
                seq,
                "prev_hash does not match the previous entry's hash: an entry before it was changed, "
                "inserted or replaced",
            )
        body = orjson.dumps(entry, option=SORTED)
        actual = hashlib.sha256(body).hexdigest()
        if actual != claimed and exact_hash(entry) != claimed:
            ok = False
            self.error(seq, "hash does not match the entry's content: a field was changed")
        elif raw != _line(body, claimed) and raw != _exact_line(entry, claimed):
            # The parsed content hashes right but the stored bytes are not what was hashed: a duplicated key
            # (which readers that keep the first occurrence would show instead), extra whitespace or escapes.
            ok = False
            self.error(
                seq,
                "the line is not the canonical form of its entry (duplicate key, extra whitespace or "
                "other bytes added): it was edited",
            )
        if ok:
            kind = entry["type"]
            if kind == "checkpoint":
                self.checkpoint(seq, entry)
            elif kind == "retention":
                self.retention_entry(seq, entry)
        if seq in self.anchors:
            self.check_anchors(seq, claimed)
        self.expected_seq = seq + 1
        self.prev = claimed

    def check_anchors(self, seq: int, claimed: str) -> None:
        for anchor in self.anchors[seq]:
            if anchor.hash != claimed:
                self.error(
                    seq,
                    f"the checkpoint in {anchor.source} names seq {seq} with a different hash: "
                    "the entry or the trail was replaced",
                )

    def _key(self, key_id: Any) -> PublicKey | None:
        return self.keys.get(key_id) if isinstance(key_id, str) else None

    def checkpoint(self, seq: int, entry: dict[str, Any]) -> None:
        details = entry.get("details")
        if not isinstance(details, dict) or not isinstance(details.get("checkpoint"), str):
            self.error(seq, "checkpoint entry without a signed checkpoint")
            return
        self.checkpoints += 1
        try:
            cp = parse_checkpoint(details["checkpoint"])
        except ValueError as exc:
            self.error(seq, f"checkpoint entry holds a malformed checkpoint: {exc}")
            return
        if cp.origin != self.origin:
            self.error(seq, f"checkpoint belongs to {cp.origin!r}, not {self.origin!r} (segment from another trail)")
            return
        if cp.size != seq - 1 or cp.size != self.tree.size:
            self.error(seq, f"checkpoint covers tree size {cp.size}, not the {seq - 1} entries before it")
            return
        if cp.root != self.tree.root():
            self.error(
                seq, "checkpoint root hash does not match the recomputed Merkle tree: entries before it were changed"
            )
            return
        if not self.trusted_note(cp):
            self.error(seq, "checkpoint is not signed by a trusted key (forged checkpoint or wrong public key)")
            return
        self.covered(cp.size, cp)

    def retention_entry(self, seq: int, entry: dict[str, Any]) -> None:
        details = entry.get("details")
        if not isinstance(details, dict) or not self.record_ok(details):
            self.error(seq, "retention entry without a valid signature")

    def record_ok(self, record: dict[str, Any]) -> bool:
        key = self._key(record.get("key_id"))
        return (
            key is not None
            and record.get("trail_id") == self.trail_id
            and key.verify_b64(str(record.get("signature")), record_message(record))
        )

    def finish(self, last_segment: str, key_source: str = "given") -> VerifyReport:
        last_seq = (self.expected_seq - 1) if self.expected_seq is not None else 0
        for seq in sorted(self.anchors):
            if seq > last_seq:
                for anchor in self.anchors[seq]:
                    self.error(
                        last_seq + 1,
                        f"the checkpoint in {anchor.source} covers seq {seq} but the trail ends "
                        f"at seq {last_seq}: truncated tail or deleted newest segment",
                        last_segment,
                    )
            elif seq < self.first_seq:
                self.warnings.append(
                    f"the checkpoint in {self.anchors[seq][0].source} (seq {seq}) is older than "
                    "the oldest retained entry"
                )
        for size in sorted(self.notes):
            for source, _cp in self.notes[size]:
                if size > self.tree.size:
                    self.error(
                        self.tree.size + 1,
                        f"the checkpoint in {source} covers {size} entries but the trail "
                        f"has {self.tree.size}: truncated, rolled back or deleted entries",
                        last_segment,
                    )
                else:
                    self.warnings.append(
                        f"the checkpoint in {source} (tree size {size}) is older than the oldest retained entry"
                    )
        self.notes.clear()
        if last_seq and self.anchored < max(1, self.first_seq):
            who = (
                f"signed by a trusted key and cosigned by {self.min_witnesses} trusted witness(es)"
                if self.min_witnesses
                else "signed by a trusted key"
            )
            self.error(
                None,
                f"no checkpoint {who} covers any entry: nothing vouches for this trail "
                "(fabricated, re-signed, or its checkpoints were deleted)",
                last_segment,
            )
        return VerifyReport(
            not self.errors,
            self.entries,
            tuple(self.errors),
            tuple(self.warnings),
            self.trail_id,
            self.first_seq,
            last_seq,
            self.prev,
            self.segments,
            self.checkpoints,
            key_source,
            self.origin,
            self.tree.size,
            self.tree.root().hex(),
            self.anchored,
            self.witnessed,
            self.min_witnesses,
        )

    def require_anchored(self, report: VerifyReport) -> VerifyReport:
        """INVALID if any entry is unanchored (``--require-anchored``)."""
        if not report.unanchored:
            return report
        errors = (
            *report.errors,
            {
                "segment": None,
                "seq": report.last_seq - report.unanchored + 1,
                "message": f"{report.unanchored} entries after the last trusted checkpoint "
                "are not anchored (--require-anchored)",
            },
        )
        return _replace(report, valid=False, errors=errors)


def _replace(report: VerifyReport, **changes: Any) -> VerifyReport:
    import dataclasses

    return dataclasses.replace(report, **changes)


def _line(body: bytes, claimed: str) -> bytes:
    """The line the writer makes for a canonical ``body`` (see ``layout.entry_line``)."""
    return body[:-1] + _HASH_KEY + claimed.encode() + b'"}\n'


def _exact_line(entry: dict[str, Any], claimed: str) -> bytes | None:
    try:
        return _line(jcs_dumps(entry), claimed)
    except (TypeError, ValueError):  # not JSON the writer could have made (e.g. an int beyond 2**53)
        return None


def anchor_from_dict(data: Any, source: str) -> Anchor | None:
    """An Anchor from a state-store or ``checkpoint.json`` record ``{"seq", "hash", "note" | "signature"}``.

    The state store keeps the signed note in its ``signature`` column. None if malformed.
    """
    if not isinstance(data, dict):
        return None
    seq, digest = data.get("seq"), data.get("hash")
    note = data.get("note", data.get("signature"))
    if not (
        isinstance(seq, int)
        and isinstance(digest, str)
        and HASH_RE.match(digest)
        and isinstance(note, str)
        and "\n" in note
    ):
        return None
    return Anchor(seq, digest, source, note)


def load_trail_meta(directory: Path) -> dict[str, Any]:
    """trail.json, checked; raises ValueError with a one-line reason."""
    path = directory / TRAIL_FILE
    try:
        meta = read_json_file(path)
    except FileNotFoundError:
        raise ValueError(f"{path} is missing: {directory} is not an audit trail") from None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"{path} cannot be read: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("trail_id"), str):
        raise ValueError(f"{path} is not a {FORMAT} trail description")
    if meta.get("origin", origin_for(meta["trail_id"])) != origin_for(meta["trail_id"]):
        raise ValueError(f"{path}: origin does not match the trail id")
    if not isinstance(meta.get("keys", []), list):
        raise ValueError(f"{path}: 'keys' must be a list of the trail's public keys")
    return meta


def trail_keys(meta: dict[str, Any]) -> dict[str, PublicKey]:
    """The public keys listed in trail.json under every id of each (malformed entries are skipped)."""
    found: list[PublicKey] = []
    items = meta.get("keys")
    for item in items if isinstance(items, list) else ():
        try:
            found.append(PublicKey.from_raw(bytes.fromhex(item["public_key"])))
        except (KeyError, TypeError, ValueError):
            continue
    return by_alias(found)


def load_retention_records(directory: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The records in retention.jsonl and a list of problems (unparseable lines)."""
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    path = directory / RETENTION_FILE
    if not path.exists():
        return records, problems
    for number, line in enumerate(iter_lines(path), 1):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            problems.append(f"{RETENTION_FILE}:{number} is not valid JSON")
            continue
        if isinstance(record, dict):
            records.append(record)
    return records, problems


def load_witnessed(directory: Path) -> list[str]:
    """The cosigned checkpoint notes kept in ``witnessed.jsonl`` (malformed lines are skipped)."""
    notes: list[str] = []
    path = directory / WITNESSED_FILE
    try:
        lines = list(iter_lines(path))
    except FileNotFoundError:
        return notes
    for line in lines:
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(item, dict) and isinstance(item.get("note"), str):
            notes.append(item["note"])
    return notes


def verify_directory(
    directory: Path,
    *,
    trusted_keys: Iterable[PublicKey] = (),
    anchors: Iterable[Anchor] = (),
    snapshot: dict[str, int] | None = None,
    use_checkpoint_file: bool = True,
    witnesses: Sequence[Witness] = (),
    min_witnesses: int = 0,
    require_anchored: bool = False,
    key_source: str = "given",
    expected_origin: str | None = None,
) -> VerifyReport:
    """Verify the trail in ``directory`` trusting only ``trusted_keys`` (never the keys in trail.json).

    ``anchors``: checkpoints kept outside the log (state store, a witness's latest, a running writer's head).
    ``snapshot``: segment name -> byte size to read up to (a consistent view while writers append).
    ``witnesses``/``min_witnesses``: a checkpoint anchors entries only when that many of them cosigned it.
    ``expected_origin``: the origin this folder must hold (e.g. the one the state store knows for it).
    """
    keys = by_alias(trusted_keys)
    try:
        meta = load_trail_meta(directory)
    except ValueError as exc:
        return VerifyReport(False, 0, ({"segment": None, "seq": None, "message": str(exc)},), key_source=key_source)
    trail_id = meta["trail_id"]
    check = _Check(trail_id, keys, (), [], witnesses=witnesses, min_witnesses=min_witnesses)
    if expected_origin is not None and expected_origin != check.origin:
        check.error(
            None,
            f"{directory} should hold trail {expected_origin!r} but holds {check.origin!r}: the "
            "trail was deleted or replaced and a new one started",
            TRAIL_FILE,
        )
    if not keys:
        check.error(None, "no trusted public key was given: nothing can vouch for the trail (give --public-key)")
    records, problems = load_retention_records(directory)
    good_records = [r for r in records if check.record_ok(r)]
    for record in records:
        if record not in good_records:
            check.error(
                record.get("resume_seq") if isinstance(record.get("resume_seq"), int) else None,
                "a retention record is not validly signed by a trusted key",
                RETENTION_FILE,
            )
    for problem in problems:
        check.error(None, problem, RETENTION_FILE)
    check.retention = good_records
    all_anchors = list(anchors)
    cp_missing = False
    if use_checkpoint_file:
        cp_path = directory / CHECKPOINT_FILE
        if cp_path.exists():
            try:
                data = read_json_file(cp_path)
            except (OSError, orjson.JSONDecodeError) as exc:
                check.error(None, f"{CHECKPOINT_FILE} cannot be read: {exc}", CHECKPOINT_FILE)
                data = None
            if data is not None:
                anchor = anchor_from_dict(data, CHECKPOINT_FILE)
                if anchor is None:
                    check.error(None, f"{CHECKPOINT_FILE} is malformed", CHECKPOINT_FILE)
                else:
                    all_anchors.append(anchor)
        else:
            cp_missing = True
        for note in load_witnessed(directory):
            all_anchors.append(Anchor(0, None, WITNESSED_FILE, note))
    for anchor in all_anchors:
        check.add_anchor(anchor)
    segments = list_segments(directory)
    if snapshot is not None:
        segments = [(s, p) for s, p in segments if p.name in snapshot]
    if not segments:
        check.error(None, "the trail has no segments (all deleted?)")
    last_name = segments[-1][1].name if segments else ""
    if segments:
        _read_ahead(segments[0][1])
    for index, (first_seq, path) in enumerate(segments):
        check.segment_start(path.name, first_seq)
        is_last = index == len(segments) - 1
        if not is_last:
            _read_ahead(segments[index + 1][1])  # the disk reads the next segment while this one is hashed
        limit = snapshot.get(path.name) if snapshot is not None else None
        try:
            _feed_file(check, path, limit, is_last)
        except OSError as exc:
            check.error(check.expected_seq, f"cannot read {path.name}: {exc}")
    if cp_missing and check.checkpoints:
        check.warnings.append(
            f"{CHECKPOINT_FILE} is missing although the log holds checkpoints: the copy outside the log was deleted"
        )
    report = check.finish(last_name, key_source)
    return check.require_anchored(report) if require_anchored else report


_CHUNK = 4 << 20


def _read_ahead(path: Path) -> None:
    """Ask the kernel to read the whole file into the page cache in the background (Linux; a no-op elsewhere).

    Verifying a large trail whose segments are not cached is otherwise read, hash, read, hash: the disk and
    the CPU take turns. With the reads queued ahead the wall time is closer to the larger of the two."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        advise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        advise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def _feed_file(check: _Check, path: Path, limit: int | None, is_last: bool) -> None:
    """Feed one segment: read in large chunks (at most ``limit`` bytes), split on newlines only (as iterating
    the file does: a tampered ``\r`` must not split a line), the complete lines to :func:`_feed_lines`."""
    left = -1 if limit is None else limit
    carry = b""
    with open(path, "rb") as fh:
        while left != 0:
            chunk = fh.read(_CHUNK if left < 0 else min(_CHUNK, left))
            if not chunk:
                break
            if left > 0:
                left -= len(chunk)
            lines = chunk.split(b"\n")
            if carry:
                lines[0] = carry + lines[0]
            carry = lines.pop()
            if lines:
                _feed_lines(check, lines)
    if carry:
        _last_line(check, carry, is_last)


def _feed_lines(check: _Check, lines: list[bytes]) -> None:
    """Complete lines (WITHOUT their newline), oldest first: the chain and the tree.

    The common case is inlined (a million entries must verify in seconds): a line in the writer's own layout
    (canonical body + ``,"hash":"<64 hex>"}``) whose stored bytes hash to the claimed hash; then only the
    fixed tail (prev_hash, seq, timestamp, type: the last keys in sorted order) is parsed. A quote inside a
    JSON string is escaped, so the last ``,"prev_hash":"`` of the body is the top-level one. Signed entries
    (checkpoint, retention), a segment's first entry and anything unusual go through ``_Check.entry``. Then
    the Merkle leaf and one node hash per trailing 1 bit of the size, exactly as ``CompactRange.append``.
    """
    plain_ctx = _EMPTY.copy
    leaf_ctx = _LEAF_PREFIX.copy  # contexts that absorbed 0x00 / 0x01: copying one is cheaper than a new one
    node_ctx = _NODE_PREFIX.copy
    loads = _loads
    hash_key = _HASH_KEY
    prev_key = _PREV_KEY
    decode_error = orjson.JSONDecodeError
    tree = check.tree
    nodes = tree.nodes
    pop = nodes.pop
    push = nodes.append
    notes = check.notes
    anchors = check.anchors
    expected = check.expected_seq
    prev = check.prev
    starting = check.at_segment_start
    size = tree.size
    fast = 0
    for raw in lines:
        tail: Any = None
        if not starting and raw[-75:-66] == hash_key and raw[-2:] == b'"}':
            claimed_b = raw[-66:-2]
            body = raw[:-75] + b"}"
            c = plain_ctx()
            c.update(body)
            if c.hexdigest().encode() == claimed_b:
                cut = body.rfind(prev_key)
                if cut > 0:
                    try:
                        tail = loads(b"{" + body[cut + 1 :])
                    except decode_error:
                        tail = None
        if (
            type(tail) is dict
            and type(seq := tail.get("seq")) is int
            and seq == expected
            and tail.get("prev_hash") == prev
            and type(kind := tail.get("type")) is str
            and kind != "checkpoint"
            and kind != "retention"
        ):
            fast += 1
            prev = claimed_b.decode()
            if seq in anchors:
                check.check_anchors(seq, prev)
            expected = seq + 1
        else:
            check.expected_seq, check.prev, tree.size = expected, prev, size
            check.entries += fast
            fast = 0
            check.entry(raw + b"\n")
            expected, prev, starting, size = check.expected_seq, check.prev, check.at_segment_start, tree.size
        c = leaf_ctx()
        c.update(raw)
        h = c.digest()
        s = size
        while s & 1:
            c = node_ctx()
            c.update(pop() + h)
            h = c.digest()
            s >>= 1
        push(h)
        size += 1
        if size in notes:
            tree.size = size
            check.check_notes(size)
    check.expected_seq, check.prev, tree.size = expected, prev, size
    check.entries += fast


def _last_line(check: _Check, pending: bytes, is_last: bool) -> None:
    """A segment's last bytes without a newline: an incomplete line (a writer stopped mid-write, or a limit)."""
    if is_last:
        check.warnings.append(
            f"{check.segment}: incomplete last line ({len(pending)} bytes) after seq "
            f"{(check.expected_seq or 1) - 1}: a writer stopped mid-write; the entry was never "
            "acknowledged and the next writer to open the trail moves it aside"
        )
    else:
        check.error(check.expected_seq, f"incomplete line inside a sealed segment ({len(pending)} bytes)")


def _feed(check: _Check, lines: Iterator[bytes], is_last: bool) -> None:
    pending: bytes | None = None
    entry = check.entry
    tree = check.tree
    nodes = tree.nodes
    notes = check.notes
    sha = _sha256
    # The tree update is inlined (a million entries must verify in seconds): leaf hash, then one node hash
    # per trailing 1 bit of the size, exactly as CompactRange.append.
    for line in lines:
        if pending is not None:
            entry(pending)
            h = sha(b"\x00" + pending[:-1]).digest()
            size = tree.size
            s = size
            while s & 1:
                h = sha(b"\x01" + nodes.pop() + h).digest()
                s >>= 1
            nodes.append(h)
            tree.size = size = size + 1
            if size in notes:
                check.check_notes(size)
        pending = line
    if pending is None:
        return
    if pending.endswith(b"\n"):
        entry(pending)
        check.leaf(pending)
    elif is_last:
        check.warnings.append(
            f"{check.segment}: incomplete last line ({len(pending)} bytes) after seq "
            f"{(check.expected_seq or 1) - 1}: a writer stopped mid-write; the entry was never "
            "acknowledged and the next writer to open the trail moves it aside"
        )
    else:
        check.error(check.expected_seq, f"incomplete line inside a sealed segment ({len(pending)} bytes)")


def verify_entries(
    lines: Iterable[bytes],
    *,
    trail_id: str,
    trusted_keys: Iterable[PublicKey],
    checkpoints: Iterable[str] = (),
    retention_records: Iterable[dict[str, Any]] = (),
    witnesses: Sequence[Witness] = (),
    min_witnesses: int = 0,
    require_anchored: bool = False,
    anchors: Iterable[Anchor] = (),
    source: str = "memory",
) -> VerifyReport:
    """Verify a trail handed over in memory: its entry lines in order, plus checkpoints kept elsewhere.

    ``lines``: the exact line bytes (with or without the final newline), oldest first; after retention the
    first one is the first retained entry and ``retention_records`` (signed) must account for the rest.
    ``checkpoints``: signed checkpoint notes stored outside the log (e.g. rows of a database copy); each is
    checked against the recomputed tree at its size. Nothing is read from files and nothing from the
    trail is trusted: only ``trusted_keys`` (and ``witnesses``) vouch for it.
    """
    keys = by_alias(trusted_keys)
    check = _Check(trail_id, keys, anchors, [], witnesses=witnesses, min_witnesses=min_witnesses)
    if not keys:
        check.error(None, "no trusted public key was given: nothing can vouch for the trail")
    records = list(retention_records)
    check.retention = [r for r in records if check.record_ok(r)]
    if len(check.retention) != len(records):
        check.error(None, "a retention record is not validly signed by a trusted key", RETENTION_FILE)
    for note in checkpoints:
        check.add_anchor(Anchor(0, None, source + " checkpoint", note))
    check.segment_start(source, 1)
    check.at_segment_start = False
    _feed(check, (line if line.endswith(b"\n") else line + b"\n" for line in lines), True)
    report = check.finish(source, "given")
    return check.require_anchored(report) if require_anchored else report


def verify_lines(
    trail_id: str, lines: Iterable[bytes], keys: Iterable[PublicKey], anchors: Iterable[Anchor] = ()
) -> VerifyReport:
    """Verify an in-memory trail (one segment called ``memory``)."""
    return verify_entries(lines, trail_id=trail_id, trusted_keys=keys, anchors=anchors)
