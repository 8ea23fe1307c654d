"""RFC 6962 tree, proofs and C2SP notes: properties over many sizes, and the file-free verifier."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claw_governance.audit import open_trail
from claw_governance.audit.keys import SigningKey
from claw_governance.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    LeafHashes,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from claw_governance.audit.note import (
    ALG_COSIGNATURE_V1,
    Checkpoint,
    cosign,
    format_checkpoint,
    parse_checkpoint,
    parse_vkey,
    sign_note,
    vkey,
)
from claw_governance.audit.verify import verify_entries
from claw_governance.config import GovernorConfig
from claw_governance.model import AuditEvent
from claw_governance.state import MemoryStateStore


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH, written straight from the definition (the reference for the fast code)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def test_rfc6962_known_answers() -> None:
    # Leaf and node hashes as RFC 6962 defines them (0x00 / 0x01 prefixes).
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=70), st.data())
def test_compact_range_root_and_proofs_match_the_definition(lines: list[bytes], data: st.DataObject) -> None:
    leaves = [leaf_hash(line) for line in lines]
    rng = CompactRange()
    rng.extend_lines(lines)
    assert rng.root() == mth(leaves)
    store = LeafHashes()
    for line in lines:
        store.add_line(line)
    n = len(lines)
    i = data.draw(st.integers(0, n - 1))
    proof = inclusion_proof(i, n, store)
    assert verify_inclusion(i, n, leaves[i], proof, mth(leaves))
    assert not verify_inclusion(i, n, leaf_hash(lines[i] + b"x"), proof, mth(leaves))
    if proof:
        bad = list(proof)
        bad[0] = bytes([bad[0][0] ^ 1]) + bad[0][1:]
        assert not verify_inclusion(i, n, leaves[i], bad, mth(leaves))
    m = data.draw(st.integers(1, n))
    cproof = consistency_proof(m, n, store)
    assert verify_consistency(m, n, mth(leaves[:m]), mth(leaves), cproof)
    if m < n:
        assert not verify_consistency(m, n, mth(leaves[:m]), mth([*leaves[:-1], leaf_hash(b"forged")]), cproof)
    # A writer that opened the trail at size m (only the compact range before it) proves the same.
    base = CompactRange()
    base.extend_lines(lines[:m])
    partial = LeafHashes(base)
    for line in lines[m:]:
        partial.add_line(line)
    for old in range(m, n + 1):
        assert consistency_proof(old, n, partial) == consistency_proof(old, n, store)


def test_notes_round_trip_and_reject_changes() -> None:
    key = SigningKey.generate()
    origin = "example.com/log"
    text = format_checkpoint(origin, 5, b"\x07" * 32)
    cp = Checkpoint(origin, 5, b"\x07" * 32, text, (sign_note(text, origin, key),))
    parsed = parse_checkpoint(cp.note())
    assert parsed.signed_by(key.public) and parsed.size == 5
    assert not parse_checkpoint(cp.note().replace("\n5\n", "\n6\n")).signed_by(key.public)
    name, public, alg = parse_vkey(vkey(origin, key.public))
    assert (name, public.raw, alg) == (origin, key.public.raw, 1)
    witness = SigningKey.generate()
    signed = parsed.with_signatures([cosign(text, "w.example/1", witness, 1700000000)])
    assert parse_checkpoint(signed.note()).cosigned_by("w.example/1", witness.public) == 1700000000
    assert parse_checkpoint(signed.note()).cosigned_by("w.example/1", key.public) is None
    assert parse_vkey(vkey("w.example/1", witness.public, ALG_COSIGNATURE_V1))[2] == ALG_COSIGNATURE_V1
    with pytest.raises(ValueError):
        parse_vkey(vkey(origin, key.public)[:-2] + "AA")


def test_verify_entries_checks_lines_and_outside_checkpoints_without_files() -> None:
    trail = open_trail(GovernorConfig(audit_checkpoint_interval=4), MemoryStateStore())
    for i in range(10):
        trail.append(AuditEvent("policy_decision", "a", f"read:{i}"))
    trail.checkpoint()
    lines = [line.rstrip(b"\n") for line in trail._memory or []]
    note = trail.signed_checkpoint().note()
    ok = verify_entries(
        lines, trail_id=trail.trail_id, trusted_keys=[trail.key.public], checkpoints=[note], require_anchored=True
    )
    assert ok.valid and ok.unanchored == 0 and ok.entry_status(3) == "anchored"
    # A row deleted from the copy, a changed byte, a stranger's key, or no key: all INVALID.
    assert not verify_entries(
        lines[:-1], trail_id=trail.trail_id, trusted_keys=[trail.key.public], checkpoints=[note]
    ).valid
    changed = [*lines[:2], lines[2].replace(b"read:2", b"read:X"), *lines[3:]]
    assert not verify_entries(changed, trail_id=trail.trail_id, trusted_keys=[trail.key.public]).valid
    assert not verify_entries(lines, trail_id=trail.trail_id, trusted_keys=[SigningKey.generate().public]).valid
    assert not verify_entries(lines, trail_id=trail.trail_id, trusted_keys=[]).valid
    # Entries after the last trusted checkpoint are the unanchored tail; --require-anchored rejects it.
    for i in range(3):
        trail.append(AuditEvent("policy_decision", "a", f"late:{i}"))
    more = [line.rstrip(b"\n") for line in trail._memory or []]
    tail = verify_entries(more, trail_id=trail.trail_id, trusted_keys=[trail.key.public])
    # (the last checkpoint entry itself is covered only by the copy outside the log: 1 + 3)
    assert tail.valid and tail.unanchored == 4 and tail.entry_status(tail.last_seq) == "unanchored"
    assert not verify_entries(
        more, trail_id=trail.trail_id, trusted_keys=[trail.key.public], require_anchored=True
    ).valid
    trail.close()
