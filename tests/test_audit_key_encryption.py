"""The governor's audit-signing key is encrypted when a passphrase is set (issue 13, class 10).

On the previous code the key was a plaintext PEM under the state folder whatever the passphrase, and
health_check() said nothing about unencrypted keys; these tests failed there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from claw_governance import Governor
from claw_governance.audit.keys import KEY_FILE, PUBLIC_KEY_FILE, SEALED_KEY_FILE, SigningKey
from claw_governance.errors import AuditError, ConfigError

POLICY = "agent: bot\npermissions:\n  allow: ['read:*']\n"
PASS = "correct horse battery staple"


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_with_a_passphrase_the_audit_key_is_encrypted(make_governor: Callable[..., Governor], tmp_path: Path) -> None:
    gov = make_governor(POLICY, state_path=tmp_path / "state", identity_passphrase=PASS, identity_scrypt_log2_n=14)
    gov.agent("bot").check("read:x")
    state = tmp_path / "state"
    assert not (state / KEY_FILE).exists()
    sealed = (state / SEALED_KEY_FILE).read_bytes()
    assert b'"encryption": {' in sealed and b"PRIVATE KEY" not in sealed
    assert (state / SEALED_KEY_FILE).stat().st_mode & 0o077 == 0
    assert b"PRIVATE KEY" not in _all_bytes(tmp_path)  # no private key in clear anywhere we wrote
    assert gov.audit.key.encrypted  # type: ignore[attr-defined]
    assert "warnings" not in gov.health_check()["components"]["keys"]
    gov.close()
    again = make_governor(None, state_path=tmp_path / "state", identity_passphrase=PASS, identity_scrypt_log2_n=14)
    assert again.audit.key.public.raw == gov.audit.key.public.raw  # type: ignore[attr-defined]
    assert again.audit.verify().valid


def test_an_existing_plaintext_key_is_migrated(tmp_path: Path) -> None:
    state = tmp_path / "state"
    plain = SigningKey.load_or_create(state)
    assert (state / KEY_FILE).exists()
    sealed = SigningKey.load_or_create(state, PASS, 14)
    assert sealed.public.raw == plain.public.raw and sealed.encrypted
    assert not (state / KEY_FILE).exists()
    assert (state / PUBLIC_KEY_FILE).read_bytes() == plain.public.pem()
    # the encrypted key cannot be used without (or with a wrong) passphrase; the error says what to do
    with pytest.raises(AuditError, match="CLAW_IDENTITY_PASSPHRASE"):
        SigningKey.load_or_create(state)
    with pytest.raises(AuditError, match="wrong passphrase"):
        SigningKey.load_or_create(state, "not it", 14)
    assert SigningKey.load_or_create(state, PASS, 14).public.raw == plain.public.raw


def test_a_migrated_trail_still_verifies(make_governor: Callable[..., Governor], tmp_path: Path) -> None:
    before = make_governor(POLICY, state_path=tmp_path / "state")
    before.agent("bot").check("read:x")
    before.close()
    after = make_governor(None, state_path=tmp_path / "state", identity_passphrase=PASS, identity_scrypt_log2_n=14)
    after.agent("bot").check("read:y")
    assert after.audit.verify().valid
    assert not (tmp_path / "state" / KEY_FILE).exists()


def test_health_warns_when_keys_are_not_encrypted(make_governor: Callable[..., Governor], tmp_path: Path) -> None:
    gov = make_governor(POLICY, state_path=tmp_path / "state")
    report = gov.health_check()
    keys = report["components"]["keys"]
    assert keys["encrypted"] is False and "CLAW_IDENTITY_PASSPHRASE" in keys["warnings"][0]
    assert report["warnings"] == keys["warnings"]


def test_starting_without_the_passphrase_is_one_clear_error(
    make_governor: Callable[..., Governor], tmp_path: Path
) -> None:
    make_governor(POLICY, state_path=tmp_path / "state", identity_passphrase=PASS, identity_scrypt_log2_n=14).close()
    with pytest.raises((AuditError, ConfigError), match="encrypted; set CLAW_IDENTITY_PASSPHRASE"):
        make_governor(None, state_path=tmp_path / "state")
