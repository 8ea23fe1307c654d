"""Proof bundles per job, through the CLI: one that verifies, one that fails after any single change, and the
Go reference implementation checking an entry's proof from the bundle."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from claw_governance import Governor
from claw_governance.cli import build_cli
from claw_governance.jobs.receipts import ModelCall

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = """\
agent: billing-agent
purpose: Invoice triage
permissions:
  allow: ["read:*", "write:*"]
  escalate: [send:email]
models: ["openai/gpt-5*"]
receipts: required
"""


def _cli(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(build_cli(), list(args), prog_name="claw-gov")


def _paths(tmp_path: Path) -> list[str]:
    return [
        "--policies",
        str(tmp_path / "policies"),
        "--audit",
        str(tmp_path / "logs" / "audit"),
        "--identities",
        str(tmp_path / "identities"),
    ]


@pytest.fixture
def bundle(tmp_path: Path, write_policy: Callable[..., Path]) -> Path:
    write_policy(CONTRACT)
    with Governor(
        tmp_path / "policies", tmp_path / "logs" / "audit", tmp_path / "identities", load_entry_points=False
    ) as gov:
        job = gov.start_job("inv-7", agent_id="billing-agent", scope=["read:*", "send:*"])
        agent = gov.agent("billing-agent", job_token=job.token)
        gov.record_model_call(
            ModelCall("billing-agent", "gpt-5", "openai", request="q", response="a"), job_token=job.token
        )
        agent.execute("read:invoice", {"n": 1}, lambda ctx: "ok")
        agent.check("write:ledger")  # outside the scope: denied, and part of the evidence
        agent.check("send:email")  # escalates
        gov.agent("billing-agent").check("read:elsewhere")  # not under the job
        (tmp_path / "key.pem").write_bytes(gov.audit.key.public.pem())
    out = _cli(tmp_path, "proof", "export", "--job", "inv-7", str(tmp_path / "bundle"), *_paths(tmp_path))
    assert out.exit_code == 0, out.output
    return tmp_path / "bundle"


def _verify(bundle: Path, key: Path, *extra: str) -> Result:
    return _cli(bundle, "proof", "verify", str(bundle), "--public-key", str(key), *extra)


def test_a_bundle_verifies_with_the_governors_key(bundle: Path, tmp_path: Path) -> None:
    result = _verify(bundle, tmp_path / "key.pem", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["valid"] and report["job_id"] == "inv-7" and report["entries"] >= 6
    lines = [json.loads(x) for x in (bundle / "entries.jsonl").read_text().splitlines()]
    assert {e["type"] for e in lines} >= {"job", "model_call", "policy_decision", "agent_action", "escalation"}
    assert all(e.get("action") != "read:elsewhere" for e in lines)
    token = json.loads((bundle / "token.json").read_text())
    assert token["job"] == "inv-7" and token["policy_hash"] and token["tokens_minted"] == [token["jti"]]
    assert (bundle / "contract" / "policy.yaml").read_text() == CONTRACT


def test_the_token_itself_is_never_in_the_bundle(bundle: Path) -> None:
    for path in bundle.rglob("*"):
        if path.is_file():
            assert b"eyJ" not in path.read_bytes(), path  # a JWT's base64url header


def test_another_key_is_refused(bundle: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = tmp_path / "other.pem"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    result = _verify(bundle, other)
    assert result.exit_code == 1 and "not signed by a trusted key" in result.stdout


def _every_file(bundle: Path) -> list[Path]:
    return sorted(p for p in bundle.rglob("*") if p.is_file() and p.name != "README.md")


@pytest.mark.parametrize(
    "target",
    [
        "entries.jsonl",
        "token.json",
        "contract/policy.yaml",
        "checkpoint.note",
        "contract.json",
        "manifest.json",
        "proofs/",
    ],
)
def test_one_changed_byte_makes_it_invalid(bundle: Path, tmp_path: Path, target: str) -> None:
    path = next(p for p in _every_file(bundle) if p.relative_to(bundle).as_posix().startswith(target))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    result = _verify(bundle, tmp_path / "key.pem")
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("INVALID") and "Traceback" not in result.output


def test_a_consistent_forgery_is_still_caught_by_the_contract_rules(bundle: Path, tmp_path: Path) -> None:
    """Rewrite the manifest after removing the model-call receipt: the manifest matches, the proofs still
    verify for what is left, but the contract says receipts are required."""
    lines = (bundle / "entries.jsonl").read_text().splitlines(keepends=True)
    kept = [line for line in lines if '"type":"model_call"' not in line]
    assert len(kept) == len(lines) - 1
    (bundle / "entries.jsonl").write_text("".join(kept))
    import hashlib

    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["entries.jsonl"] = hashlib.sha256((bundle / "entries.jsonl").read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    result = _verify(bundle, tmp_path / "key.pem")
    assert result.exit_code == 1 and "receipts: required" in result.stdout


def test_export_refuses_unknown_jobs_and_full_folders(bundle: Path, tmp_path: Path) -> None:
    unknown = _cli(tmp_path, "proof", "export", "--job", "nope", str(tmp_path / "b2"), *_paths(tmp_path))
    assert unknown.exit_code == 2 and "no job with id 'nope'" in unknown.stderr
    full = _cli(tmp_path, "proof", "export", "--job", "inv-7", str(bundle), *_paths(tmp_path))
    assert full.exit_code == 2 and "is not empty" in full.stderr


def test_the_go_reference_checks_an_entry_of_the_bundle(bundle: Path, tmp_path: Path) -> None:
    assert shutil.which("go"), "make install puts golang-go and golang-golang-x-mod-dev here"
    binary = tmp_path / "tlogverify"
    env = {
        **os.environ,
        "GOPATH": "/usr/share/gocode",
        "GO111MODULE": "off",
        "GOFLAGS": "",
        "GOCACHE": str(tmp_path / "gocache"),
    }
    subprocess.run(
        ["go", "build", "-o", str(binary), "./tools/tlogverify"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    line = (bundle / "entries.jsonl").read_bytes().splitlines()[0]
    seq = json.loads(line)["seq"]
    (tmp_path / "entry").write_bytes(line)
    vkey = (bundle / "verifier_key.txt").read_text().strip()
    ok = subprocess.run(
        [str(binary), "proof", vkey, str(bundle / "proofs" / f"seq-{seq}.tlog-proof"), str(tmp_path / "entry")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (tmp_path / "entry").write_bytes(line.replace(b'"job"', b'"jo b"', 1))
    bad = subprocess.run(
        [str(binary), "proof", vkey, str(bundle / "proofs" / f"seq-{seq}.tlog-proof"), str(tmp_path / "entry")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0
