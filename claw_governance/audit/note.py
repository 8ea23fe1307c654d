"""C2SP signed notes, checkpoints and cosignatures (Ed25519 only).

* c2sp.org/signed-note: a note is UTF-8 text ending in a newline, a blank line, then signature lines
  ``— <key name> base64(4-byte key ID || signature)``. For Ed25519 (signature type 0x01) the key ID is
  ``SHA-256(<name> || "\\n" || 0x01 || 32-byte key)[:4]`` and the signature covers the text.
  A verifier key is written ``<name>+<hex key ID>+base64(0x01 || key)``.
* c2sp.org/tlog-checkpoint: the text is ``<origin>\\n<tree size>\\n<base64 root hash>\\n``; the log's key
  name is its origin.
* c2sp.org/tlog-cosignature: a witness's ``cosignature/v1`` (type 0x04) signs
  ``cosignature/v1\\ntime <T>\\n`` + the checkpoint text; the signature field is ``u64 T || Ed25519 sig``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass, field

from claw_governance.audit.keys import PublicKey, SigningKey

__all__ = [
    "Checkpoint",
    "NoteSignature",
    "cosign",
    "cosignature_key_id",
    "format_checkpoint",
    "note_key_id",
    "parse_checkpoint",
    "parse_note",
    "parse_vkey",
    "sign_note",
    "verify_cosignature",
    "verify_note_signature",
    "vkey",
]

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
DASH = "\u2014"
MAX_SIGNATURES = 100


def _key_id(name: str, alg: int, raw: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + raw).digest()[:4]


def note_key_id(name: str, key: PublicKey) -> bytes:
    """The 4-byte key ID of an Ed25519 note signer called ``name``."""
    return _key_id(name, ALG_ED25519, key.raw)


def cosignature_key_id(name: str, key: PublicKey) -> bytes:
    """The 4-byte key ID of a ``cosignature/v1`` witness called ``name``."""
    return _key_id(name, ALG_COSIGNATURE_V1, key.raw)


def _valid_name(name: str) -> bool:
    return bool(name) and not any(c.isspace() or c == "+" for c in name)


def vkey(name: str, key: PublicKey, alg: int = ALG_ED25519) -> str:
    """The signed-note verifier key ``<name>+<hex key ID>+<base64(alg || key)>``."""
    if not _valid_name(name):
        raise ValueError(f"invalid note key name {name!r}")
    return f"{name}+{_key_id(name, alg, key.raw).hex()}+{base64.b64encode(bytes([alg]) + key.raw).decode()}"


def parse_vkey(text: str) -> tuple[str, PublicKey, int]:
    """(name, key, algorithm) of a verifier key; ValueError with the reason if malformed."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or not _valid_name(parts[0]) or len(parts[1]) != 8:
        raise ValueError("not a signed-note verifier key (<name>+<hex key ID>+<base64 key>)")
    name, hexid, b64 = parts
    try:
        raw = base64.b64decode(b64, validate=True)
        claimed = bytes.fromhex(hexid)
    except (binascii.Error, ValueError):
        raise ValueError("not a signed-note verifier key: bad hex or base64") from None
    if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
        raise ValueError("not an Ed25519 (0x01) or cosignature/v1 (0x04) verifier key")
    key = PublicKey.from_raw(raw[1:])
    if _key_id(name, raw[0], key.raw) != claimed:
        raise ValueError("the verifier key's key ID does not match its name and key")
    return name, key, raw[0]


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: name, 4-byte key ID, and the signature bytes after the key ID."""

    name: str
    key_id: bytes
    sig: bytes

    def line(self) -> str:
        """The signature line, with its newline."""
        return f"{DASH} {self.name} {base64.b64encode(self.key_id + self.sig).decode()}\n"


def parse_note(data: str | bytes) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text (with the final newline) and its signature lines.

    ValueError if it is not a well-formed note. Signature lines that are well formed but unknown are kept:
    callers ignore those they have no key for, as the spec requires.
    """
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    if "\r" in text or not text.endswith("\n"):
        raise ValueError("a signed note must end with a newline and contain no carriage return")
    cut = text.rfind("\n\n")
    if cut < 0:
        raise ValueError("a signed note needs a blank line before its signatures")
    body, sigs = text[: cut + 1], text[cut + 2 :]
    out: list[NoteSignature] = []
    for line in sigs.split("\n")[:-1]:
        if not line.startswith(DASH + " "):
            raise ValueError(f"not a signature line: {line[:40]!r}")
        parts = line[2:].split(" ")
        if len(parts) != 2 or not _valid_name(parts[0]):
            raise ValueError(f"malformed signature line: {line[:40]!r}")
        try:
            raw = base64.b64decode(parts[1], validate=True)
        except binascii.Error:
            raise ValueError("a signature line is not base64") from None
        if len(raw) < 5:
            raise ValueError("a signature line is too short")
        out.append(NoteSignature(parts[0], raw[:4], raw[4:]))
        if len(out) > MAX_SIGNATURES:
            raise ValueError("too many signatures")
    if not out:
        raise ValueError("a signed note has no signature")
    return body, out


def sign_note(text: str, name: str, key: SigningKey) -> NoteSignature:
    """An Ed25519 note signature of ``text`` by ``key`` under ``name``."""
    sig = base64.b64decode(key.sign(text.encode()))
    return NoteSignature(name, note_key_id(name, key.public), sig)


def verify_note_signature(text: str, signature: NoteSignature, name: str, key: PublicKey) -> bool:
    """True if ``signature`` is a valid Ed25519 note signature of ``text`` by (``name``, ``key``); False for a
    key that is not Ed25519 (it can sign no note)."""
    return (
        key.algorithm == "ed25519"
        and signature.name == name
        and signature.key_id == note_key_id(name, key)
        and len(signature.sig) == 64
        and key.verify(signature.sig, text.encode())
    )


def cosign(text: str, name: str, key: SigningKey, timestamp: int) -> NoteSignature:
    """A ``cosignature/v1`` of checkpoint ``text`` at ``timestamp`` (POSIX seconds)."""
    message = f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()
    sig = base64.b64decode(key.sign(message))
    return NoteSignature(name, cosignature_key_id(name, key.public), struct.pack(">Q", timestamp) + sig)


def verify_cosignature(text: str, signature: NoteSignature, name: str, key: PublicKey) -> int | None:
    """The timestamp of a valid ``cosignature/v1`` of ``text`` by (``name``, ``key``), else None."""
    if (
        key.algorithm != "ed25519"
        or signature.name != name
        or signature.key_id != cosignature_key_id(name, key)
        or len(signature.sig) != 72
    ):
        return None
    (timestamp,) = struct.unpack(">Q", signature.sig[:8])
    if timestamp >= 1 << 63:
        return None
    message = f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()
    return timestamp if key.verify(signature.sig[8:], message) else None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A parsed checkpoint: origin, tree size, root hash, the text that was signed and its signatures."""

    origin: str
    size: int
    root: bytes
    text: str
    signatures: tuple[NoteSignature, ...] = field(default_factory=tuple)

    def note(self) -> str:
        """The signed note: text, blank line, signature lines."""
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    def with_signatures(self, extra: list[NoteSignature]) -> Checkpoint:
        """A copy with ``extra`` signature lines added (duplicates dropped)."""
        have = {s.line() for s in self.signatures}
        added = [s for s in extra if s.line() not in have]
        return Checkpoint(self.origin, self.size, self.root, self.text, (*self.signatures, *added))

    def signed_by(self, key: PublicKey) -> bool:
        """True if the log's own key (named after the origin) signed this checkpoint."""
        return any(verify_note_signature(self.text, s, self.origin, key) for s in self.signatures)

    def cosigned_by(self, name: str | None, key: PublicKey) -> int | None:
        """The timestamp of a valid cosignature by ``key`` (under ``name``, or any name), else None."""
        for s in self.signatures:
            if name is not None and s.name != name:
                continue
            found = verify_cosignature(self.text, s, s.name, key)
            if found is not None:
                return found
        return None


def format_checkpoint(origin: str, size: int, root: bytes) -> str:
    """The checkpoint text (three lines, each ending in a newline)."""
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def parse_checkpoint(data: str | bytes) -> Checkpoint:
    """Parse a signed checkpoint note; ValueError with a one-line reason if malformed."""
    body, sigs = parse_note(data)
    lines = body.split("\n")[:-1]
    if len(lines) < 3 or any(not line for line in lines):
        raise ValueError("a checkpoint needs origin, tree size and root hash lines")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")) or not size_text.isascii():
        raise ValueError(f"checkpoint tree size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise ValueError("checkpoint root hash is not base64") from None
    if len(root) != 32:
        raise ValueError("checkpoint root hash is not 32 bytes")
    return Checkpoint(origin, int(size_text), root, body, tuple(sigs))
