"""The keys a verifier is told to trust: log keys and witnesses, from the command line or the environment.

A log key may be a PEM file, 64 hex digits or a signed-note verifier key (``<name>+<hex id>+<base64>``).
A witness is its cosignature verifier key (type 0x04), optionally with the URL where it serves:
``<vkey>@<url>`` or ``<url> <vkey>`` (``AUDIT_WITNESSES`` is a comma-separated list of those).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from claw_governance.audit.keys import PublicKey, public_key_from_text
from claw_governance.audit.note import ALG_COSIGNATURE_V1, parse_vkey
from claw_governance.audit.verify import Witness
from claw_governance.errors import AuditError


def load_public_key(text: str) -> PublicKey:
    """A log public key from a file path, hex, PEM or signed-note verifier key; AuditError if none of those."""
    value = text.strip()
    if not value:
        raise AuditError("no public key given (a PEM file, 64 hex digits or a signed-note verifier key)")
    if "\n" not in value and not value.startswith("-----") and Path(value).is_file():  # (a 64-character path too)
        path = Path(value)
        try:
            contents = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise AuditError(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None
        try:
            return _parse_key(contents.strip())  # a file holds a key, never the name of another file
        except AuditError as exc:
            raise AuditError(f"{path}: {exc}") from None
    return _parse_key(value)


def _parse_key(value: str) -> PublicKey:
    if not value:
        raise AuditError("empty: not a public key (PEM, 64 hex digits or a signed-note verifier key)")
    if value.count("+") >= 2 and "\n" not in value and not value.startswith("-----"):
        try:
            return parse_vkey(value)[1]
        except ValueError as exc:
            raise AuditError(f"{value[:40]}: {exc}") from None
    return public_key_from_text(value)


@dataclass(frozen=True, slots=True)
class WitnessSpec:
    """A configured witness: its cosigner identity and, when known, its URL."""

    witness: Witness
    url: str | None = None


def parse_witness(text: str) -> WitnessSpec:
    """``<vkey>``, ``<vkey>@<url>`` or ``<url> <vkey>``; AuditError naming the problem."""
    value = text.strip()
    url: str | None = None
    if " " in value:
        url, _, value = value.partition(" ")
        value = value.strip()
    elif "@" in value:
        value, _, url = value.partition("@")
    try:
        name, key, alg = parse_vkey(value)
    except ValueError as exc:
        raise AuditError(f"witness {text.strip()[:60]!r}: {exc}") from None
    if alg != ALG_COSIGNATURE_V1:
        raise AuditError(f"witness {name}: its verifier key must be a cosignature/v1 (0x04) key")
    if url is not None and not url.startswith(("http://", "https://")):
        raise AuditError(f"witness {name}: {url!r} is not an http(s) URL")
    return WitnessSpec(Witness(name, key), url.rstrip("/") if url else None)


def parse_witness_list(text: str | None) -> list[WitnessSpec]:
    """``AUDIT_WITNESSES``: comma-separated witness specs (empty or None: none)."""
    if not text or not text.strip():
        return []
    return [parse_witness(part) for part in text.split(",") if part.strip()]
