"""Streaming verification of a trail: constant memory, one pass, every kind of damage named.

What is checked, in one pass over the segments (oldest first):

* every line is a JSON object with the entry fields; ``hash`` is SHA-256 over the RFC 8785 form of the rest;
* ``seq`` increases by exactly one and ``prev_hash`` is the previous entry's hash (seq 1: the genesis hash of
  this trail id; after retention: the ``resume_prev_hash`` of a signed retention record);
* each segment's first seq matches its file name;
* each in-log checkpoint is signed by a trusted key over (trail id, previous seq, previous hash);
* each retention entry and record carries a valid signature;
* checkpoints kept outside the log (state store, ``checkpoint.json``, the running writer's own head) name
  an entry that exists with exactly that hash: a truncated tail or a deleted newest segment shows here.

The first error names the segment and seq where the trail first goes wrong; verification then resynchronises
on the damaged entry and continues, so independent damage further on is reported too (up to a limit).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
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
    checkpoint_message,
    exact_hash,
    genesis_hash,
    iter_lines,
    list_segments,
    read_json_file,
    record_message,
)

MAX_ERRORS = 100
_loads = orjson.loads
_dumps = orjson.dumps
_sha256 = hashlib.sha256
_HASH_KEY = b',"hash":"'
_PREV_KEY = b',"prev_hash":"'


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Result of ``verify()``.

    ``valid`` is True only if no error was found. ``entries`` counts the complete entries read. ``errors`` is a
    tuple of ``{"segment", "seq", "message"}``, the first one being where the trail first goes wrong.
    ``warnings`` are findings that do not break the chain (e.g. an incomplete last line left by a writer that
    was killed mid-write: it was never acknowledged, and the next writer to open the trail repairs it).
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

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for the CLI and reports)."""
        return {"valid": self.valid, "entries": self.entries, "errors": list(self.errors),
                "warnings": list(self.warnings), "trail_id": self.trail_id, "first_seq": self.first_seq,
                "last_seq": self.last_seq, "last_hash": self.last_hash, "segments": self.segments,
                "checkpoints": self.checkpoints, "key_source": self.key_source}


@dataclass(frozen=True, slots=True)
class Anchor:
    """A checkpoint kept outside the log: the entry ``seq`` must exist with ``hash``.

    ``signature`` (base64 Ed25519 over ``checkpoint_message``) is checked when present; the running writer's
    own head has none (it is trusted because it is in this process's memory).
    """

    seq: int
    hash: str
    source: str
    signature: str | None = None


class _Check:
    """One verification run; feed it segments, then call ``finish``."""

    def __init__(self, trail_id: str, keys: dict[str, PublicKey], anchors: Iterable[Anchor],
                 retention: list[dict[str, Any]]) -> None:
        self.trail_id = trail_id
        self.keys = keys
        self.errors: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.anchors: dict[int, list[Anchor]] = {}
        for anchor in anchors:
            self.anchors.setdefault(anchor.seq, []).append(anchor)
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

    def error(self, seq: int | None, message: str, segment: str | None = None) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"segment": segment if segment is not None else self.segment, "seq": seq,
                                "message": message})

    def start(self, first_seq: int, prev_hash: str | None) -> None:
        """Where the chain must start: seq 1 at genesis, or a retention record's resume point."""
        if first_seq == 1:
            self.expected_seq, self.prev = 1, genesis_hash(self.trail_id)
            return
        for record in self.retention:
            if record.get("resume_seq") == first_seq and record.get("resume_prev_hash") == prev_hash:
                self.expected_seq, self.prev = first_seq, prev_hash
                return
        self.error(first_seq, f"the trail starts at seq {first_seq}: entries 1..{first_seq - 1} are missing and "
                   "no signed retention record accounts for them (deleted or replaced oldest segment?)")
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
                        tail = _loads(b"{" + body[cut + 1:])
                    except orjson.JSONDecodeError:
                        tail = None
                    if type(tail) is dict and self._fast_link(tail, claimed_b.decode(), raw):
                        return
        self._full_entry(raw)

    def _fast_link(self, tail: dict[str, Any], claimed: str, raw: bytes) -> bool:
        seq = tail.get("seq")
        if (seq != self.expected_seq or tail.get("prev_hash") != self.prev or self.at_segment_start
                or type(seq) is not int):
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
        if (seq == self.expected_seq and prev == self.prev and not self.at_segment_start
                and type(seq) is int and type(claimed) is str
                and _sha256(body := _dumps(entry, option=SORTED)).hexdigest() == claimed
                and raw == _line(body, claimed)):
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
        if not (isinstance(claimed, str) and isinstance(seq, int) and not isinstance(seq, bool)
                and isinstance(prev, str) and isinstance(entry.get("type"), str)):
            self.garbage("missing seq, type, prev_hash or hash")
            return
        self.entries += 1
        if self.expected_seq is None:
            self.first_seq = seq
            self.start(seq, prev)
        if self.at_segment_start:
            self.at_segment_start = False
            if seq != self.name_seq:
                self.error(seq, f"segment {self.segment} should start at seq {self.name_seq} but starts at {seq} "
                           "(renamed or replaced segment)")
        ok = True
        if seq != self.expected_seq:
            ok = False
            if isinstance(self.expected_seq, int) and seq > self.expected_seq:
                missing = f"{self.expected_seq}" if seq == self.expected_seq + 1 else \
                    f"{self.expected_seq}..{seq - 1}"
                self.error(self.expected_seq, f"entry {missing} is missing (found seq {seq} where "
                           f"{self.expected_seq} was expected): deleted entry or segment")
            else:
                self.error(seq, f"seq {seq} appears where {self.expected_seq} was expected: entries inserted, "
                           "duplicated or out of order")
        elif prev != self.prev:
            ok = False
            self.error(seq, "prev_hash does not match the previous entry's hash: an entry before it was changed, "
                       "inserted or replaced")
        body = orjson.dumps(entry, option=SORTED)
        actual = hashlib.sha256(body).hexdigest()
        if actual != claimed and exact_hash(entry) != claimed:
            ok = False
            self.error(seq, "hash does not match the entry's content: a field was changed")
        elif raw != _line(body, claimed) and raw != _exact_line(entry, claimed):
            # The parsed content hashes right but the stored bytes are not what was hashed: a duplicated key
            # (which readers that keep the first occurrence would show instead), extra whitespace or escapes.
            ok = False
            self.error(seq, "the line is not the canonical form of its entry (duplicate key, extra whitespace or "
                       "other bytes added): it was edited")
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
                self.error(seq, f"the checkpoint in {anchor.source} names seq {seq} with a different hash: "
                           "the entry or the trail was replaced")

    def _key(self, key_id: Any) -> PublicKey | None:
        return self.keys.get(key_id) if isinstance(key_id, str) else None

    def checkpoint(self, seq: int, entry: dict[str, Any]) -> None:
        details = entry.get("details")
        if not isinstance(details, dict):
            self.error(seq, "checkpoint entry without details")
            return
        self.checkpoints += 1
        cp_seq, cp_hash = details.get("checkpoint_seq"), details.get("checkpoint_hash")
        if details.get("trail_id") != self.trail_id:
            self.error(seq, f"checkpoint belongs to trail {details.get('trail_id')!r}, not {self.trail_id!r} "
                       "(segment from another trail)")
            return
        if cp_seq != seq - 1 or not isinstance(cp_hash, str) or cp_hash != entry.get("prev_hash"):
            self.error(seq, "checkpoint does not cover the entry before it")
            return
        key = self._key(details.get("key_id"))
        if key is None:
            self.error(seq, f"checkpoint signed by key {details.get('key_id')!r}, which is not trusted")
        elif not key.verify(str(details.get("signature")), checkpoint_message(self.trail_id, cp_seq, cp_hash)):
            self.error(seq, "checkpoint signature is invalid (forged checkpoint or wrong public key)")

    def retention_entry(self, seq: int, entry: dict[str, Any]) -> None:
        details = entry.get("details")
        if not isinstance(details, dict) or not self.record_ok(details):
            self.error(seq, "retention entry without a valid signature")

    def record_ok(self, record: dict[str, Any]) -> bool:
        key = self._key(record.get("key_id"))
        return (key is not None and record.get("trail_id") == self.trail_id
                and key.verify(str(record.get("signature")), record_message(record)))

    def finish(self, last_segment: str) -> VerifyReport:
        last_seq = (self.expected_seq - 1) if self.expected_seq is not None else 0
        for seq in sorted(self.anchors):
            if seq > last_seq:
                for anchor in self.anchors[seq]:
                    self.error(last_seq + 1, f"the checkpoint in {anchor.source} covers seq {seq} but the trail ends "
                               f"at seq {last_seq}: truncated tail or deleted newest segment", last_segment)
            elif seq < self.first_seq:
                self.warnings.append(f"the checkpoint in {self.anchors[seq][0].source} (seq {seq}) is older than "
                                     "the oldest retained entry")
        return VerifyReport(not self.errors, self.entries, tuple(self.errors), tuple(self.warnings),
                            self.trail_id, self.first_seq, last_seq, self.prev, self.segments, self.checkpoints)


def _line(body: bytes, claimed: str) -> bytes:
    """The line the writer makes for a canonical ``body`` (see ``layout.entry_line``)."""
    return body[:-1] + _HASH_KEY + claimed.encode() + b'"}\n'


def _exact_line(entry: dict[str, Any], claimed: str) -> bytes | None:
    try:
        return _line(jcs_dumps(entry), claimed)
    except (TypeError, ValueError):  # not JSON the writer could have made (e.g. an int beyond 2**53)
        return None


def _check_anchor_signatures(check: _Check, anchors: list[Anchor]) -> list[Anchor]:
    good: list[Anchor] = []
    for anchor in anchors:
        if anchor.signature is None:
            good.append(anchor)
            continue
        message = checkpoint_message(check.trail_id, anchor.seq, anchor.hash)
        if any(key.verify(anchor.signature, message) for key in check.keys.values()):
            good.append(anchor)
        else:
            check.error(anchor.seq, f"the checkpoint in {anchor.source} is not signed by a trusted key "
                        "(wrong public key, or a forged checkpoint)", anchor.source)
    return good


def anchor_from_dict(data: Any, source: str) -> Anchor | None:
    """An Anchor from a store/file checkpoint dict ``{"seq","hash","signature"}``; None if malformed."""
    if not isinstance(data, dict):
        return None
    seq, digest, sig = data.get("seq"), data.get("hash"), data.get("signature")
    if not (isinstance(seq, int) and isinstance(digest, str) and HASH_RE.match(digest) and isinstance(sig, str)):
        return None
    return Anchor(seq, digest, source, sig)


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
    return meta


def trail_keys(meta: dict[str, Any]) -> dict[str, PublicKey]:
    """The public keys listed in trail.json (malformed entries are skipped)."""
    keys: dict[str, PublicKey] = {}
    for item in meta.get("keys") or ():
        try:
            key = PublicKey(bytes.fromhex(item["public_key"]))
        except (KeyError, TypeError, ValueError):
            continue
        if len(key.raw) == 32:
            keys[key.key_id] = key
    return keys


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


def verify_directory(directory: Path, *, trusted_keys: Iterable[PublicKey] | None = None,
                     anchors: Iterable[Anchor] = (), snapshot: dict[str, int] | None = None,
                     use_checkpoint_file: bool = True) -> VerifyReport:
    """Verify the trail in ``directory``.

    ``trusted_keys``: the keys whose signatures count. When None, the keys listed in trail.json are used and
    the report says so (``key_source="trail.json"``): that detects accidents and edits by anyone who cannot
    re-sign, but a trusted copy of the governor's public key (``--public-key``) is stronger.
    ``anchors``: checkpoints kept outside the log (state store, a running writer's head).
    ``snapshot``: segment name -> byte size to read up to (a consistent view while writers append).
    """
    try:
        meta = load_trail_meta(directory)
    except ValueError as exc:
        return VerifyReport(False, 0, ({"segment": None, "seq": None, "message": str(exc)},))
    trail_id = meta["trail_id"]
    if trusted_keys is None:
        keys, key_source = trail_keys(meta), "trail.json"
    else:
        keys, key_source = {k.key_id: k for k in trusted_keys}, "given"
    records, problems = load_retention_records(directory)
    check = _Check(trail_id, keys, (), [])
    good_records = [r for r in records if check.record_ok(r)]
    for record in records:
        if record not in good_records:
            check.error(record.get("resume_seq") if isinstance(record.get("resume_seq"), int) else None,
                        "a retention record is not validly signed by a trusted key", RETENTION_FILE)
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
                if anchor is None or (isinstance(data, dict) and data.get("trail_id") != trail_id):
                    check.error(None, f"{CHECKPOINT_FILE} is malformed or belongs to another trail", CHECKPOINT_FILE)
                else:
                    all_anchors.append(anchor)
        else:
            cp_missing = True
    for anchor in _check_anchor_signatures(check, all_anchors):
        check.anchors.setdefault(anchor.seq, []).append(anchor)
    segments = list_segments(directory)
    if snapshot is not None:
        segments = [(s, p) for s, p in segments if p.name in snapshot]
    if not segments:
        check.error(None, "the trail has no segments (all deleted?)")
    last_name = segments[-1][1].name if segments else ""
    for index, (first_seq, path) in enumerate(segments):
        check.segment_start(path.name, first_seq)
        is_last = index == len(segments) - 1
        limit = snapshot.get(path.name) if snapshot is not None else None
        try:
            _feed(check, iter_lines(path, limit), is_last)
        except OSError as exc:
            check.error(check.expected_seq, f"cannot read {path.name}: {exc}")
    report = check.finish(last_name)
    if cp_missing and check.checkpoints:
        check.warnings.append(f"{CHECKPOINT_FILE} is missing although the log holds checkpoints: the copy outside "
                              "the log was deleted")
    if check.checkpoints == 0 and report.entries and not check.anchors:
        check.warnings.append("no signed checkpoint found: a truncated tail cannot be detected")
    return VerifyReport(report.valid, report.entries, report.errors, tuple(check.warnings), trail_id,
                        report.first_seq, report.last_seq, report.last_hash, report.segments, report.checkpoints,
                        key_source)


def _feed(check: _Check, lines: Iterator[bytes], is_last: bool) -> None:
    pending: bytes | None = None
    for line in lines:
        if pending is not None:
            check.entry(pending)
        pending = line
    if pending is None:
        return
    if pending.endswith(b"\n"):
        check.entry(pending)
    elif is_last:
        check.warnings.append(f"{check.segment}: incomplete last line ({len(pending)} bytes) after seq "
                              f"{(check.expected_seq or 1) - 1}: a writer stopped mid-write; the entry was never "
                              "acknowledged and the next writer to open the trail moves it aside")
    else:
        check.error(check.expected_seq, f"incomplete line inside a sealed segment ({len(pending)} bytes)")


def verify_lines(trail_id: str, lines: Iterable[bytes], keys: Iterable[PublicKey],
                 anchors: Iterable[Anchor] = ()) -> VerifyReport:
    """Verify an in-memory trail (one segment called ``memory``)."""
    check = _Check(trail_id, {k.key_id: k for k in keys}, anchors, [])
    check.segment_start("memory", 1)
    _feed(check, iter(lines), True)
    report = check.finish("memory")
    return VerifyReport(report.valid, report.entries, report.errors, tuple(check.warnings), trail_id,
                        report.first_seq, report.last_seq, report.last_hash, 1, report.checkpoints, "memory")
