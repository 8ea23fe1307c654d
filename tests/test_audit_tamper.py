"""Tampering with a trail on disk, as an attacker without the governor's key would: re-chained entries, an
edited last checkpoint, forged checkpoint and retention files, a foreign genesis, renamed segments, lines whose
bytes differ from what was hashed. Each test fails if ``verify`` accepted the tampered trail."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import rfc8785

from claw_governance.audit import open_trail
from claw_governance.audit.layout import list_segments
from claw_governance.audit.verify import VerifyReport, verify_directory
from claw_governance.config import GovernorConfig
from claw_governance.model import AuditEvent
from claw_governance.state import MemoryStateStore

# ----------------------------------------------------------------------------------------------- verify


def _trail(tmp: Path, n: int, **cfg: Any) -> Any:
    config = GovernorConfig(audit_path=tmp / "audit", state_path=tmp / "state", **cfg)
    trail = open_trail(config, MemoryStateStore())
    for i in range(n):
        trail.append(
            AuditEvent(
                "policy_decision", "a", f"read:{i}", context={"i": i}, decision={"outcome": "allow", "allowed": True}
            )
        )
    return trail


def _rewrite(
    path: Path, edit: Callable[[dict[str, Any]], None], *, rehash: bool = True, prev: str | None = None
) -> str | None:
    """Apply ``edit`` to every entry of a segment, re-chaining with recomputed hashes (as an attacker
    without the governor's key would). Returns the last hash."""
    out = []
    for line in path.read_bytes().splitlines(keepends=True):
        entry = orjson.loads(line)
        entry.pop("hash")
        if prev is not None and rehash:
            entry["prev_hash"] = prev
        edit(entry)
        entry["hash"] = hashlib.sha256(rfc8785.dumps(entry)).hexdigest()
        prev = entry["hash"]
        out.append(orjson.dumps(entry) + b"\n")
    path.chmod(0o644)
    path.write_bytes(b"".join(out))
    return prev


def _verify(folder: Path, trail: Any) -> Any:
    return verify_directory(folder, trusted_keys=[trail.key.public])


def _errors(report: VerifyReport) -> str:
    assert not report.valid, report
    return " | ".join(e["message"] for e in report.errors)


def test_a_rechained_trail_is_caught_by_the_in_log_checkpoint_signatures(tmp_path: Path) -> None:
    # The attacker changes entry 3, recomputes every hash after it, and deletes checkpoint.json (no state
    # store at hand): only the signed checkpoints inside the log are left to catch it.
    trail = _trail(tmp_path, 10, audit_checkpoint_interval=5)
    trail.close()
    (path,) = [p for _, p in list_segments(tmp_path / "audit")]
    (tmp_path / "audit" / "checkpoint.json").unlink()
    original = [orjson.loads(line) for line in path.read_bytes().splitlines()]

    def tamper(entry: dict[str, Any], *, fix_checkpoint: bool) -> None:
        if entry["seq"] == 3:
            entry["context"] = {"i": 999}
        if entry["type"] == "checkpoint" and fix_checkpoint:
            entry["details"]["checkpoint_hash"] = entry["prev_hash"]  # the signature still covers the old hash

    # 1. checkpoint details follow the new chain: the signature no longer matches them
    _rewrite(path, lambda e: tamper(e, fix_checkpoint=True), prev=original[0]["prev_hash"])
    assert "does not match the recomputed Merkle tree" in _errors(_verify(tmp_path / "audit", trail))
    # 2. checkpoint details left as signed: they no longer cover the entry before them
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in original))
    _rewrite(path, lambda e: tamper(e, fix_checkpoint=False), prev=original[0]["prev_hash"])
    assert "does not match the recomputed Merkle tree" in _errors(_verify(tmp_path / "audit", trail))


def test_an_edited_last_checkpoint_is_caught_by_the_outside_anchor(tmp_path: Path) -> None:
    # `created` of a checkpoint is not covered by its signature; the copy outside the log still pins the
    # checkpoint entry's exact hash.
    trail = _trail(tmp_path, 4)
    trail.close()
    (path,) = [p for _, p in list_segments(tmp_path / "audit")]
    lines = path.read_bytes().splitlines(keepends=True)
    last = orjson.loads(lines[-1])
    assert last["type"] == "checkpoint"
    last.pop("hash")
    last["details"]["created"] = 1.0
    last["hash"] = hashlib.sha256(rfc8785.dumps(last)).hexdigest()
    path.chmod(0o644)
    path.write_bytes(b"".join(lines[:-1]) + orjson.dumps(last) + b"\n")
    assert "different hash" in _errors(_verify(tmp_path / "audit", trail))


def test_a_forged_checkpoint_file_is_reported(tmp_path: Path) -> None:
    trail = _trail(tmp_path, 6)
    trail.close()
    folder = tmp_path / "audit"
    (path,) = [p for _, p in list_segments(folder)]
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3]))  # cut the tail, then forge checkpoint.json to match it
    cp = orjson.loads((folder / "checkpoint.json").read_bytes())
    head = orjson.loads(lines[2])
    cp.update(seq=head["seq"], hash=head["hash"])
    (folder / "checkpoint.json").write_bytes(orjson.dumps(cp))
    assert "truncated" in _errors(_verify(folder, trail))


def test_a_forged_retention_record_does_not_excuse_a_deleted_oldest_segment(tmp_path: Path) -> None:
    trail = _trail(tmp_path, 60, audit_rotation_size_mb=0.004)
    trail.close()
    folder = tmp_path / "audit"
    segments = list_segments(folder)
    assert len(segments) > 2
    last_of_first = orjson.loads(segments[0][1].read_bytes().splitlines()[-1])
    record = {
        "trail_id": trail.trail_id,
        "created": time.time(),
        "key_id": trail.key.public.key_id,
        "resume_seq": segments[1][0],
        "resume_prev_hash": last_of_first["hash"],
        "retention_days": 1,
        "removed": [],
        "signature": "AAAA",
    }
    (folder / "retention.jsonl").write_bytes(orjson.dumps(record) + b"\n")
    segments[0][1].unlink()
    assert "not validly signed" in _errors(_verify(folder, trail))


def test_a_chain_must_start_at_this_trails_genesis(tmp_path: Path) -> None:
    trail = _trail(tmp_path, 5)  # still open: no checkpoint yet, so nothing but the genesis pins seq 1
    (path,) = [p for _, p in list_segments(tmp_path / "audit")]
    _rewrite(path, lambda e: None, prev="0" * 64)
    assert "prev_hash" in _errors(_verify(tmp_path / "audit", trail))
    trail.close()


def test_a_renamed_segment_is_reported(tmp_path: Path) -> None:
    trail = _trail(tmp_path, 60, audit_rotation_size_mb=0.004)
    trail.close()
    folder = tmp_path / "audit"
    segments = list_segments(folder)
    first, path = segments[1]
    path.rename(folder / f"segment-{first + 1:012d}.jsonl")  # still sorts in place; the chain is unbroken
    assert "should start at seq" in _errors(_verify(folder, trail))


@pytest.mark.parametrize(
    "edit",
    [
        # a duplicated key: orjson (last wins) still reads the original, a first-wins reader sees "allowed"
        (b'{"action":', b'{"decision":{"allowed":true,"outcome":"allow"},"action":'),
        (b'"seq":', b' "seq" : '),  # whitespace: same content, other bytes
        (b'"type":"policy_decision"', b'"type":"policy_\\u0064ecision"'),  # an escape that reads the same
    ],
)
def test_a_line_whose_bytes_are_not_what_was_hashed_is_reported(tmp_path: Path, edit: tuple[bytes, bytes]) -> None:
    trail = _trail(tmp_path, 3)
    trail.append(
        AuditEvent(
            "policy_decision",
            "a",
            "delete:users",
            decision={"outcome": "deny", "allowed": False},
            context={"big": 2**60},
        )
    )
    trail.close()
    (path,) = [p for _, p in list_segments(tmp_path / "audit")]
    lines = path.read_bytes().splitlines(keepends=True)
    assert b"delete:users" in lines[3]
    lines[3] = lines[3].replace(*edit, 1)
    path.chmod(0o644)
    path.write_bytes(b"".join(lines))
    report = verify_directory(tmp_path / "audit", trusted_keys=[trail.key.public])
    assert any(e["seq"] == 4 and "not the canonical form" in e["message"] for e in report.errors), report.errors
