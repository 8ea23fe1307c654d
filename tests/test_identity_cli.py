"""`claw-gov identity create|list|show|rotate|revoke|reinstate`: every change audited, errors one line."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from claw_governance import Governor
from claw_governance.cli import build_cli

POLICY = """\
agent: bot
permissions:
  allow: ["read:*"]
trust: {min_score: 50, recovery_score: 70}
"""


@pytest.fixture
def invoke(tmp_path: Path, write_policy: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    write_policy(POLICY)
    monkeypatch.setenv("IDENTITY_SCRYPT_LOG2_N", "14")
    monkeypatch.delenv("CLAW_IDENTITY_PASSPHRASE", raising=False)

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(
            build_cli(),
            [
                *args,
                "--policies",
                str(tmp_path / "policies"),
                "--audit",
                str(tmp_path / "audit"),
                "--identities",
                str(tmp_path / "ids"),
            ],
            env=env,
        )

    return run


def audit_events(tmp_path: Path, passphrase: str | None = None) -> list[tuple[str, str]]:
    with Governor(
        tmp_path / "policies",
        tmp_path / "audit",
        tmp_path / "ids",
        load_entry_points=False,
        identity_passphrase=passphrase,
        identity_scrypt_log2_n=14,
    ) as gov:
        return [
            (e["type"], (e.get("details") or {}).get("event", ""))
            for e in gov.audit.entries()
            if e["type"] in ("identity", "trust_change")
        ]


def test_full_identity_lifecycle(invoke: Callable[..., Result], tmp_path: Path) -> None:
    env = {"CLAW_IDENTITY_PASSPHRASE": "pw-123"}
    created = invoke("identity", "create", "bot", "--owner", "team@example.com", "--by", "ops", env=env)
    assert created.exit_code == 0, created.output
    assert "(encrypted)" in created.output
    assert oct((tmp_path / "ids" / "bot.key").stat().st_mode & 0o777) == "0o600"
    again = invoke("identity", "create", "bot", env=env)
    assert again.exit_code != 0 and again.output.strip() == "error: identity 'bot' already exists"

    shown = json.loads(invoke("identity", "show", "bot", "--check-key", "--json", env=env).output)
    assert shown["status"] == "active" and shown["trust_score"] == 100 and shown["metadata"]["owner"]
    assert shown["key_check"] == "ok (ed25519, encrypted)" and len(shown["keys"]) == 1
    wrong = invoke("identity", "show", "bot", "--check-key", env={"CLAW_IDENTITY_PASSPHRASE": "nope"})
    assert wrong.exit_code != 0 and "wrong passphrase" in wrong.output and "Traceback" not in wrong.output

    rotated = invoke("identity", "rotate", "bot", "--reason", "scheduled", env=env)
    assert rotated.exit_code == 0 and "->" in rotated.output
    keys = json.loads(invoke("identity", "show", "bot", "--json", env=env).output)["keys"]
    assert [k["current"] for k in keys] == [False, True] and keys[0]["retired"]

    # the governor's own audit-signing key is encrypted with the passphrase too (issue 13): without it no
    # command can open the governor, and the error says what to set
    locked_out = invoke("identity", "revoke", "bot", "--reason", "leak", "--by", "sec")
    assert locked_out.exit_code != 0 and "CLAW_IDENTITY_PASSPHRASE" in locked_out.output
    assert invoke("identity", "revoke", "bot", "--reason", "test", env=env).exit_code != 0  # --by is required
    assert invoke("identity", "revoke", "bot", "--reason", "leak", "--by", "sec", env=env).exit_code == 0
    twice = invoke("identity", "revoke", "bot", "--reason", "leak", "--by", "sec", env=env)
    assert twice.exit_code != 0 and "already revoked" in twice.output
    listed = invoke("identity", "list", env=env)
    assert "bot" in listed.output and "revoked" in listed.output
    back = invoke("identity", "reinstate", "bot", "--by", "alice", "--reason", "rotated", env=env)
    assert back.exit_code == 0 and "trust score 70" in back.output  # the policy's recovery_score
    assert json.loads(invoke("identity", "list", "--json", env=env).output)[0]["trust_score"] == 70

    assert audit_events(tmp_path, "pw-123") == [
        ("identity", "created"),
        ("identity", "rotated"),
        ("identity", "revoked"),
        ("trust_change", ""),
        ("identity", "reinstated"),
    ]


def test_import_an_existing_key(invoke: Callable[..., Result], tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = tmp_path / "existing.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    done = invoke("identity", "create", "bot", "--import-key", str(pem))
    assert done.exit_code == 0, done.output
    assert "imported" in done.output and "NOT encrypted" in done.output
    shown = json.loads(invoke("identity", "show", "bot", "--json").output)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    import base64

    assert shown["keys"][0]["public_key"] == base64.b64encode(public).decode()
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    failed = invoke("identity", "create", "other", "--import-key", str(bad))
    assert failed.exit_code != 0 and failed.output.startswith("error: cannot read the key to import")


def test_unknown_agents_are_one_line_errors(invoke: Callable[..., Result]) -> None:
    for args in (
        ("show", "ghost"),
        ("rotate", "ghost"),
        ("revoke", "ghost", "--reason", "x", "--by", "y"),
        ("reinstate", "ghost", "--by", "y"),
    ):
        result = invoke("identity", *args)
        assert result.exit_code != 0 and "ghost" in result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert invoke("identity", "list").output.strip() == "no identities"


def test_key_file_with_loose_permissions_is_refused_by_show(invoke: Callable[..., Result], tmp_path: Path) -> None:
    assert invoke("identity", "create", "bot").exit_code == 0
    os.chmod(tmp_path / "ids" / "bot.key", 0o644)
    result = invoke("identity", "show", "bot", "--check-key")
    assert result.exit_code != 0 and "too open" in result.output
