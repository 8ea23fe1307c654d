"""The audit trail: chain, segments, checkpoints, tamper detection, durability failures, retention."""

from __future__ import annotations

import hashlib
import itertools
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from claw_governance.audit import AuditTrail, RetentionRule, VerifyReport, open_trail
from claw_governance.audit.keys import SigningKey
from claw_governance.audit.layout import list_segments
from claw_governance.audit.reader import TrailReader
from claw_governance.audit.retention import retention_record
from claw_governance.audit.verify import verify_directory
from claw_governance.config import GovernorConfig
from claw_governance.errors import AuditError
from claw_governance.model import AuditEvent
from claw_governance.state import MemoryStateStore


def event(i: int, agent: str = "agent-1", **extra: Any) -> AuditEvent:
    return AuditEvent(
        "policy_decision",
        agent,
        f"read:item{i}",
        context={"i": i, "password": "hunter2", **extra},
        decision={"outcome": "allow", "allowed": True},
        policy_hash="p" * 64,
        details={"call_id": f"c{i}", "output": {"token": "t", "rows": [i]}},
    )


def make(
    tmp: Path,
    n: int = 0,
    *,
    rotation_mb: float = 100.0,
    interval: int = 1000,
    store: MemoryStateStore | None = None,
    **cfg: Any,
) -> AuditTrail:
    config = GovernorConfig(
        audit_path=tmp / "audit",
        state_path=tmp / "state",
        audit_rotation_size_mb=rotation_mb,
        audit_checkpoint_interval=interval,
        **cfg,
    )
    trail = open_trail(config, store if store is not None else MemoryStateStore())
    for i in range(n):
        trail.append(event(i))
    return trail


def first_error(report: VerifyReport) -> dict[str, Any]:
    assert not report.valid, report
    return report.errors[0]


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def writable(path: Path) -> None:
    path.chmod(0o644)


# ------------------------------------------------------------------------------------------------- chain


def test_entries_chain_and_hash_is_rfc8785_over_every_other_field(tmp_path: Path) -> None:
    trail = make(tmp_path, 5)
    entries = list(trail.entries())
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    for prev, entry in itertools.pairwise(entries):
        assert entry["prev_hash"] == prev["hash"]
    for entry in entries:
        body = {k: v for k, v in entry.items() if k != "hash"}
        assert set(body) == {
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
        }
        assert hashlib.sha256(rfc8785.dumps(body)).hexdigest() == entry["hash"]
    report = trail.verify()
    assert report.valid and report.entries == 5
    trail.close()


def test_context_and_output_are_redacted_before_hashing(tmp_path: Path) -> None:
    trail = make(tmp_path)
    trail.append(
        AuditEvent(
            "agent_action",
            "a",
            "x",
            context={"Customer_SSN": "1", "nested": [{"API-Key": "k"}]},
            details={"output": "card 4111 1111 1111 1111 and Bearer abcdefghijklmnop"},
            sensitive_fields=frozenset({"customerSsn"}),
        )
    )
    raw = next(iter(list_segments(tmp_path / "audit")))[1].read_bytes()
    assert b"4111" not in raw and b"abcdefghijklmnop" not in raw and b'"k"' not in raw
    entry = next(trail.entries())
    assert entry["context"] == {"Customer_SSN": "[REDACTED]", "nested": [{"API-Key": "[REDACTED]"}]}
    assert trail.verify().valid
    trail.close()


def test_in_memory_trail_chains_and_verifies() -> None:
    trail = open_trail(GovernorConfig(), MemoryStateStore())
    for i in range(20):
        trail.append(event(i))
    assert trail.verify().valid
    assert len(trail.query(action="read:item1*")) == 11
    trail.close()
    assert trail.verify().checkpoints == 1


def test_rotation_continues_the_chain_and_seals_old_segments(tmp_path: Path) -> None:
    trail = make(tmp_path, 200, rotation_mb=0.005)
    segments = list_segments(tmp_path / "audit")
    assert len(segments) > 5
    first_seqs = [s for s, _ in segments]
    assert first_seqs[0] == 1 and first_seqs == sorted(first_seqs)
    for _, path in segments[:-1]:
        assert not path.stat().st_mode & stat.S_IWUSR
        # each sealed segment ends with the checkpoint that closed it (which also signals other writers)
        assert orjson.loads(path.read_bytes().splitlines()[-1])["type"] == "checkpoint"
    assert trail.verify().valid
    trail.close()
    reopened = make(tmp_path)
    rotations = len(segments) - 1
    assert reopened.append(event(999)) == 200 + rotations + 2  # + a checkpoint per rotation, at close, this one
    assert reopened.verify().valid
    reopened.close()


def test_checkpoints_at_interval_and_close_in_log_store_and_file(tmp_path: Path) -> None:
    store = MemoryStateStore()
    trail = make(tmp_path, 25, interval=10, store=store)
    kinds = [e["type"] for e in trail.entries()]
    assert kinds.count("checkpoint") == 2
    trail.close()
    last = list(TrailReader(tmp_path / "audit").entries())[-1]
    assert last["type"] == "checkpoint" and last["details"]["checkpoint_seq"] == last["seq"] - 1
    stored = store.latest_checkpoint(trail.trail_id)
    assert stored is not None and stored["seq"] == last["seq"] and stored["hash"] == last["hash"]
    on_disk = orjson.loads((tmp_path / "audit" / "checkpoint.json").read_bytes())
    assert on_disk["seq"] == last["seq"]
    key = SigningKey.load(tmp_path / "state" / "governor_ed25519.pem")
    assert oct(os.stat(key.path or "").st_mode & 0o777) == "0o600"


# ---------------------------------------------------------------------------------------------- tamper


@pytest.fixture
def closed_trail(tmp_path: Path) -> tuple[Path, MemoryStateStore, str]:
    store = MemoryStateStore()
    trail = make(tmp_path, 60, rotation_mb=0.004, interval=25, store=store)
    trail.close()
    for _, path in list_segments(tmp_path / "audit"):
        writable(path)
    return tmp_path / "audit", store, trail.trail_id


def reverify(folder: Path, store: MemoryStateStore) -> VerifyReport:
    return TrailReader(folder, store=store, state_path=folder.parent / "state").verify()


def segment_holding(folder: Path, seq: int) -> Path:
    return [p for s, p in list_segments(folder) if s <= seq][-1]


def event_seq(folder: Path, near: int) -> int:
    """The seq of the first event entry (not a checkpoint) at or after ``near``, in the middle of a segment."""
    entries = list(TrailReader(folder).entries())
    starts = {s for s, _ in list_segments(folder)}
    return next(
        e["seq"]
        for e in entries
        if e["seq"] >= near and e["type"] != "checkpoint" and e["seq"] not in starts and e["seq"] + 1 not in starts
    )


def test_untouched_trail_verifies(closed_trail: tuple[Path, MemoryStateStore, str]) -> None:
    folder, store, _ = closed_trail
    report = reverify(folder, store)
    rotations = len(list_segments(folder)) - 1
    # 60 entries and the checkpoints: one closing each rotated segment, one at close, some at the interval
    assert report.valid and report.errors == () and report.checkpoints >= 1 + rotations
    assert report.entries == 60 + report.checkpoints


def test_changed_field_is_detected_with_segment_and_seq(closed_trail: tuple[Path, MemoryStateStore, str]) -> None:
    folder, store, _ = closed_trail
    seq = event_seq(folder, 30)
    path = segment_holding(folder, seq)
    data = path.read_bytes()
    start = data.index(b'"seq":%d,' % seq)
    line_start = data.rindex(b"\n", 0, start) + 1
    line_end = data.index(b"\n", start)
    line = data[line_start:line_end].replace(b'"allowed":true', b'"allowed":false')
    path.write_bytes(data[:line_start] + line + data[line_end:])
    err = first_error(reverify(folder, store))
    assert err["seq"] == seq and err["segment"] == path.name and "changed" in err["message"]


def test_changed_field_with_recomputed_hash_breaks_the_next_link(
    closed_trail: tuple[Path, MemoryStateStore, str],
) -> None:
    folder, store, _ = closed_trail
    seq = event_seq(folder, 30)
    path = segment_holding(folder, seq)
    out = []
    for line in lines_of(path):
        entry = orjson.loads(line)
        if entry["seq"] == seq:
            entry["context"]["i"] = 12345
            entry.pop("hash")
            entry["hash"] = hashlib.sha256(rfc8785.dumps(entry)).hexdigest()
            line = orjson.dumps(entry) + b"\n"
        out.append(line)
    path.write_bytes(b"".join(out))
    err = first_error(reverify(folder, store))
    assert err["seq"] == seq + 1 and "prev_hash" in err["message"]


def test_deleted_entry_is_detected(closed_trail: tuple[Path, MemoryStateStore, str]) -> None:
    folder, store, _ = closed_trail
    seq = event_seq(folder, 20)
    path = segment_holding(folder, seq)
    path.write_bytes(b"".join(line for line in lines_of(path) if b'"seq":%d,' % seq not in line))
    err = first_error(reverify(folder, store))
    assert err["seq"] == seq and err["segment"] == path.name and "missing" in err["message"]


def test_inserted_entry_is_detected(closed_trail: tuple[Path, MemoryStateStore, str]) -> None:
    folder, store, _ = closed_trail
    seq = event_seq(folder, 20)
    path = segment_holding(folder, seq)
    lines = lines_of(path)
    index = next(i for i, line in enumerate(lines) if b'"seq":%d,' % seq in line)
    lines.insert(index, lines[index])  # a copy with a valid hash, in the right place
    path.write_bytes(b"".join(lines))
    err = first_error(reverify(folder, store))
    assert err["seq"] == seq and "out of order" in err["message"]


def test_swapped_entries_are_detected(closed_trail: tuple[Path, MemoryStateStore, str]) -> None:
    folder, store, _ = closed_trail
    seq = event_seq(folder, 40)
    path = segment_holding(folder, seq)
    lines = lines_of(path)
    i = next(i for i, line in enumerate(lines) if b'"seq":%d,' % seq in line)
    if i + 1 >= len(lines):
        i -= 1
    lines[i], lines[i + 1] = lines[i + 1], lines[i]
    path.write_bytes(b"".join(lines))
    err = first_error(reverify(folder, store))
    assert err["segment"] == path.name and err["seq"] in (seq, seq + 1, seq - 1)


def test_truncated_tail_is_detected(closed_trail: tuple[Path, MemoryStateStore, str]) -> None:
    folder, store, _ = closed_trail
    path = list_segments(folder)[-1][1]
    lines = lines_of(path)
    path.write_bytes(b"".join(lines[:-2]))
    err = first_error(reverify(folder, store))
    assert "truncated" in err["message"] and err["segment"] == path.name


def test_truncated_tail_is_detected_by_the_state_store_alone(closed_trail: tuple[Path, MemoryStateStore, str]) -> None:
    folder, store, _ = closed_trail
    (folder / "checkpoint.json").unlink()
    path = list_segments(folder)[-1][1]
    path.write_bytes(b"".join(lines_of(path)[:-1]))
    err = first_error(reverify(folder, store))
    assert "the state store" in err["message"]


def test_deleted_newest_segment_is_detected(closed_trail: tuple[Path, MemoryStateStore, str]) -> None:
    folder, store, _ = closed_trail
    list_segments(folder)[-1][1].unlink()
    err = first_error(reverify(folder, store))
    assert "truncated tail or deleted newest segment" in err["message"]


def test_deleted_middle_and_oldest_segments_are_detected(closed_trail: tuple[Path, MemoryStateStore, str]) -> None:
    folder, store, _ = closed_trail
    segments = list_segments(folder)
    segments[2][1].unlink()
    err = first_error(reverify(folder, store))
    assert err["seq"] == segments[2][0] and "missing" in err["message"]
    segments[0][1].unlink()
    err = first_error(reverify(folder, store))
    assert "no signed retention record" in err["message"]


def test_replaced_segment_from_another_trail_is_detected(
    tmp_path: Path, closed_trail: tuple[Path, MemoryStateStore, str]
) -> None:
    folder, store, _ = closed_trail
    other = make(tmp_path / "other", 60, rotation_mb=0.004, interval=25)
    other.close()
    ours = list_segments(folder)
    theirs = dict(list_segments(tmp_path / "other" / "audit"))
    first, victim = ours[1]
    assert first in theirs
    victim.write_bytes(theirs[first].read_bytes())
    err = first_error(reverify(folder, store))
    assert err["segment"] == victim.name and err["seq"] == first


def test_forged_checkpoint_and_wrong_key_are_reported(closed_trail: tuple[Path, MemoryStateStore, str]) -> None:
    folder, store, _ = closed_trail
    stranger = SigningKey.generate().public
    report = TrailReader(folder, public_keys=[stranger], store=store).verify()
    assert not report.valid
    assert any("not trusted" in e["message"] or "trusted key" in e["message"] for e in report.errors)


def test_garbage_lines_missing_files_and_foreign_input_give_verdicts(
    tmp_path: Path, closed_trail: tuple[Path, MemoryStateStore, str]
) -> None:
    folder, store, _ = closed_trail
    path = segment_holding(folder, 10)
    data = path.read_bytes()
    path.write_bytes(b"\x00\xffnot json at all\n[1,2]\n" + data)
    report = reverify(folder, store)
    assert not report.valid and "not an audit entry" in report.errors[0]["message"]
    assert verify_directory(tmp_path / "nowhere").errors[0]["message"].endswith("is not an audit trail")
    (folder / "trail.json").write_text("{broken")
    assert "cannot be read" in verify_directory(folder).errors[0]["message"]


def test_missing_checkpoint_file_is_a_warning_when_the_store_still_anchors(
    closed_trail: tuple[Path, MemoryStateStore, str],
) -> None:
    folder, store, _ = closed_trail
    (folder / "checkpoint.json").unlink()
    report = reverify(folder, store)
    assert report.valid and any("checkpoint.json is missing" in w for w in report.warnings)


def test_running_writer_detects_truncation_since_the_last_checkpoint(tmp_path: Path) -> None:
    trail = make(tmp_path, 10)
    path = list_segments(tmp_path / "audit")[-1][1]
    path.write_bytes(b"".join(lines_of(path)[:-3]))
    err = first_error(trail.verify())
    assert "this process's memory" in err["message"]
    trail.close()


# ------------------------------------------------------------------------------------------ durability


def test_default_mode_entry_reaches_the_os_before_append_returns(tmp_path: Path) -> None:
    trail = make(tmp_path)
    seq = trail.append(event(1))
    path = list_segments(tmp_path / "audit")[-1][1]
    assert orjson.loads(lines_of(path)[-1])["seq"] == seq  # visible to another reader without any close
    trail.close()


def test_fsync_mode_group_commit_from_threads(tmp_path: Path) -> None:
    import threading

    trail = make(tmp_path, durability="fsync")

    def worker() -> None:
        for i in range(50):
            trail.append(event(i))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert trail._commit.synced >= 200
    assert trail.verify().entries == 200
    trail.close()


def test_unwritable_location_denies_and_shows_in_health(tmp_path: Path) -> None:
    # (Tests may run as root, which ignores permission bits: a file where a folder must be fails for everyone.)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    trail = open_trail(GovernorConfig(audit_path=blocker / "audit"), MemoryStateStore())
    assert trail.health()["status"] == "down"
    with pytest.raises(AuditError, match="cannot be opened"):
        trail.append(event(1))
    assert "NotADirectoryError" in (trail.health()["last_error"] or "")
    blocker.unlink()
    blocker.mkdir()
    assert trail.append(event(2)) == 1  # the location became usable: the trail recovers by itself
    assert trail.health()["status"] in ("ok", "degraded") and trail.verify().valid
    trail.close()


def test_read_only_filesystem_error_denies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def read_only(path: Any, flags: int, *args: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR):
            raise OSError(30, "Read-only file system")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    trail = open_trail(GovernorConfig(audit_path=tmp_path / "audit"), MemoryStateStore())
    with pytest.raises(AuditError, match="Read-only"):
        trail.append(event(1))
    assert trail.health()["status"] == "down"


def test_write_failure_raises_and_keeps_the_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trail = make(tmp_path, 3)
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(AuditError, match="No space"):
        trail.append(event(9))
    assert trail.health()["status"] == "down"
    monkeypatch.setattr(os, "write", real_write)
    assert trail.append(event(10)) == 4
    assert trail.verify().valid
    trail.close()


def test_short_write_is_rolled_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trail = make(tmp_path, 3)
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[: len(data) // 2]))
    with pytest.raises(AuditError, match="short write"):
        trail.append(event(9))
    monkeypatch.setattr(os, "write", real_write)
    trail.append(event(10))
    report = trail.verify()
    assert report.valid and report.entries == 4 and not report.warnings
    trail.close()


def test_governor_denies_when_the_trail_cannot_be_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from claw_governance import Governor

    policies = tmp_path / "p.yaml"
    policies.write_text("agent: a\npermissions:\n  allow: ['read:*']\n")
    with Governor(policy_path=policies, audit_path=tmp_path / "audit", identity_path=tmp_path / "ids") as gov:
        handle = gov.agent("a")
        assert handle.check("read:x").allowed
        monkeypatch.setattr(os, "write", lambda fd, data: (_ for _ in ()).throw(OSError(28, "disk full")))
        decision = handle.check("read:x")
        monkeypatch.undo()
        assert not decision.allowed and "Audit trail cannot be written" in decision.reason
        assert gov.health_check()["components"]["audit"]["status"] != "ok"


# ------------------------------------------------------------------------------------------- retention


def test_retention_removes_old_segments_and_leaves_a_signed_record(tmp_path: Path) -> None:
    trail = make(tmp_path, 120, rotation_mb=0.004, interval=1000, audit_retention_days=30)
    before = list_segments(tmp_path / "audit")
    assert len(before) >= 4
    removed = trail.apply_retention(now=time.time() + 31 * 86400)
    assert removed == [p.name for _, p in before[:-1]]
    assert (tmp_path / "audit" / "retention.jsonl").exists()
    report = trail.verify()
    assert report.valid, report.errors
    assert report.first_seq == before[-1][0]
    assert any(e["type"] == "retention" for e in trail.entries())
    trail.close()
    assert reverify(tmp_path / "audit", MemoryStateStore()).valid


def test_retention_keeps_segments_within_retention_and_per_agent_rules(tmp_path: Path) -> None:
    trail = make(tmp_path, 80, rotation_mb=0.004)
    assert trail.apply_retention(now=time.time() + 10 * 86400) == []
    trail.set_retention(RetentionRule(5, {"agent-1": 3650}))
    assert trail.apply_retention(now=time.time() + 10 * 86400) == []  # agent-1 is kept 10 years
    trail.set_retention(RetentionRule(3650, {"agent-1": 5}))
    assert trail.apply_retention(now=time.time() + 10 * 86400)
    assert trail.verify().valid
    trail.close()


def test_deleting_the_retention_record_is_detected(tmp_path: Path) -> None:
    trail = make(tmp_path, 80, rotation_mb=0.004, audit_retention_days=1)
    assert trail.apply_retention(now=time.time() + 2 * 86400)
    trail.close()
    (tmp_path / "audit" / "retention.jsonl").unlink()
    err = first_error(verify_directory(tmp_path / "audit", trusted_keys=[trail.key.public]))
    assert "no signed retention record" in err["message"]


def test_entries_needing_the_exact_serialiser_verify_and_match_rfc8785(tmp_path: Path) -> None:
    trail = make(tmp_path)
    trail.append(
        AuditEvent(
            "agent_action", "a", "x", context={"\U0001f600": 1, "\uffff": 2, "tiny": 3e-6, "whole": 2.0, "big": 2**60}
        )
    )
    entry = next(trail.entries())
    body = {k: v for k, v in entry.items() if k != "hash"}
    assert hashlib.sha256(rfc8785.dumps(body)).hexdigest() == entry["hash"]
    assert entry["context"]["big"] == str(2**60) and entry["context"]["whole"] == 2
    assert trail.verify().valid
    trail.close()


# A SHA-256 digest (found by sampling) whose hex digits hold a run that passes for a card number (Luhn):
# about 1 in 270 random digests does. The secret detectors rewrite such a run to "[REDACTED:card]".
CARD_LIKE_HASH = "fff7868c6ca6e1e91d5a908a45f1492761670759d379dafb5b145418781aa0c1"


def test_retention_record_keeps_hashes_that_look_like_card_numbers() -> None:
    # The cause of a flaky retention test: the record went through the secret redactor, so a resume hash or
    # a compact-range node with such a digit run was rewritten and the record no longer continued the chain.
    summary = {"first_seq": 1, "last_seq": 9, "last_hash": CARD_LIKE_HASH, "last_ts": 1.5, "range": [CARD_LIKE_HASH]}
    record = retention_record(
        trail_id="t",
        origin="o",
        key_id="k",
        created=2.0,
        retention_days=1,
        resume_seq=10,
        removed=[("segment-000000000001.jsonl", summary)],
    )
    assert record["resume_prev_hash"] == CARD_LIKE_HASH and record["resume_range"] == [CARD_LIKE_HASH]
    assert record["removed"][0]["last_hash"] == CARD_LIKE_HASH and record["created"] == 2


def test_retention_on_a_trail_whose_id_looks_like_a_card_number_still_verifies(tmp_path: Path) -> None:
    # Deterministic end to end: the trail id (random hex, like a digest) holds a Luhn-valid digit run.
    folder = tmp_path / "audit"
    folder.mkdir()
    trail_id = "ab4111111111111111cdef0123456789"
    (folder / "trail.json").write_bytes(
        orjson.dumps({"format": "claw-audit/2", "trail_id": trail_id, "generation": 0, "created": 0, "keys": []})
    )
    trail = make(tmp_path, 80, rotation_mb=0.004, audit_retention_days=1)
    assert trail.trail_id == trail_id
    assert trail.apply_retention(now=time.time() + 2 * 86400)
    record = orjson.loads((folder / "retention.jsonl").read_bytes().splitlines()[-1])
    assert record["trail_id"] == trail_id and record["origin"].endswith(trail_id)
    report = trail.verify()
    assert report.valid, report.errors
    trail.close()
    assert verify_directory(folder, trusted_keys=[trail.key.public]).valid


# ----------------------------------------------------------------------------- a segment gone under the writer
# The writer notices with an inotify watch (Linux) or an fstat per append (elsewhere, and with
# CLAW_AUDIT_NO_INOTIFY set); both must deny the very next append, without a health() call first.


def _remove_folder(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder)


def _unlink_segment(folder: Path) -> None:
    list_segments(folder)[-1][1].unlink()


def _replace_segment(folder: Path) -> None:
    path = list_segments(folder)[-1][1]
    copy = path.with_name("copy")
    copy.write_bytes(path.read_bytes())
    os.replace(copy, path)  # same bytes, another file: entries appended now would not be in the trail


def _hardlink_then_remove_folder(folder: Path) -> None:
    # The link keeps the inode's link count at 1: a check of the count alone would go on writing into a file
    # that only the attacker can reach (found by a red-team review)
    os.link(list_segments(folder)[-1][1], folder.parent / "hidden")
    _remove_folder(folder)


def _rename_segment_away(folder: Path) -> None:
    os.rename(list_segments(folder)[-1][1], folder.parent / "moved")


def _hardlink_then_replace(folder: Path) -> None:
    os.link(list_segments(folder)[-1][1], folder.parent / "hidden")
    _replace_segment(folder)


def _rename_folder_and_copy_it_back(folder: Path) -> None:
    # The segment keeps its name and link count inside the renamed folder: its own watch sees nothing, and
    # entries went on into audit.x while audit/ held a copy (found by a red-team review)
    import shutil

    os.rename(folder, folder.with_name("audit.x"))
    shutil.copytree(folder.with_name("audit.x"), folder)


def _rename_the_folder_above(folder: Path) -> None:
    import shutil

    parent = folder.parent
    os.rename(parent, parent.with_name(parent.name + ".x"))
    shutil.copytree(parent.with_name(parent.name + ".x"), parent)


def _delete_the_lock_file(folder: Path) -> None:
    # Another writer would then lock a new .lock and the two would fork the chain (found by a red-team review)
    (folder / ".lock").unlink()


def _replace_the_lock_file(folder: Path) -> None:
    (folder / ".lock.new").write_bytes(b"")
    os.replace(folder / ".lock.new", folder / ".lock")


def _retarget_a_symlinked_folder_above(folder: Path) -> None:
    # tmp/link -> tmp/real holds audit/; the link is pointed at a copy: no folder the watch follows changes
    import shutil

    link = folder.parent
    shutil.copytree(link.resolve(), link.with_name("other"), symlinks=True)
    link.with_name("link.new").symlink_to(link.with_name("other"))
    os.replace(link.with_name("link.new"), link)


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "fstat"])
@pytest.mark.parametrize(
    "attack",
    [
        _remove_folder,
        _unlink_segment,
        _replace_segment,
        _hardlink_then_remove_folder,
        _rename_segment_away,
        _hardlink_then_replace,
        _rename_folder_and_copy_it_back,
        _rename_the_folder_above,
        _delete_the_lock_file,
        _replace_the_lock_file,
        _retarget_a_symlinked_folder_above,
    ],
)
def test_a_segment_gone_under_the_writer_denies_the_very_next_append(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inotify: bool, attack: Any
) -> None:
    if not inotify:
        monkeypatch.setenv("CLAW_AUDIT_NO_INOTIFY", "1")
    if attack is _retarget_a_symlinked_folder_above:
        (tmp_path / "real").mkdir()
        (tmp_path / "link").symlink_to(tmp_path / "real")
        tmp_path = tmp_path / "link"
    trail = make(tmp_path, 3)
    if not inotify or not sys.platform.startswith("linux"):
        assert trail._watch is None  # the fstat path
    # (with inotify on Linux the watch is used when tmp_path is on a local file system; both paths must deny)
    attack(tmp_path / "audit")
    for i in range(3):
        with pytest.raises(AuditError):
            trail.append(event(i))
    assert trail.health()["status"] == "down"
    trail.close()


def test_a_forked_child_does_not_steal_the_parents_deletion_event(tmp_path: Path) -> None:
    # The child shares the parent's inotify instance: if it read the events (or moved the watch), the parent
    # would miss the deletion of its own segment and keep allowing calls.
    trail = make(tmp_path, 3)
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: once the folder is gone, append (and fail), then leave without cleanup
        code = 1
        try:
            os.read(go_r, 1)
            try:
                trail.append(event(1))
            except AuditError:
                code = 0
        finally:
            os._exit(code)
    _remove_folder(tmp_path / "audit")
    os.write(go_w, b"x")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0  # the child was denied too
    with pytest.raises(AuditError):
        trail.append(event(100))
    trail.close()


_GLOB_TEXT = st.text(alphabet=st.sampled_from("aAbB:*\uff21\u00df\u1e9e .-"), max_size=8)


@given(pattern=_GLOB_TEXT, name=_GLOB_TEXT)
def test_query_glob_is_the_policy_glob(pattern: str, name: str) -> None:
    """``query(action=...)`` and policy rules decide a pattern against a name the same way (one implementation:
    NFKC, case folding, trimming, ``*`` the only wildcard), checked against the policy's indexed lookup too."""
    from claw_governance.audit.query import glob_matcher
    from claw_governance.policy import glob_match, normalize
    from claw_governance.policy.patterns import PatternIndex

    expected = glob_match(normalize(pattern), normalize(name))
    assert glob_matcher(pattern)(name) is expected
    assert bool(PatternIndex([(normalize(pattern), 1)]).lookup(normalize(name))) is expected


def test_no_inotify_watch_where_it_would_not_see_every_change() -> None:
    # inotify reports only changes made through this kernel: on a file system it does not know to be local
    # (here procfs; in practice NFS, SMB, FUSE) the writer keeps the fstat per append.
    from claw_governance.audit.watch import open_watch

    assert open_watch(Path("/proc/self")) is None
    assert open_watch(Path("/proc/self/no-such-folder/audit")) is None  # not created yet: its parent's counts


def test_two_writers_on_one_folder_keep_one_chain_across_rotations(tmp_path: Path) -> None:
    # A red-team review found a regression: skipping the closing checkpoint of a rotation (meant for a retry
    # after a failed one) left the other writer appending to the sealed segment, and the chain forked. It shows
    # when a writer's first append after opening rotates: the first writer fills the segment, the second opens.
    store = MemoryStateStore()
    first = make(tmp_path, 0, rotation_mb=0.004, store=store)
    while list_segments(tmp_path / "audit")[-1][1].stat().st_size < 0.004 * 1024 * 1024:
        first.append(event(0))
    second = make(tmp_path, 0, rotation_mb=0.004, store=store)
    second.append(event(1))  # rotates first
    for i in range(150):
        (first if i % 3 else second).append(event(i))
    first.close()
    second.close()
    assert len(list_segments(tmp_path / "audit")) > 5
    report = verify_directory(tmp_path / "audit", trusted_keys=[first.key.public])
    assert report.valid, report.errors


def test_a_forked_child_and_its_parent_never_write_the_same_seq(tmp_path: Path) -> None:
    # The child inherited the parent's lock file description, so the parent's flock admitted the child's
    # appends too (found by a red-team review): the child now locks a description of its own.
    trail = make(tmp_path, 2, rotation_mb=0.01)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            for i in range(300):
                trail.append(event(i, agent="child"))
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    for i in range(300):
        trail.append(event(i, agent="parent"))
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    trail.close()
    report = verify_directory(tmp_path / "audit", trusted_keys=[trail.key.public])
    assert report.valid, report.errors


def test_a_relative_audit_path_survives_a_chdir_and_its_ancestors_are_watched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    (tmp_path / "w" / "run").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "w" / "run")
    trail = open_trail(GovernorConfig(audit_path=Path("audit"), state_path=Path("state")), MemoryStateStore())
    assert trail.path == tmp_path / "w" / "run" / "audit"
    trail.append(event(1))
    monkeypatch.chdir(tmp_path)  # a later chdir must not move the trail (it was "deleted" at the checkpoint)
    trail.append(event(2))
    trail.checkpoint()
    os.rename(tmp_path / "w", tmp_path / "w.x")  # a folder above the working directory: watched too
    shutil.copytree(tmp_path / "w.x", tmp_path / "w")
    with pytest.raises(AuditError):
        trail.append(event(3))
    trail.close()
