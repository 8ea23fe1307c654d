"""tlog-proof files and evidence-bundle verification (offline, trusting only the keys given).

A c2sp.org/tlog-proof@v1 file holds the entry's zero-based index (seq - 1), its RFC 6962 inclusion proof and
the checkpoint (with its cosignatures) that the proof leads to. Anyone can check one with the Go reference
code (golang.org/x/mod/sumdb/note and tlog): ``tools/tlogverify`` in the source tree does exactly that.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Sequence
from pathlib import Path

from claw_governance.audit.keys import PublicKey
from claw_governance.audit.layout import list_segments
from claw_governance.audit.merkle import CompactRange, LeafHashes, inclusion_proof, leaf_hash, verify_inclusion
from claw_governance.audit.note import Checkpoint, NoteSignature, parse_checkpoint
from claw_governance.audit.verify import VerifyReport, Witness, load_retention_records, verify_directory
from claw_governance.errors import AuditError

HEADER = "c2sp.org/tlog-proof@v1"


def trail_leaves(directory: Path) -> tuple[LeafHashes, dict[int, bytes]]:
    """The leaf hashes of every retained line, and the line (without newline) of each seq."""
    segments = list_segments(directory)
    base = CompactRange()
    if segments and segments[0][0] > 1:
        records, _ = load_retention_records(directory)
        for record in records:
            if record.get("resume_seq") == segments[0][0]:
                base = CompactRange.from_hex(segments[0][0] - 1, record.get("resume_range") or [])
    leaves = LeafHashes(base)
    lines: dict[int, bytes] = {}
    seq = base.size
    for _, path in segments:
        with open(path, "rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break
                seq += 1
                leaves.add_line(line[:-1])
                lines[seq] = line[:-1]
    return leaves, lines


def latest_checkpoint(directory: Path) -> Checkpoint:
    """The trail's newest checkpoint (``checkpoint.json``) with every cosignature ``witnessed.jsonl`` has for it."""
    from claw_governance.audit.layout import CHECKPOINT_FILE, read_json_file
    from claw_governance.audit.verify import load_witnessed

    try:
        record = read_json_file(directory / CHECKPOINT_FILE)
        cp = parse_checkpoint(record["note"])
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise AuditError(f"{directory / CHECKPOINT_FILE}: no checkpoint ({type(exc).__name__}: {exc})") from None
    extra: list[NoteSignature] = []
    for note in load_witnessed(directory):
        try:
            other = parse_checkpoint(note)
        except ValueError:
            continue
        if other.size == cp.size and other.root == cp.root and other.text == cp.text:
            extra.extend(other.signatures)
    return cp.with_signatures(extra)


def make_proof(leaves: LeafHashes, cp: Checkpoint, seq: int) -> str:
    """The tlog-proof text for entry ``seq`` in the tree of ``cp``."""
    if not 1 <= seq <= cp.size:
        raise AuditError(
            f"entry {seq} is not covered by the checkpoint (tree size {cp.size}): wait for the next "
            "checkpoint or run `claw-gov audit checkpoint` after the governor wrote one"
        )
    if leaves.root(cp.size) != cp.root:
        raise AuditError(f"the trail does not match its own checkpoint at size {cp.size}: run `claw-gov audit verify`")
    proof = inclusion_proof(seq - 1, cp.size, leaves)
    return (
        f"{HEADER}\nindex {seq - 1}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof) + "\n" + cp.note()
    )


def tlog_proof(directory: Path, cp: Checkpoint, seq: int) -> str:
    """A tlog-proof for entry ``seq`` of the trail in ``directory`` against ``cp``."""
    leaves, _ = trail_leaves(directory)
    try:
        return make_proof(leaves, cp, seq)
    except IndexError as exc:
        raise AuditError(f"entry {seq}: {exc}") from None


def parse_proof(text: str) -> tuple[int, list[bytes], Checkpoint]:
    """(index, inclusion proof, checkpoint) of a tlog-proof; ValueError if malformed."""
    head, sep, note = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or lines[0] != HEADER:
        raise ValueError(f"not a {HEADER} file")
    rest = lines[1:]
    if rest and rest[0].startswith("extra "):
        rest = rest[1:]
    if not rest or not rest[0].startswith("index ") or not rest[0][6:].isdigit():
        raise ValueError("missing the index line")
    try:
        proof = [base64.b64decode(line, validate=True) for line in rest[1:]]
    except binascii.Error:
        raise ValueError("a proof line is not base64") from None
    return int(rest[0][6:]), proof, parse_checkpoint(note)


def check_proof(text: str, line: bytes, keys: Sequence[PublicKey], origin: str) -> str | None:
    """None if ``text`` proves ``line`` under a checkpoint of ``origin`` signed by one of ``keys``; else why not."""
    try:
        index, proof, cp = parse_proof(text)
    except ValueError as exc:
        return str(exc)
    if cp.origin != origin:
        return f"the proof's checkpoint is for {cp.origin}, not {origin}"
    if not any(cp.signed_by(k) for k in keys):
        return "the proof's checkpoint is not signed by a trusted key"
    if not verify_inclusion(index, cp.size, leaf_hash(line), proof, cp.root):
        return f"the inclusion proof of index {index} does not verify"
    return None


def verify_bundle(
    directory: Path,
    keys: list[PublicKey],
    *,
    witnesses: Sequence[Witness] = (),
    min_witnesses: int = 0,
    require_anchored: bool = False,
) -> VerifyReport:
    """Verify an evidence bundle: its trail copy (chain, tree, checkpoints) and every proof file in it."""
    trail = directory / "trail"
    if not trail.is_dir():
        raise AuditError(f"{directory}: not an evidence bundle (no trail/ folder)")
    extra = (
        [str(p.read_text()) for p in sorted((directory / "checkpoints").glob("*.note"))]
        if (directory / "checkpoints").is_dir()
        else []
    )
    from claw_governance.audit.verify import Anchor

    anchors = [Anchor(0, None, f"checkpoints/{i}", note) for i, note in enumerate(extra)]
    report = verify_directory(
        trail,
        trusted_keys=keys,
        anchors=anchors,
        witnesses=witnesses,
        min_witnesses=min_witnesses,
        require_anchored=require_anchored,
        key_source="given",
    )
    errors = list(report.errors)
    proofs = sorted((directory / "proofs").glob("*.tlog-proof")) if (directory / "proofs").is_dir() else []
    if proofs:
        _, lines = trail_leaves(trail)
        for path in proofs:
            try:
                seq = int(path.stem.split("-")[-1])
            except ValueError:
                errors.append({"segment": "proofs", "seq": None, "message": f"{path.name}: unexpected file name"})
                continue
            line = lines.get(seq)
            problem = (
                "the entry is missing from trail/"
                if line is None
                else check_proof(path.read_text(), line, keys, report.origin or "")
            )
            if problem is not None:
                errors.append({"segment": "proofs", "seq": seq, "message": f"{path.name}: {problem}"})
    if len(errors) == len(report.errors):
        return report
    return dataclasses.replace(report, valid=False, errors=tuple(errors))
