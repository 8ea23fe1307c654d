"""Redaction before anything is hashed or stored: sensitive keys anywhere in nested data, and values that
look like secrets whatever their key (card numbers passing Luhn, US SSNs, bearer tokens, private keys)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"
MAX_DEPTH = 32

# Compared after lower-casing and removing "_" and "-": "API_KEY", "api-key" and "apiKey" are one name.
BUILTIN_SENSITIVE_KEYS = frozenset({
    "password", "passwd", "pwd", "passphrase", "secret", "clientsecret", "token", "accesstoken",
    "refreshtoken", "idtoken", "apikey", "apisecret", "privatekey", "ssn", "socialsecuritynumber",
    "creditcard", "creditcardnumber", "cardnumber", "ccnumber", "cvv", "cvc", "cvv2", "pin",
    "authorization", "auth", "cookie", "setcookie", "sessionid", "session", "bearer", "credentials",
})


def key_form(name: str) -> str:
    """The form in which key names are compared."""
    return name.lower().replace("_", "").replace("-", "")


_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_SSN = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{8,}=*")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)",
                          re.DOTALL)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[REDACTED:card]" if 13 <= len(digits) <= 19 and _luhn(digits) else match.group(0)


def redact_text(text: str) -> str:
    """Replace secret-looking substrings of one string."""
    if len(text) < 9:
        return text
    if "PRIVATE KEY" in text:
        text = _PRIVATE_KEY.sub("[REDACTED:private-key]", text)
    out = _BEARER.sub("Bearer [REDACTED]", text) if "earer" in text or "EARER" in text else text
    out = _JWT.sub("[REDACTED:jwt]", out) if "eyJ" in out else out
    if any(c.isdigit() for c in out):
        out = _SSN.sub("[REDACTED:ssn]", out)
        out = _CARD.sub(_card, out)
    return out


class Redactor:
    """Redacts nested data: keys in the built-in list or in ``extra_keys``, and secret-looking values."""

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        self.keys = BUILTIN_SENSITIVE_KEYS | {key_form(k) for k in extra_keys}

    def with_keys(self, extra_keys: Iterable[str]) -> Redactor:
        """A redactor that also hides ``extra_keys`` (e.g. a policy's ``sensitive_fields``)."""
        extra = [k for k in extra_keys if key_form(k) not in self.keys]
        if not extra:
            return self
        clone = Redactor()
        clone.keys = self.keys | {key_form(k) for k in extra}
        return clone

    def __call__(self, value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return redact_text(value)
        if isinstance(value, Mapping):
            if depth >= MAX_DEPTH:
                return "[TRUNCATED:depth]"
            keys = self.keys
            return {k: (REDACTED if isinstance(k, str) and key_form(k) in keys else self(v, depth + 1))
                    for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            if depth >= MAX_DEPTH:
                return "[TRUNCATED:depth]"
            return [self(v, depth + 1) for v in value]
        if value is None or isinstance(value, bool | int | float):
            if isinstance(value, int) and not isinstance(value, bool) and 10**12 <= abs(value) < 10**19:
                return redact_text(str(value)) if redact_text(str(value)) != str(value) else value
            return value
        if isinstance(value, bytes):
            return f"[bytes:{len(value)}]"
        return redact_text(repr(value))


DEFAULT_REDACTOR = Redactor()
