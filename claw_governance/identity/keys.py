"""Agent keys: generation, import, signing and verification, and the encrypted key file.

Key file (``<identity_path>/<slug>.key``, mode 0600, JSON)::

    {"format": "claw-key/1", "agent_id": ..., "key_id": ..., "algorithm": "ed25519" | "rsa",
     "encryption": null, "private_key": "<base64 PKCS8 DER>"}                              # no passphrase
    {"format": "claw-key/1", ..., "encryption": {"kdf": "scrypt", "n": 131072, "r": 8, "p": 1,
     "salt": ..., "cipher": "aes-256-gcm", "nonce": ..., "check": ...}, "ciphertext": ...}  # passphrase

With a passphrase the PKCS8 DER is sealed with AES-256-GCM under a key derived by scrypt (N = 2**17 by
default: ~0.4 s and 128 MiB per derivation, against PKCS8 ``BestAvailableEncryption``'s 2048 PBKDF2
rounds). The header (format, agent, key id, algorithm, KDF parameters) is the GCM associated data, so no
field can be edited or the file moved to another agent unnoticed. ``check`` is a hash of a second KDF
output: it tells "wrong passphrase" apart from "file tampered with".

Private keys and passphrases never appear in an exception message, a repr or a log line.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from claw_governance.errors import IdentityError
from claw_governance.keys import RSA_PSS, CryptoPublicKey, KeyFormatError, PublicKey, key_id

KEY_FORMAT = "claw-key/1"
ALGORITHMS = ("ed25519", "rsa")
_SCRYPT_R = 8
_SCRYPT_P = 1

PrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


def b64e(data: bytes) -> str:
    """Standard base64 text."""
    return base64.b64encode(data).decode("ascii")


def b64d(text: str) -> bytes:
    """Strict base64 decoding (raises ValueError on junk)."""
    return base64.b64decode(text.encode("ascii"), validate=True)


def algorithm_of(key: PrivateKey | CryptoPublicKey) -> str:
    """``"ed25519"`` or ``"rsa"``."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    return "rsa"


def generate_key() -> ed25519.Ed25519PrivateKey:
    """A new Ed25519 private key."""
    return ed25519.Ed25519PrivateKey.generate()


def public_der(key: PrivateKey) -> bytes:
    """The DER SubjectPublicKeyInfo of a private key's public half."""
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public(der_b64: str) -> PublicKey:
    """A public key from base64 DER (Ed25519 or RSA); IdentityError if it is neither."""
    try:
        return PublicKey.from_der(b64d(der_b64))
    except (KeyFormatError, ValueError) as exc:
        raise IdentityError(f"cannot read a stored public key: {exc}") from None


def import_private_key(data: bytes, password: bytes | None = None) -> PrivateKey:
    """Read an existing PEM/DER private key (Ed25519, or RSA of at least 2048 bits) to import it."""
    try:
        if data.lstrip().startswith(b"-----BEGIN OPENSSH"):
            key: Any = serialization.load_ssh_private_key(data, password)
        elif data.lstrip().startswith(b"-----"):
            key = serialization.load_pem_private_key(data, password)
        else:
            key = serialization.load_der_private_key(data, password)
    except (ValueError, TypeError) as exc:
        # cryptography's messages never contain key material
        raise IdentityError(f"cannot read the key to import: {exc}") from None
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
        raise IdentityError(f"RSA key of {key.key_size} bits is too small to import (at least 2048)")
    if not isinstance(key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        raise IdentityError(f"cannot import a {type(key).__name__}: only Ed25519 and RSA keys are accepted")
    return key


def sign(key: PrivateKey, payload: bytes) -> bytes:
    """Ed25519 signature, or RSA-PSS/SHA-256 for imported RSA keys."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(payload)
    return key.sign(payload, RSA_PSS, hashes.SHA256())


# ------------------------------------------------------------------------------------------ key files

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def key_file_name(agent_id: str) -> str:
    """A file name for the agent's key: readable, and unique even for ids with unsafe characters."""
    slug = _SAFE.sub("_", agent_id)[:64].lstrip(".") or "agent"
    if slug != agent_id:
        slug += "-" + hashlib.sha256(agent_id.encode()).hexdigest()[:12]
    return slug + ".key"


@dataclass(frozen=True, slots=True)
class LoadedKey:
    """A private key read from its file, with the id it was stored under."""

    key_id: str
    algorithm: str
    key: PrivateKey
    encrypted: bool

    def __repr__(self) -> str:  # never show key material
        return f"LoadedKey(key_id={self.key_id!r}, algorithm={self.algorithm!r}, encrypted={self.encrypted})"


def _kdf(passphrase: str, salt: bytes, n: int) -> tuple[bytes, bytes]:
    out = hashlib.scrypt(
        passphrase.encode("utf-8"),
        salt=salt,
        n=n,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        maxmem=128 * _SCRYPT_R * n * 2 + (1 << 20),
        dklen=64,
    )
    return out[:32], hashlib.sha256(b"claw-key-check" + out[32:]).digest()


def _header_aad(doc: dict[str, Any]) -> bytes:
    enc = doc["encryption"]
    header = [
        doc["format"],
        doc["agent_id"],
        doc["key_id"],
        doc["algorithm"],
        enc["kdf"],
        enc["n"],
        enc["r"],
        enc["p"],
        enc["salt"],
        enc["cipher"],
        enc["nonce"],
    ]
    return orjson.dumps(header)


def seal_key(agent_id: str, key_id: str, key: PrivateKey, passphrase: str | None, log2_n: int) -> bytes:
    """The key file's bytes: the PKCS8 DER, encrypted when there is a passphrase."""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    doc: dict[str, Any] = {"format": KEY_FORMAT, "agent_id": agent_id, "key_id": key_id, "algorithm": algorithm_of(key)}
    if not passphrase:
        doc["encryption"] = None
        doc["private_key"] = b64e(der)
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    salt, nonce, n = os.urandom(16), os.urandom(12), 1 << log2_n
    secret, check = _kdf(passphrase, salt, n)
    doc["encryption"] = {
        "kdf": "scrypt",
        "n": n,
        "r": _SCRYPT_R,
        "p": _SCRYPT_P,
        "salt": b64e(salt),
        "cipher": "aes-256-gcm",
        "nonce": b64e(nonce),
        "check": b64e(check),
    }
    doc["ciphertext"] = b64e(AESGCM(secret).encrypt(nonce, der, _header_aad(doc)))
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)


def open_key(data: bytes, agent_id: str, passphrase: str | None, where: str) -> LoadedKey:
    """Parse and (if encrypted) decrypt a key file. Raises IdentityError with a one-line, secret-free reason."""
    try:
        doc = orjson.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != KEY_FORMAT:
            raise ValueError("not a claw-key/1 file")
        if doc["agent_id"] != agent_id:
            raise IdentityError(f"{where}: key file belongs to agent {doc['agent_id']!r}, not {agent_id!r}")
        enc = doc.get("encryption")
        if enc is None:
            der = b64d(doc["private_key"])
        else:
            if not passphrase:
                raise IdentityError(
                    f"{where}: key is encrypted; set CLAW_IDENTITY_PASSPHRASE (identity_passphrase) to use it"
                )
            if enc.get("kdf") != "scrypt" or enc.get("cipher") != "aes-256-gcm":
                raise ValueError(f"unsupported encryption {enc.get('kdf')}/{enc.get('cipher')}")
            n = int(enc["n"])
            if n < (1 << 14) or n > (1 << 22) or int(enc["r"]) != _SCRYPT_R or int(enc["p"]) != _SCRYPT_P:
                raise ValueError("KDF parameters out of the accepted range")
            secret, check = _kdf(passphrase, b64d(enc["salt"]), n)
            if not hmac.compare_digest(check, b64d(enc["check"])):
                raise IdentityError(f"{where}: wrong passphrase for this key (CLAW_IDENTITY_PASSPHRASE)")
            try:
                der = AESGCM(secret).decrypt(b64d(enc["nonce"]), b64d(doc["ciphertext"]), _header_aad(doc))
            except InvalidTag:
                raise IdentityError(f"{where}: key file was tampered with (authentication failed)") from None
        key = serialization.load_der_private_key(der, None)
    except IdentityError:
        raise
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise IdentityError(f"{where}: key file is corrupt or was tampered with ({type(exc).__name__})") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        raise IdentityError(f"{where}: unsupported key type")
    if algorithm_of(key) != doc["algorithm"] or key_id(public_der(key)) != doc["key_id"]:
        raise IdentityError(f"{where}: key file was tampered with (key does not match its id)")
    return LoadedKey(doc["key_id"], doc["algorithm"], key, enc is not None)


def check_permissions(path: Path) -> None:
    """Refuse a key file that group or others may read or write (like OpenSSH does). POSIX only."""
    if sys.platform == "win32":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise IdentityError(
            f"{path}: key file permissions {oct(mode)} are too open (group/other access); "
            f"refusing to use it. Fix with: chmod 600 {path}"
        )


def write_key_file(path: Path, data: bytes) -> None:
    """Write atomically (temp file + rename) with mode 0600 from the start; the folder is made 0700."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with_suppress_unlink(tmp)
        raise


def with_suppress_unlink(path: Path) -> None:
    """Remove a file if it is there."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def read_key_file(path: Path, agent_id: str, passphrase: str | None) -> LoadedKey:
    """Check permissions, read and open a key file."""
    try:
        check_permissions(path)
        data = path.read_bytes()
    except FileNotFoundError:
        raise IdentityError(f"{path}: key file of {agent_id!r} is missing") from None
    return open_key(data, agent_id, passphrase, str(path))
