"""The attacks of issue 14, done as an attacker would. Each one verified VALID (or started silently) before
the Merkle/checkpoint/witness work; each must now be INVALID or refused."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from claw_governance import Governor
from claw_governance.audit import open_trail
from claw_governance.audit.canonical import SORTED
from claw_governance.audit.keys import SigningKey
from claw_governance.audit.layout import list_segments, segment_name
from claw_governance.audit.reader import TrailReader
from claw_governance.audit.trail import TrailRefused, reset_trail
from claw_governance.audit.trust import parse_witness
from claw_governance.audit.witness_client import WitnessClient
from claw_governance.config import GovernorConfig
from claw_governance.model import AuditEvent
from claw_governance.state import open_state_store

POLICY = "agent: a\npermissions:\n  allow: ['read:*']\n"


def config(tmp: Path, **extra: Any) -> GovernorConfig:
    return GovernorConfig(audit_path=tmp / "audit", state_path=tmp / "state", audit_checkpoint_interval=5, **extra)


def write(tmp: Path, n: int, **extra: Any) -> None:
    cfg = config(tmp, **extra)
    store = open_state_store(cfg)
    trail = open_trail(cfg, store)
    for i in range(n):
        trail.append(AuditEvent("policy_decision", "a", f"read:{i}", context={"i": i}))
    trail.close()
    store.close()


def verify(
    tmp: Path, *, public_key: SigningKey | None = None, state: bool = True, witnesses: Any = None, **kw: Any
) -> Any:
    cfg = config(tmp)
    store = open_state_store(cfg) if state and (tmp / "state").exists() else None
    keys = [public_key.public] if public_key else None
    try:
        return TrailReader(
            tmp / "audit", public_keys=keys, state_path=tmp / "state", store=store, witnesses=witnesses
        ).verify(**kw)
    finally:
        if store is not None:
            store.close()


def rechain(path: Path, edit: Any, drop_checkpoints: bool) -> None:
    """Rewrite a segment as an attacker: edit entries, drop checkpoints, recompute every hash."""
    import hashlib

    entries = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    prev = entries[0]["prev_hash"]
    out = []
    seq = entries[0]["seq"]
    for entry in entries:
        if drop_checkpoints and entry["type"] == "checkpoint":
            continue
        edit(entry)
        entry.pop("hash")
        entry["seq"], entry["prev_hash"] = seq, prev
        body = orjson.dumps(entry, option=SORTED)
        digest = hashlib.sha256(body).hexdigest()
        out.append(body[:-1] + b',"hash":"' + digest.encode() + b'"}\n')
        prev, seq = digest, seq + 1
    path.chmod(0o644)
    path.write_bytes(b"".join(out))


def test_deleting_audit_and_restarting_is_refused(tmp_path: Path) -> None:
    write(tmp_path, 12)
    assert verify(tmp_path).valid
    shutil.rmtree(tmp_path / "audit")
    with pytest.raises(TrailRefused, match=r"knows trail .* refusing to start"):
        Governor(config=config(tmp_path))
    # ... and a folder replaced by a fresh trail is INVALID against what the state store knows
    write(tmp_path / "other", 3)
    shutil.rmtree(tmp_path / "audit", ignore_errors=True)
    shutil.copytree(tmp_path / "other" / "audit", tmp_path / "audit")
    report = verify(tmp_path, public_key=SigningKey.load(tmp_path / "other" / "state" / "governor_ed25519.pem"))
    assert not report.valid and "deleted or replaced" in report.errors[0]["message"]


def test_reset_starts_a_new_trail_that_records_the_old_one(tmp_path: Path) -> None:
    write(tmp_path, 12)
    old_origin = TrailReader(tmp_path / "audit").origin
    shutil.rmtree(tmp_path / "audit")
    cfg = config(tmp_path)
    store = open_state_store(cfg)
    moved, origin = reset_trail(cfg, store, "disk lost")
    store.close()
    assert moved is None and origin != old_origin
    with Governor(config=cfg) as gov:  # starts again: the break is recorded
        first = next(iter(gov.audit.entries()))
        assert first["type"] == "reset" and first["details"]["old_origin"] == old_origin
        assert first["details"]["reason"] == "disk lost" and "\n" in first["details"]["old_checkpoint"]
    assert verify(tmp_path).valid


def test_a_fabricated_trail_without_checkpoints_is_invalid_even_with_the_public_key(tmp_path: Path) -> None:
    write(tmp_path, 12)
    key = SigningKey.load(tmp_path / "state" / "governor_ed25519.pem")
    assert verify(tmp_path, public_key=key, state=False).valid
    for _, path in list_segments(tmp_path / "audit"):
        rechain(path, lambda e: None, drop_checkpoints=True)
    (tmp_path / "audit" / "checkpoint.json").unlink()
    report = verify(tmp_path, public_key=key, state=False)
    assert not report.valid and "no checkpoint signed by a trusted key" in report.errors[-1]["message"]


def test_edit_recompute_hashes_and_delete_checkpoints_is_invalid(tmp_path: Path) -> None:
    write(tmp_path, 12)
    assert verify(tmp_path).valid

    def edit(entry: dict[str, Any]) -> None:
        if entry["seq"] == 3:
            entry["context"] = {"i": 999}

    for _, path in list_segments(tmp_path / "audit"):
        rechain(path, edit, drop_checkpoints=True)
    (tmp_path / "audit" / "checkpoint.json").unlink()
    report = verify(tmp_path)
    assert not report.valid  # the state store's checkpoint no longer matches the tree
    assert not verify(tmp_path, state=False).valid  # and without it nothing vouches for the trail


def test_trail_json_key_substitution_is_invalid(tmp_path: Path) -> None:
    # Before: the running governor's own verify() trusted every key listed in trail.json.
    write(tmp_path, 12)
    with Governor(config=config(tmp_path)) as gov:
        assert gov.audit.verify().valid
    # The attacker fabricates a trail signed by their own key (listed in its trail.json), puts it in place
    # and deletes the state store's rows; the governor's key file is left where it was.
    write(tmp_path / "attacker", 12)
    meta = orjson.loads((tmp_path / "attacker" / "audit" / "trail.json").read_bytes())
    attacker_key = SigningKey.load(tmp_path / "attacker" / "state" / "governor_ed25519.pem")
    assert [k["key_id"] for k in meta["keys"]] == [attacker_key.public.key_id]
    shutil.rmtree(tmp_path / "audit")
    shutil.copytree(tmp_path / "attacker" / "audit", tmp_path / "audit")
    (tmp_path / "state" / "state.db").unlink()
    with Governor(config=config(tmp_path)) as gov:
        report = gov.audit.verify()
    assert not report.valid and "not signed by a trusted key" in " ".join(e["message"] for e in report.errors)
    assert not verify(tmp_path, state=False).valid  # the CLI's reader: the governor key from the state folder


def claw_gov() -> str:
    return str(Path(sys.executable).with_name("claw-gov"))


class _Witnesses:
    """Real ``claw-gov witness serve`` processes on 127.0.0.1 (port 0)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def __call__(self, state: Path, log_key: Path) -> tuple[str, str]:
        proc = subprocess.Popen(
            [
                claw_gov(),
                "witness",
                "serve",
                "--state",
                str(state),
                "--log-key",
                str(log_key),
                "--name",
                f"w.example/{state.name}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().removeprefix("listening on ")
        key = proc.stdout.readline().strip().removeprefix("verifier key: ")
        return url, key

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=10)


@pytest.fixture
def witness() -> Any:
    started = _Witnesses()
    yield started
    started.stop_all()


def governor_key(tmp: Path) -> Path:
    SigningKey.load_or_create(tmp / "state")
    return tmp / "state" / "governor_ed25519.pem"


def test_cut_tail_after_deleting_checkpoint_json_and_the_state_row_is_caught_by_a_witness(
    tmp_path: Path, witness: Any
) -> None:
    url, wkey = witness(tmp_path / "w1", governor_key(tmp_path))
    spec = f"{url} {wkey}"
    write(tmp_path, 23, audit_witnesses=spec)
    client = WitnessClient([parse_witness(spec)])
    good = verify(tmp_path, witnesses=client, min_witnesses=1)
    assert good.valid and good.witnessed_size == good.last_seq
    # Cut the tail to just after the first in-log checkpoint; delete every copy outside the log.
    path = list_segments(tmp_path / "audit")[-1][1]
    lines = path.read_bytes().splitlines(keepends=True)
    path.chmod(0o644)
    path.write_bytes(b"".join(lines[:6]))
    for name in ("checkpoint.json", "witnessed.jsonl"):
        (tmp_path / "audit" / name).unlink()
    (tmp_path / "state" / "state.db").unlink(missing_ok=True)
    assert verify(tmp_path, state=False).valid  # without the witness the cut cannot be seen
    report = verify(tmp_path, state=False, witnesses=WitnessClient([parse_witness(spec)]))
    assert not report.valid and "truncated, rolled back" in " ".join(e["message"] for e in report.errors)
    with pytest.raises(TrailRefused, match=r"witness .* has cosigned"):
        Governor(config=config(tmp_path, audit_witnesses=spec))


def test_rollback_to_an_older_consistent_copy_is_caught_by_a_witness(tmp_path: Path, witness: Any) -> None:
    url, wkey = witness(tmp_path / "w1", governor_key(tmp_path))
    spec = f"{url} {wkey}"
    write(tmp_path, 12, audit_witnesses=spec)
    shutil.copytree(tmp_path / "audit", tmp_path / "old-audit")
    shutil.copytree(tmp_path / "state", tmp_path / "old-state")
    with Governor(config=config(tmp_path, audit_witnesses=spec)) as gov:
        (tmp_path / "policies").mkdir(exist_ok=True)
        for i in range(10):
            gov.audit.append(AuditEvent("policy_decision", "a", f"read:{i}"))
    shutil.rmtree(tmp_path / "audit")
    shutil.rmtree(tmp_path / "state")
    shutil.copytree(tmp_path / "old-audit", tmp_path / "audit")
    shutil.copytree(tmp_path / "old-state", tmp_path / "state")
    assert verify(tmp_path).valid  # consistent with itself and with the (rolled back) state store
    assert not verify(tmp_path, witnesses=WitnessClient([parse_witness(spec)])).valid
    with pytest.raises(TrailRefused, match="rolled back"):
        Governor(config=config(tmp_path, audit_witnesses=spec))


def test_a_witness_refuses_a_rollback_and_a_fork(tmp_path: Path, witness: Any) -> None:
    import urllib.error
    import urllib.request

    url, wkey = witness(tmp_path / "w1", governor_key(tmp_path))
    spec = f"{url} {wkey}"
    write(tmp_path, 12, audit_witnesses=spec)
    client = WitnessClient([parse_witness(spec)])
    ((_, latest),) = client.latest(TrailReader(tmp_path / "audit").origin)
    from claw_governance.audit.bundle import trail_leaves
    from claw_governance.audit.note import Checkpoint, format_checkpoint, sign_note

    key = SigningKey.load(tmp_path / "state" / "governor_ed25519.pem")
    leaves, _ = trail_leaves(tmp_path / "audit")
    smaller = 3
    text = format_checkpoint(latest.origin, smaller, leaves.root(smaller))
    cp = Checkpoint(latest.origin, smaller, leaves.root(smaller), text, (sign_note(text, latest.origin, key),))

    def post(body: str) -> int:
        try:
            with urllib.request.urlopen(urllib.request.Request(url + "/add-checkpoint", body.encode()), timeout=5) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    assert post(f"old {latest.size}\n\n" + cp.note()) == 400  # smaller than what it cosigned
    assert post("old 0\n\n" + cp.note()) == 409  # not the size it holds
    forged = format_checkpoint(latest.origin, latest.size, bytes(32))
    fork = Checkpoint(latest.origin, latest.size, bytes(32), forged, (sign_note(forged, latest.origin, key),))
    assert post(f"old {latest.size}\n\n" + fork.note()) == 409  # same size, other root
    stranger = SigningKey.generate()
    assert (
        post(
            f"old {latest.size}\n\n"
            + Checkpoint(
                latest.origin, latest.size, latest.root, latest.text, (sign_note(latest.text, latest.origin, stranger),)
            ).note()
        )
        == 403
    )


def test_a_down_witness_never_blocks_a_call_and_shows_in_health_and_verify(tmp_path: Path) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    from claw_governance.audit.note import ALG_COSIGNATURE_V1, vkey

    public = SigningKey.load_or_create(tmp_path / "wstate").public
    spec = f"http://127.0.0.1:{port} {vkey('w.example/down', public, ALG_COSIGNATURE_V1)}"
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "a.yaml").write_text(POLICY)
    with Governor(config=config(tmp_path, policy_path=tmp_path / "policies", audit_witnesses=spec)) as gov:
        agent = gov.agent("a")
        for i in range(12):
            assert agent.check(f"read:{i}").allowed
        deadline = time.time() + 10
        while time.time() < deadline and not gov.audit.witnesses.any_down():
            time.sleep(0.05)
        health = gov.health_check()
        audit = health["components"]["audit"] if "components" in health else health["audit"]
        assert audit["status"] == "degraded" and audit["witnesses"][0]["status"] == "down"
        report = gov.audit.verify(min_witnesses=1)
        assert report.unwitnessed == report.last_seq


def test_a_running_writer_that_sees_its_tail_cut_denies_and_reports_down(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "a.yaml").write_text(POLICY)
    with Governor(config=config(tmp_path, policy_path=tmp_path / "policies")) as gov:
        agent = gov.agent("a")
        for i in range(8):
            assert agent.check(f"read:{i}").allowed
        path = list_segments(tmp_path / "audit")[-1][1]
        path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-3]))
        assert not agent.check("read:x").allowed
        assert gov.audit.health()["status"] == "down"
        assert not gov.audit.verify().valid


def test_deleting_audit_while_running_denies_every_call_and_health_is_down(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "a.yaml").write_text(POLICY)
    with Governor(config=config(tmp_path, policy_path=tmp_path / "policies")) as gov:
        agent = gov.agent("a")
        assert agent.check("read:0").allowed
        shutil.rmtree(tmp_path / "audit")
        assert gov.audit.health()["status"] == "down"
        assert [agent.check(f"read:{i}").allowed for i in range(5)] == [False] * 5


def test_deleting_audit_and_the_state_store_is_still_refused_when_a_witness_knows_the_trail(
    tmp_path: Path, witness: Any
) -> None:
    url, wkey = witness(tmp_path / "w1", governor_key(tmp_path))
    spec = f"{url} {wkey}"
    write(tmp_path, 12, audit_witnesses=spec)
    shutil.rmtree(tmp_path / "audit")
    (tmp_path / "state" / "state.db").unlink()  # the key file stays: the attacker needs it to sign anyway
    with pytest.raises(TrailRefused, match="signed by this governor's key"):
        Governor(config=config(tmp_path, audit_witnesses=spec))


def test_a_witness_process_that_dies_leaves_an_unwitnessed_tail(tmp_path: Path, witness: Any) -> None:
    state = tmp_path / "w1"
    url, wkey = witness(state, governor_key(tmp_path))
    spec = f"{url} {wkey}"
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "a.yaml").write_text(POLICY)
    with Governor(config=config(tmp_path, policy_path=tmp_path / "policies", audit_witnesses=spec)) as gov:
        agent = gov.agent("a")
        for i in range(6):
            assert agent.check(f"read:{i}").allowed
        gov.audit.checkpoint()
        witnessed = gov.audit.verify(min_witnesses=1).witnessed_size
        assert witnessed > 0 and gov.audit.health()["witnesses"][0]["status"] == "ok"
        witness.stop_all()
        for i in range(12):
            assert agent.check(f"read:{i}").allowed  # never blocked by the dead witness
        gov.audit.checkpoint()
        report = gov.audit.verify(min_witnesses=1)
        assert report.valid and report.witnessed_size == witnessed and report.unwitnessed > 0
        assert gov.audit.health()["status"] == "degraded"
        assert not gov.audit.verify(min_witnesses=1, require_anchored=True).valid


def test_a_late_older_checkpoint_is_no_witness_conflict(tmp_path: Path, witness: Any) -> None:
    # The background mirror may submit a checkpoint after checkpoint() submitted a newer one (seen as a
    # flaky "conflict" under load): an older checkpoint than the witness cosigned is skipped, not an alarm.
    url, wkey = witness(tmp_path / "w1", governor_key(tmp_path))
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "a.yaml").write_text(POLICY)
    with Governor(config=config(tmp_path, policy_path=tmp_path / "policies", audit_witnesses=f"{url} {wkey}")) as gov:
        agent = gov.agent("a")
        for i in range(3):
            assert agent.check(f"read:{i}").allowed
        gov.audit.checkpoint()
        older = gov.audit.signed_checkpoint()
        for i in range(3):
            assert agent.check(f"read:{i}").allowed
        gov.audit.checkpoint()
        assert gov.audit.health()["witnesses"][0]["status"] == "ok"
        gov.audit.witnesses.submit(older, gov.audit)
        assert gov.audit.health()["witnesses"][0]["status"] == "ok"
        assert gov.audit.verify(min_witnesses=1).valid


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda meta: {**meta, "keys": 5}, id="keys-not-a-list"),
        pytest.param(lambda meta: {**meta, "format": "claw-audit/0"}, id="wrong-format"),
        pytest.param(lambda meta: {**meta, "trail_id": 7}, id="trail-id-not-text"),
    ],
)
def test_a_damaged_trail_json_denies_every_call_until_it_is_restored(tmp_path: Path, damage: Any) -> None:
    # Before: the failed open left the lock descriptor, so the next append resumed the half-opened trail under
    # a random trail id it never read from trail.json, and calls were ALLOWED ("degraded").
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "a.yaml").write_text(POLICY)
    cfg = config(tmp_path, policy_path=tmp_path / "policies")
    with Governor(config=cfg) as gov:
        assert gov.agent("a").check("read:0").allowed
        trail_id = gov.audit.trail_id
    meta_path = tmp_path / "audit" / "trail.json"
    good = meta_path.read_bytes()
    meta_path.write_bytes(orjson.dumps(damage(orjson.loads(good))))
    size = sum(p.stat().st_size for _, p in list_segments(tmp_path / "audit"))
    with Governor(config=cfg) as gov:
        agent = gov.agent("a")  # the identity exists: nothing to audit here
        decisions = [agent.check(f"read:{i}") for i in range(3)]
        assert [d.allowed for d in decisions] == [False] * 3
        assert all("trail.json" in d.reason for d in decisions), decisions[0].reason
        assert sum(p.stat().st_size for _, p in list_segments(tmp_path / "audit")) == size  # nothing written
        meta_path.write_bytes(good)  # restored: the very next call is written to the right trail
        assert agent.check("read:9").allowed
        assert gov.audit.trail_id == trail_id
    assert verify(tmp_path).valid


def test_a_cut_made_while_rotation_fails_is_caught_by_the_running_writer(tmp_path: Path) -> None:
    # Before: a failed rotation dropped the segment's descriptor, the next append reopened it and took the head
    # back from the (cut) file: calls were allowed again, and the writer's later checkpoints even overwrote
    # the state store's longer record, so every verify said VALID (found by a red-team review).
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "a.yaml").write_text(POLICY)
    cfg = config(tmp_path, policy_path=tmp_path / "policies", audit_rotation_size_mb=0.01)
    folder = tmp_path / "audit"
    with Governor(config=cfg) as gov:
        agent = gov.agent("a")
        for i in range(3):
            assert agent.check(f"read:{i}").allowed
        segment = list_segments(folder)[-1][1]
        size_before = segment.stat().st_size
        assert agent.check("read:SECRET").allowed
        head = gov.audit.health()["last_seq"]
        blockers = [folder / segment_name(seq) for seq in range(head + 1, head + 400)]
        for blocker in blockers:  # the next segment cannot be created: rotation fails
            blocker.mkdir()
        filled = 0
        while agent.check(f"read:fill{filled}").allowed:
            filled += 1
            assert filled < 1000
        denied_size = segment.stat().st_size
        assert [agent.check(f"read:retry{i}").allowed for i in range(20)] == [False] * 20
        assert segment.stat().st_size == denied_size  # no checkpoint per denied retry
        os.truncate(segment, size_before)  # SECRET's decision goes
        for blocker in blockers:
            blocker.rmdir()
        assert [agent.check(f"read:later{i}").allowed for i in range(5)] == [False] * 5
        assert gov.audit.health()["status"] == "down"
    with pytest.raises(TrailRefused, match="state store knows"):
        Governor(config=cfg)


def _cut_copy(real: Path, copy: Path) -> None:
    shutil.copytree(real, copy)
    newest = list_segments(copy)[-1][1]
    lines = newest.read_bytes().splitlines(keepends=True)
    newest.write_bytes(b"".join(lines[: len(lines) // 2]))
    (copy / "checkpoint.json").unlink()


@pytest.mark.parametrize("target", ["empty folder", "cut copy"])
def test_an_audit_folder_replaced_by_a_symlink_is_refused(tmp_path: Path, target: str) -> None:
    # Before: the state store keyed the folder by its resolved path, so a symlink to somewhere else was a new
    # place with no history: an empty target started a new trail silently, a cut copy was accepted.
    write(tmp_path, 30)
    folder = tmp_path / "audit"
    os.rename(folder, tmp_path / "audit.real")
    elsewhere = tmp_path / "elsewhere"
    if target == "empty folder":
        elsewhere.mkdir()
    else:
        _cut_copy(tmp_path / "audit.real", elsewhere)
    folder.symlink_to(elsewhere)
    with pytest.raises(TrailRefused, match="state store knows"):
        Governor(config=config(tmp_path))


def _edit_the_last_entry(folder: Path) -> None:
    newest = list_segments(folder)[-1][1]
    lines = newest.read_bytes().splitlines(keepends=True)
    entry = orjson.loads(lines[-1])
    entry["action"] = "read:edited"  # the hash field is left as it was
    lines[-1] = orjson.dumps(entry, option=SORTED) + b"\n"
    newest.write_bytes(b"".join(lines))


def _add_a_stray_empty_segment(folder: Path) -> None:
    (folder / segment_name(100_001)).write_bytes(b"")


@pytest.mark.parametrize("damage", [_edit_the_last_entry, _add_a_stray_empty_segment])
def test_a_governor_does_not_continue_a_trail_it_can_tell_is_damaged(tmp_path: Path, damage: Any) -> None:
    # Before: both started with health "ok"; an edited last entry was chained on (and the next checkpoint
    # signed the edit), and a stray empty segment took every new entry into a segment verify rejects.
    write(tmp_path, 12)
    folder = tmp_path / "audit"
    cfg = config(tmp_path)
    store = open_state_store(cfg)
    trail = open_trail(cfg, store)
    trail.append(
        AuditEvent("policy_decision", "a", "read:last", context={"i": 1})
    )  # the last entry: no checkpoint after it
    trail.close()
    store.close()
    saved = {p.name: p.read_bytes() for _, p in list_segments(folder)}
    damage(folder)
    with pytest.raises(TrailRefused):
        Governor(config=cfg)
    for _, path in list_segments(folder):
        if path.name not in saved:
            path.unlink()
    for name, data in saved.items():
        (folder / name).write_bytes(data)
    Governor(config=cfg).close()  # undone: the same trail opens again
    assert verify(tmp_path).valid
