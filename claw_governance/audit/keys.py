"""The governor's own Ed25519 key: signs audit checkpoints and retention records.

Kept at ``<state>/governor_ed25519.pem`` (PKCS#8, mode 0600, created atomically so that several processes
starting together end up with one key), or only in memory when there is no state path.

With a passphrase (``CLAW_IDENTITY_PASSPHRASE``) the key is stored encrypted instead, exactly as agent keys
are (``identity/keys.py``: scrypt + AES-256-GCM, ``claw-key/1``) at ``<state>/governor_ed25519.key``, with
its public half at ``<state>/governor_ed25519.pub``; a plaintext PEM found there is migrated (encrypted,
then removed) the first time a governor starts with a passphrase.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from claw_governance.errors import AuditError
from claw_governance.keys import KeyFormatError, PublicKey, key_id

__all__ = [
    "KEY_FILE",
    "PUBLIC_KEY_FILE",
    "SEALED_KEY_FILE",
    "PublicKey",
    "SigningKey",
    "public_key_from_text",
]

KEY_FILE = "governor_ed25519.pem"
SEALED_KEY_FILE = "governor_ed25519.key"  # claw-key/1, encrypted with the identity passphrase
PUBLIC_KEY_FILE = "governor_ed25519.pub"  # the public half of the sealed key (SubjectPublicKeyInfo PEM)
SEALED_KEY_OWNER = "claw-governor:audit"  # the claw-key/1 "agent_id" of the governor's own key


def public_key_from_text(text: str | bytes) -> PublicKey:
    """An audit key from PEM (public, or a private key's public half) or 64 hex digits; AuditError if it is
    not Ed25519 (checkpoints are C2SP signed notes, which are Ed25519)."""
    try:
        key = PublicKey.from_text(text)
    except KeyFormatError as exc:
        raise AuditError(str(exc)) from None
    if key.algorithm != "ed25519":
        raise AuditError("not an Ed25519 public key: audit checkpoints are signed with Ed25519")
    return key


class SigningKey:
    """The private key; ``sign`` returns base64 text."""

    __slots__ = ("_private", "encrypted", "path", "public")

    def __init__(self, private: Ed25519PrivateKey, path: Path | None = None, *, encrypted: bool = False) -> None:
        self._private = private
        self.path = path
        self.encrypted = encrypted  # stored encrypted on disk (an in-memory key is never written)
        self.public = PublicKey.from_crypto(private.public_key())

    def sign(self, message: bytes) -> str:
        """Base64 of the Ed25519 signature over ``message``."""
        return base64.b64encode(self._private.sign(message)).decode("ascii")

    def private_key(self) -> Ed25519PrivateKey:
        """The private key object, for signing other standard formats (job tokens are EdDSA JWTs)."""
        return self._private

    def __repr__(self) -> str:  # never show key material
        return f"SigningKey(key_id={self.public.key_id!r}, path={self.path!r})"

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh in-memory key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(
        cls, directory: Path | None, passphrase: str | None = None, scrypt_log2_n: int = 17
    ) -> SigningKey:
        """The key in ``directory`` (created 0600 if missing), or an in-memory key when ``directory`` is None.

        With ``passphrase`` the key is kept encrypted (see the module docstring), a plaintext one migrated.
        """
        if directory is None:
            return cls.generate()
        if passphrase or (directory / SEALED_KEY_FILE).exists():
            return _load_or_create_sealed(cls, directory, passphrase, scrypt_log2_n)
        path = directory / KEY_FILE
        if not path.exists():
            directory.mkdir(parents=True, exist_ok=True)
            private = Ed25519PrivateKey.generate()
            pem = private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            tmp = directory / f".{KEY_FILE}.{os.getpid()}.{os.urandom(4).hex()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, pem)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)  # atomic and never overwrites: a concurrent creator's key wins
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        return cls.load(path)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """Load a PEM private key; AuditError with the path if it is not an unencrypted Ed25519 key."""
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise AuditError(f"{path}: cannot load the governor's audit key: {exc}") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise AuditError(f"{path}: the governor's audit key must be Ed25519")
        return cls(private, path)


def _link_new(directory: Path, name: str, data: bytes) -> None:
    """Create ``directory/name`` with ``data`` (mode 0600) unless it exists: atomic, a concurrent creator wins."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.{os.getpid()}.{os.urandom(4).hex()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, directory / name)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


def _load_or_create_sealed(
    cls: type[SigningKey], directory: Path, passphrase: str | None, scrypt_log2_n: int
) -> SigningKey:
    """The encrypted key: created (or migrated from the plaintext PEM) when missing, then opened."""
    from claw_governance.errors import IdentityError
    from claw_governance.identity import keys as agent_keys

    sealed, plain = directory / SEALED_KEY_FILE, directory / KEY_FILE
    if not passphrase:
        raise AuditError(
            f"{sealed}: the governor's audit key is encrypted; set CLAW_IDENTITY_PASSPHRASE "
            "(identity_passphrase) to use it"
        )
    if not sealed.exists():
        private = cls.load(plain)._private if plain.exists() else Ed25519PrivateKey.generate()
        file_key_id = key_id(agent_keys.public_der(private))  # claw-key/1's own key id
        _link_new(
            directory,
            SEALED_KEY_FILE,
            agent_keys.seal_key(SEALED_KEY_OWNER, file_key_id, private, passphrase, scrypt_log2_n),
        )
    try:
        loaded = agent_keys.read_key_file(sealed, SEALED_KEY_OWNER, passphrase)
    except IdentityError as exc:
        raise AuditError(f"cannot load the governor's audit key: {exc}") from None
    if not isinstance(loaded.key, Ed25519PrivateKey):
        raise AuditError(f"{sealed}: the governor's audit key must be Ed25519")
    key = cls(loaded.key, sealed, encrypted=True)
    public = directory / PUBLIC_KEY_FILE
    if not public.exists():
        _link_new(directory, PUBLIC_KEY_FILE, key.public.pem())
    if plain.exists():  # migrated: the plaintext copy goes only once the encrypted one opens
        try:
            if cls.load(plain).public.raw == key.public.raw:
                plain.write_bytes(b"\0" * plain.stat().st_size)  # best effort: no clear key left in the file
                plain.unlink()
        except (OSError, AuditError):
            pass
    return key
