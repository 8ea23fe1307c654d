"""Key files: encryption at rest, tampering, wrong passphrase, permissions, import, no secrets in logs."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from claw_governance import Governor
from claw_governance.config import GovernorConfig
from claw_governance.errors import IdentityError
from claw_governance.identity import keys as K
from claw_governance.keys import key_id as public_key_id

FAST = {"identity_scrypt_log2_n": 14, "state_sync_interval": 0.1}

POLICY = """\
agent: "*"
permissions:
  allow: ["read:*"]
"""


def sealed(passphrase: str | None, log2_n: int = 14) -> tuple[bytes, K.PrivateKey, str]:
    key = K.generate_key()
    key_id = public_key_id(K.public_der(key))
    return K.seal_key("bot", key_id, key, passphrase, log2_n), key, key_id


def test_plain_and_encrypted_key_files_round_trip() -> None:
    for passphrase in (None, "correct horse"):
        data, key, key_id = sealed(passphrase)
        loaded = K.open_key(data, "bot", passphrase, "bot.key")
        assert loaded.key_id == key_id and loaded.encrypted == (passphrase is not None)
        assert K.public_der(loaded.key) == K.public_der(key)


def test_encrypted_file_uses_scrypt_and_holds_no_plain_key() -> None:
    data, key, _ = sealed("pw", 14)
    doc = orjson.loads(data)
    assert doc["encryption"]["kdf"] == "scrypt" and doc["encryption"]["n"] == 2**14
    assert doc["encryption"]["cipher"] == "aes-256-gcm" and "private_key" not in doc
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    assert raw not in data and base64.b64encode(raw) not in data


def test_default_cost_is_scrypt_2_pow_17() -> None:
    assert GovernorConfig().identity_scrypt_log2_n == 17  # 128 MiB, ~0.4 s: not PKCS8's 2048 PBKDF2 rounds
    with pytest.raises(Exception, match="identity_scrypt_log2_n"):
        GovernorConfig(identity_scrypt_log2_n=10)


def test_wrong_passphrase_is_named_as_such() -> None:
    data, _, _ = sealed("right")
    with pytest.raises(IdentityError, match="wrong passphrase"):
        K.open_key(data, "bot", "wrong", "bot.key")
    with pytest.raises(IdentityError, match="encrypted; set CLAW_IDENTITY_PASSPHRASE"):
        K.open_key(data, "bot", None, "bot.key")


@pytest.mark.parametrize("field", ["ciphertext", "nonce"])
def test_tampered_ciphertext_is_detected(field: str) -> None:
    data, _, _ = sealed("pw")
    doc = orjson.loads(data)
    target = doc if field == "ciphertext" else doc["encryption"]
    raw = bytearray(base64.b64decode(target[field]))
    raw[len(raw) // 2] ^= 0x01
    target[field] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(IdentityError, match="tampered"):
        K.open_key(orjson.dumps(doc), "bot", "pw", "bot.key")


def test_a_key_file_cannot_be_moved_to_another_agent() -> None:
    data, _, _ = sealed("pw")
    doc = orjson.loads(data)
    doc["agent_id"] = "mallory"
    with pytest.raises(IdentityError, match="belongs to agent 'mallory'"):
        K.open_key(orjson.dumps(doc), "bot", "pw", "bot.key")
    with pytest.raises(IdentityError, match="tampered"):  # rename inside the file too: the AAD catches it
        K.open_key(orjson.dumps(doc), "mallory", "pw", "bot.key")


def test_tampered_plain_key_file_is_detected() -> None:
    data, _, _ = sealed(None)
    doc = orjson.loads(data)
    other = K.generate_key().private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    doc["private_key"] = base64.b64encode(other).decode()
    with pytest.raises(IdentityError, match="does not match its id"):
        K.open_key(orjson.dumps(doc), "bot", None, "bot.key")
    with pytest.raises(IdentityError, match="corrupt"):
        K.open_key(b"{not json", "bot", None, "bot.key")


def test_registry_refuses_loose_permissions_and_tampered_files(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(POLICY, identity_passphrase="s3cret", **FAST)
    gov.agent("bot")
    path = gov.identities.key_path("bot")
    assert path is not None and oct(path.stat().st_mode & 0o777) == "0o600"
    assert gov.identities.load_private_key("bot").encrypted
    os.chmod(path, 0o644)
    with pytest.raises(IdentityError, match=r"too open.*chmod 600"):  # refused, not just warned
        gov.identities.load_private_key("bot")
    os.chmod(path, 0o600)
    doc = orjson.loads(path.read_bytes())
    doc["ciphertext"] = doc["ciphertext"][:-8] + ("A" * 8 if not doc["ciphertext"].endswith("A" * 8) else "B" * 8)
    path.write_bytes(orjson.dumps(doc))
    with pytest.raises(IdentityError, match=r"tampered|corrupt"):
        gov.identities.load_private_key("bot")
    path.unlink()
    with pytest.raises(IdentityError, match="missing"):
        gov.identities.load_private_key("bot")


def test_unsafe_agent_ids_get_safe_unique_file_names() -> None:
    assert K.key_file_name("bot-1") == "bot-1.key"
    a, b = K.key_file_name("../etc/passwd"), K.key_file_name("__etc_passwd")
    assert "/" not in a and not a.startswith(".") and a != b


def test_rsa_keys_can_be_imported_and_sign(make_governor: Callable[..., Governor], tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"import-pw"),
    )
    imported = K.import_private_key(pem, b"import-pw")
    gov = make_governor(POLICY, require_signature=True, auto_create_identity=False, **FAST)
    record = gov.identities.create("legacy", private_key=imported)
    assert gov.identities.keys("legacy")[0].algorithm == "rsa" and record.key_id
    assert gov.agent("legacy").check("read:x").allowed
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(IdentityError, match="too small"):
        K.import_private_key(small)
    with pytest.raises(IdentityError, match="cannot read"):
        K.import_private_key(b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")


def test_secrets_never_reach_logs_reprs_or_the_audit_trail(
    make_governor: Callable[..., Governor], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    passphrase = "very-secret-passphrase-1234"
    caplog.set_level(logging.DEBUG)
    gov = make_governor(POLICY, identity_passphrase=passphrase, require_signature=True, **FAST)
    agent = gov.agent("bot")
    assert agent.check("read:x").allowed
    gov.identities.rotate("bot", by="ops")
    assert agent.check("read:y").allowed
    loaded = gov.identities.load_private_key("bot")
    raw = loaded.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    secrets = [passphrase, base64.b64encode(raw).decode(), raw.hex()]
    gov.close()
    key_path = gov.identities.key_path("bot")
    assert key_path is not None
    os.chmod(key_path, 0o640)  # a second governor cannot sign now: the error path logs too
    gov2 = make_governor(POLICY, identity_passphrase=passphrase, require_signature=True, **FAST)
    denied = gov2.agent("bot").check("read:z")
    assert not denied.allowed and "unsigned" in denied.reason
    assert "could not sign call" in caplog.text and "too open" in caplog.text
    gov2.close()
    texts = [caplog.text, repr(gov.config), str(gov.config), repr(loaded)]
    texts += [p.read_text(errors="replace") for p in (tmp_path / "logs").rglob("*") if p.is_file()]
    for text in texts:
        for secret in secrets:
            assert secret not in text
