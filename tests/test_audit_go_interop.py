"""Our checkpoints and proofs, checked by the Go reference implementation (golang.org/x/mod/sumdb).

The verifier in tools/tlogverify is built offline from Debian's golang-golang-x-mod-dev; it must accept what
we write and reject it after a one-byte change.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from claw_governance.audit import open_trail
from claw_governance.audit.bundle import trail_leaves
from claw_governance.audit.merkle import consistency_proof
from claw_governance.audit.note import Checkpoint, format_checkpoint, sign_note, vkey
from claw_governance.cli import build_cli
from claw_governance.config import GovernorConfig
from claw_governance.model import AuditEvent
from claw_governance.state import MemoryStateStore

ROOT = Path(__file__).resolve().parents[1]
GOSRC = Path("/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog")


@pytest.fixture(scope="module")
def tlogverify(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert shutil.which("go") and GOSRC.is_dir(), "make install puts golang-go and golang-golang-x-mod-dev here"
    out = tmp_path_factory.mktemp("go") / "tlogverify"
    env = {
        **os.environ,
        "GOPATH": "/usr/share/gocode",
        "GO111MODULE": "off",
        "GOFLAGS": "",
        "GOCACHE": str(out.parent / "cache"),
    }
    subprocess.run(
        ["go", "build", "-o", str(out), "./tools/tlogverify"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def go(binary: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=60)


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_go_reference_accepts_our_checkpoints_and_proofs_and_rejects_a_changed_byte(
    tlogverify: Path, tmp_path: Path
) -> None:
    config = GovernorConfig(audit_path=tmp_path / "audit", state_path=tmp_path / "state", audit_checkpoint_interval=7)
    trail = open_trail(config, MemoryStateStore())
    for i in range(41):
        trail.append(AuditEvent("policy_decision", "a", f"read:{i}", context={"i": i}))
    trail.close()
    runner = CliRunner()
    key = runner.invoke(
        build_cli(),
        [
            "audit",
            "public-key",
            "--format",
            "note",
            "--audit",
            str(config.audit_path),
            "--state",
            str(config.state_path),
        ],
    ).stdout.strip()
    cp_text = runner.invoke(build_cli(), ["audit", "checkpoint", "--audit", str(config.audit_path)]).stdout
    cp_file = tmp_path / "cp.note"
    cp_file.write_text(cp_text)
    ok = go(tlogverify, "checkpoint", key, cp_file)
    assert ok.returncode == 0, ok.stderr
    size = int(cp_text.split("\n")[1])
    flip(cp_file, cp_text.index("\n", cp_text.index("\n") + 1) + 3)  # one byte of the root hash line
    assert go(tlogverify, "checkpoint", key, cp_file).returncode == 1

    leaves, lines = trail_leaves(config.audit_path)
    for seq in (1, 2, 8, size // 2, size):
        result = runner.invoke(build_cli(), ["audit", "prove", "--seq", str(seq), "--audit", str(config.audit_path)])
        assert result.exit_code == 0, result.stderr
        proof, entry = tmp_path / f"{seq}.tlog-proof", tmp_path / f"{seq}.line"
        proof.write_text(result.stdout)
        entry.write_bytes(lines[seq])
        ok = go(tlogverify, "proof", key, proof, entry)
        assert ok.returncode == 0, ok.stderr
        flip(entry, 5)
        assert go(tlogverify, "proof", key, proof, entry).returncode == 1
        entry.write_bytes(lines[seq])
        if len(result.stdout.split("\n\n")[0].split("\n")) > 2:  # a proof with at least one hash
            flip(proof, result.stdout.index("\n", result.stdout.index("index ")) + 2)
            assert go(tlogverify, "proof", key, proof, entry).returncode == 1

    # Consistency between two checkpoints of the same trail (sizes 7 and the latest).
    origin = trail.origin
    for old in (1, 7, 16, size - 1):
        old_cp = Checkpoint(origin, old, leaves.root(old), format_checkpoint(origin, old, leaves.root(old)))
        old_cp = old_cp.with_signatures([sign_note(old_cp.text, origin, trail.key)])
        (tmp_path / "old.note").write_text(old_cp.note())
        proof_file = tmp_path / "consistency.txt"
        proof_file.write_text(
            "".join(base64.b64encode(h).decode() + "\n" for h in consistency_proof(old, size, leaves))
        )
        (tmp_path / "new.note").write_text(cp_text)
        ok = go(tlogverify, "consistency", key, tmp_path / "old.note", tmp_path / "new.note", proof_file)
        assert ok.returncode == 0, (old, ok.stderr)
        if proof_file.read_text():
            flip(proof_file, 1)
            assert (
                go(tlogverify, "consistency", key, tmp_path / "old.note", tmp_path / "new.note", proof_file).returncode
                == 1
            )
    assert vkey(origin, trail.key.public) == key
