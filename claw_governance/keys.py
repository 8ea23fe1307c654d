"""Public keys and the one rule that names them.

Agent keys (``identity``), the governor's audit key (``audit``) and the key that signs job tokens (the same
audit key) are all :class:`PublicKey` values, and all are named by :func:`key_id`: the first 16 bytes of
SHA-256 over the key's DER SubjectPublicKeyInfo, as 32 hex digits. Hashing the standard encoding (not the
raw key bytes) means the id names the algorithm as well as the key, and anyone can recompute it with
``openssl pkey -pubin -outform DER | sha256sum``.

Audit trails and job tokens written before this rule named the audit key by SHA-256 over its 32 raw
Ed25519 bytes, 16 hex digits. Those ids stay in hash-chained entries, checkpoint records and token headers
that must never be rewritten, so :attr:`PublicKey.aliases` holds both names and every reader looks keys up
through it (:func:`by_alias`); nothing new is written under the old name.

The C2SP signed-note key id (``audit.note``) is a different thing, fixed by that standard, and unchanged.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

CryptoPublicKey = ed25519.Ed25519PublicKey | rsa.RSAPublicKey
"""The ``cryptography`` key objects a :class:`PublicKey` may hold."""

RSA_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
"""How RSA keys sign and verify here: PSS with MGF1/SHA-256 and a digest-length salt, over SHA-256."""
_DER, _SPKI = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo


class KeyFormatError(ValueError):
    """Text or bytes that are not an Ed25519 or RSA public key (or a private key to take one from)."""


def key_id(public_der: bytes) -> str:
    """The id of a public key: the first 16 bytes of SHA-256 over its DER SubjectPublicKeyInfo, as hex."""
    return hashlib.sha256(public_der).hexdigest()[:32]


def legacy_key_id(public_raw: bytes) -> str:
    """The id audit trails and job tokens used before :func:`key_id`: SHA-256 of the raw key, 16 hex.

    For reading old trails and tokens only; never written.
    """
    return hashlib.sha256(public_raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 or RSA public key, held as its DER SubjectPublicKeyInfo (``der``).

    Build one with :meth:`from_der`, :meth:`from_raw` (32 Ed25519 bytes), :meth:`from_crypto` or
    :meth:`from_text`; each checks the key once, so ``verify`` never parses.
    """

    der: bytes
    crypto: CryptoPublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            loaded = serialization.load_der_public_key(self.der)
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"not a DER public key: {exc}") from None
        if not isinstance(loaded, ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
            raise KeyFormatError(f"unsupported public key type {type(loaded).__name__} (Ed25519 or RSA)")
        # DER has more than one way to write the same RSA key (NULL parameters left out, the RSASSA-PSS OID);
        # the id hashes the standard encoding, so one key has one id whatever bytes it came in
        object.__setattr__(self, "der", loaded.public_bytes(_DER, _SPKI))
        object.__setattr__(self, "crypto", loaded)

    # ---------------------------------------------------------------------------------------- names

    @property
    def algorithm(self) -> str:
        """``"ed25519"`` or ``"rsa"``."""
        return "ed25519" if isinstance(self.crypto, ed25519.Ed25519PublicKey) else "rsa"

    @property
    def key_id(self) -> str:
        """This key's id (:func:`key_id`)."""
        return key_id(self.der)

    @property
    def aliases(self) -> tuple[str, ...]:
        """Every id this key is known by: :attr:`key_id`, then (Ed25519) the legacy audit id."""
        if isinstance(self.crypto, ed25519.Ed25519PublicKey):
            return (self.key_id, legacy_key_id(self.raw))
        return (self.key_id,)

    # ---------------------------------------------------------------------------------------- forms

    @property
    def raw(self) -> bytes:
        """The 32 raw bytes of an Ed25519 key (signed notes and trail.json use them); ValueError for RSA."""
        if not isinstance(self.crypto, ed25519.Ed25519PublicKey):
            raise ValueError("an RSA key has no raw Ed25519 form")
        return self.crypto.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def hex(self) -> str:
        """The raw Ed25519 key as hex (how trail.json stores it)."""
        return self.raw.hex()

    def pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM (for evidence bundles and ``--public-key``)."""
        return self.crypto.public_bytes(serialization.Encoding.PEM, _SPKI)

    # ---------------------------------------------------------------------------------------- use

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True if ``signature`` is this key's over ``message`` (Ed25519, or RSA-PSS/SHA-256); never raises."""
        try:
            if isinstance(self.crypto, ed25519.Ed25519PublicKey):
                self.crypto.verify(signature, message)
            else:
                self.crypto.verify(signature, message, RSA_PSS, hashes.SHA256())
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    def verify_b64(self, signature_b64: str, message: bytes) -> bool:
        """:meth:`verify` for a base64 signature (how audit records carry them); never raises."""
        try:
            signature = base64.b64decode(signature_b64, validate=True)
        except (ValueError, TypeError):
            return False
        return self.verify(signature, message)

    # ---------------------------------------------------------------------------------------- build

    @classmethod
    def from_der(cls, der: bytes) -> PublicKey:
        """From DER SubjectPublicKeyInfo; KeyFormatError if it is not an Ed25519 or RSA key."""
        return cls(bytes(der))

    @classmethod
    def from_crypto(cls, key: CryptoPublicKey) -> PublicKey:
        """From a ``cryptography`` public key object."""
        return cls(key.public_bytes(_DER, _SPKI))

    @classmethod
    def from_raw(cls, raw: bytes) -> PublicKey:
        """From the 32 raw bytes of an Ed25519 key; KeyFormatError otherwise."""
        try:
            return cls.from_crypto(ed25519.Ed25519PublicKey.from_public_bytes(bytes(raw)))
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"not a raw Ed25519 public key: {exc}") from None

    @classmethod
    def from_text(cls, text: str | bytes) -> PublicKey:
        """From PEM (a public key, or a private key's public half) or 64 hex digits of a raw Ed25519 key."""
        data = (text.encode() if isinstance(text, str) else text).strip()
        if len(data) == 64:
            try:
                return cls.from_raw(bytes.fromhex(data.decode("ascii")))
            except (ValueError, UnicodeDecodeError):
                pass
        try:
            if b"PRIVATE KEY" in data:
                private = serialization.load_pem_private_key(data, password=None)
                if not isinstance(private, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
                    raise KeyFormatError(f"unsupported private key type {type(private).__name__}")
                return cls.from_crypto(private.public_key())
            loaded = serialization.load_pem_public_key(data)
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"not a public key (PEM or 64 hex digits): {exc}") from None
        if not isinstance(loaded, ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
            raise KeyFormatError(f"unsupported public key type {type(loaded).__name__} (Ed25519 or RSA)")
        return cls.from_crypto(loaded)


def by_alias(keys: Iterable[PublicKey]) -> dict[str, PublicKey]:
    """``{id: key}`` under every id of every key, for looking up ids written under either rule."""
    return {alias: key for key in keys for alias in key.aliases}
