"""Redaction before anything is hashed or stored: sensitive keys anywhere in nested data, and values that
look like secrets whatever their key (card numbers passing Luhn, US SSNs, bearer tokens, JWTs, private keys).

Key names are compared after lower-casing and removing ``_`` and ``-``, so ``API_KEY``, ``api-key`` and
``apiKey`` are one name. A policy's ``sensitive_fields`` add names (``Redactor.with_keys``).

``Redactor.__call__`` returns plain JSON-like data for any caller. ``Redactor.for_audit`` does the same walk
and also normalises the values on which orjson and RFC 8785 disagree (see ``audit.canonical``), so the audit
trail hashes exactly once per entry with orjson and still matches the standard.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from claw_governance.audit.canonical import MAX_SAFE_INT, NonCanonicalKey, jcs_number

REDACTED = "[REDACTED]"
MAX_DEPTH = 32
TRUNCATED = "[TRUNCATED:depth]"

# Compared after lower-casing and removing "_" and "-": "API_KEY", "api-key" and "apiKey" are one name.
BUILTIN_SENSITIVE_KEYS = frozenset({
    "password", "passwd", "pwd", "passphrase", "secret", "clientsecret", "token", "accesstoken",
    "refreshtoken", "idtoken", "apikey", "apisecret", "privatekey", "ssn", "socialsecuritynumber",
    "creditcard", "creditcardnumber", "cardnumber", "ccnumber", "cvv", "cvc", "cvv2", "pin",
    "authorization", "auth", "cookie", "setcookie", "sessionid", "session", "bearer", "credentials",
    "secretkey", "accesskey", "awssecretaccesskey", "xapikey", "proxyauthorization",
})


# A key that *ends* in one of these is sensitive too: `db_password`, `OPENAI_API_KEY`, `github_token`.
SENSITIVE_SUFFIXES = ("password", "passwd", "passphrase", "secret", "token", "apikey", "privatekey", "secretkey",
                      "accesskey", "credentials", "cookie", "sessionid")


def key_form(name: str) -> str:
    """The form in which key names are compared: lower case, without ``_`` and ``-``."""
    return name.lower().replace("_", "").replace("-", "")


_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_SSN = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{8,}=*")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?"
                          r"(?:-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|$)", re.DOTALL)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
# A string needs the digit detectors only if it holds three digits in a row (both SSN and card do).
_THREE_DIGITS = re.compile(r"\d\d\d").search
_NON_DIGIT = re.compile(r"\D")


def luhn_valid(digits: str) -> bool:
    """True if the digit string passes the Luhn check (as every real card number does)."""
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
    digits = _NON_DIGIT.sub("", match.group(0))
    return "[REDACTED:card]" if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group(0)


def redact_text(text: str) -> str:
    """Replace secret-looking substrings of one string (cheap when there is nothing to find)."""
    if len(text) < 9:
        return text
    if "PRIVATE KEY" in text:
        text = _PRIVATE_KEY.sub("[REDACTED:private-key]", text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub("Bearer [REDACTED]", text)
    if "eyJ" in text:
        text = _JWT.sub("[REDACTED:jwt]", text)
    if _THREE_DIGITS(text) is not None:
        if "-" in text:
            text = _SSN.sub("[REDACTED:ssn]", text)
        if _CARD.search(text) is not None:
            text = _CARD.sub(_card, text)
    return text


def _fix_surrogates(text: str) -> str:
    # Lone surrogates cannot be encoded as UTF-8 (and so not hashed); keep the rest of the string.
    return text.encode("utf-8", "replace").decode("utf-8") if not text.isascii() else text


def _audit_float(value: float) -> Any:
    if not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if value.is_integer():
        # RFC 8785 prints integral numbers without ".0"; as an int orjson does too (same JSON number).
        # Beyond 2**53 a JSON number is not exact for every reader (I-JSON): keep the digits as text.
        return int(value) if abs(value) <= MAX_SAFE_INT else jcs_number(value)
    if abs(value) < 1e-5:
        return orjson.Fragment(jcs_number(value))  # orjson uses exponent form a decade early here
    return value


def _named_fields(value: Any) -> Mapping[str, Any] | str | None:
    """The fields of a record-like object by name (namedtuple, dataclass instance, pydantic model), or None.

    Walked as a list or printed with ``repr()`` such a value would carry ``password="..."`` past the key
    rules. A model whose ``model_dump()`` fails becomes a placeholder rather than its ``repr()``.
    """
    if isinstance(value, tuple):
        as_dict = getattr(value, "_asdict", None)
        return as_dict() if callable(as_dict) else None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
    dump = getattr(type(value), "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        try:
            dumped = value.model_dump()
        except Exception:
            return f"[unredactable:{type(value).__name__}]"
        return dumped if isinstance(dumped, Mapping) else f"[unredactable:{type(value).__name__}]"
    return None


class Redactor:
    """Redacts nested data: keys in the built-in list or in ``extra_keys``, and secret-looking values."""

    __slots__ = ("_ascii_cache", "_cache", "_clones", "_text_cache", "keys")

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        self.keys: frozenset[str] = BUILTIN_SENSITIVE_KEYS | {key_form(k) for k in extra_keys}
        # key -> is it sensitive; the same few argument names recur on every call.
        self._cache: dict[Any, bool] = {}
        self._ascii_cache: dict[str, bool] = {}
        self._text_cache: dict[str, str] = {}
        self._clones: dict[frozenset[str], Redactor] = {}

    def with_keys(self, extra_keys: Iterable[str]) -> Redactor:
        """A redactor that also hides ``extra_keys`` (e.g. a policy's ``sensitive_fields``); cached."""
        frozen = extra_keys if isinstance(extra_keys, frozenset) else frozenset(extra_keys)
        if not frozen:
            return self
        clone = self._clones.get(frozen)
        if clone is None:
            clone = Redactor()
            clone.keys = self.keys | {key_form(k) for k in frozen if isinstance(k, str)}
            if len(self._clones) > 256:
                self._clones.clear()
            self._clones[frozen] = clone
        return clone

    def is_sensitive(self, key: Any) -> bool:
        """True if a mapping key names a secret (non-string keys never do)."""
        cache = self._cache
        hit = cache.get(key)
        if hit is None:
            form = key_form(key) if isinstance(key, str) else None
            hit = form is not None and (form in self.keys or form.endswith(SENSITIVE_SUFFIXES))
            if len(cache) > 4096:
                cache.clear()
            cache[key] = hit
        return hit

    def __call__(self, value: Any, depth: int = 0) -> Any:
        """Redacted copy of ``value`` (dicts, lists, strings, numbers ...); never raises."""
        return self._walk(value, depth, False, False)

    def for_audit(self, value: Any, *, strict: bool = False) -> Any:
        """Redact and normalise for the audit chain (string keys, RFC 8785-safe numbers).

        Raises ``NonCanonicalKey`` for a key outside the BMP unless ``strict`` (the slow, exact path, which
        also replaces lone surrogates).
        """
        if strict:
            return self._walk(value, 0, True, True)
        return self._fast(value, 0)

    def _fast(self, value: Any, depth: int) -> Any:
        # The hot path of every audit append: exact-type dispatch (no ABC isinstance checks) for the plain
        # JSON types that tool arguments almost always are; anything else goes to the general walk.
        kind = type(value)
        if kind is str:
            if len(value) < 9:
                return value
            # Governor-made strings (reasons, rule sources, agent and action names) recur on every call.
            texts = self._text_cache
            hit = texts.get(value)
            if hit is None:
                hit = redact_text(value)
                if len(value) <= 256:
                    if len(texts) > 4096:
                        texts.clear()
                    texts[value] = hit
            return hit
        if kind is dict:
            if depth >= MAX_DEPTH:
                return TRUNCATED
            # Only plain ASCII string keys are ever cached here, so a hit needs no further checks.
            cache = self._ascii_cache
            texts = self._text_cache
            out = {}
            for key, item in value.items():
                flag = cache.get(key) if type(key) is str else None
                if flag is None:
                    if type(key) is not str or not key.isascii():
                        return self._walk(value, depth, True, False)
                    flag = self.is_sensitive(key)
                    if len(cache) > 4096:
                        cache.clear()
                    cache[key] = flag
                if flag:
                    out[key] = REDACTED
                    continue
                # Leaves inline (a call per value is most of the cost of a small dict).
                item_kind = type(item)
                if item_kind is str:
                    hit = item if len(item) < 9 else texts.get(item)
                    out[key] = hit if hit is not None else self._fast(item, depth + 1)
                elif item is None or item_kind is bool:
                    out[key] = item
                else:
                    out[key] = self._fast(item, depth + 1)
            return out
        if value is None or kind is bool:
            return value
        if kind is int:
            return value if -10**12 < value < 10**12 else self._walk(value, depth, True, False)
        if kind is float:
            return value if 1e-5 <= abs(value) < 9e15 and not value.is_integer() else _audit_float(value)
        if kind is list or kind is tuple:
            if depth >= MAX_DEPTH:
                return TRUNCATED
            return [self._fast(item, depth + 1) for item in value]
        return self._walk(value, depth, True, False)

    def _walk(self, value: Any, depth: int, audit: bool, strict: bool) -> Any:
        if isinstance(value, str):
            text = redact_text(value)
            return _fix_surrogates(text) if strict else text
        if isinstance(value, Mapping):
            if depth >= MAX_DEPTH:
                return TRUNCATED
            out: dict[Any, Any] = {}
            is_sensitive = self.is_sensitive
            for key, item in value.items():
                if audit and not isinstance(key, str):
                    key = "null" if key is None else (jcs_number(key) if isinstance(key, float) and
                                                      math.isfinite(key) else str(key))
                if audit and not key.isascii():
                    if strict:
                        key = _fix_surrogates(key)
                    elif any(ord(c) > 0xFFFF for c in key):
                        raise NonCanonicalKey(key)
                out[key] = REDACTED if is_sensitive(key) else self._walk(item, depth + 1, audit, strict)
            return out
        if isinstance(value, list | tuple | set | frozenset):
            if isinstance(value, tuple) and hasattr(value, "_asdict"):  # a namedtuple: keep its field names
                return self._walk(_named_fields(value), depth, audit, strict)
            if depth >= MAX_DEPTH:
                return TRUNCATED
            return [self._walk(v, depth + 1, audit, strict) for v in value]
        if value is None or value is True or value is False:
            return value
        if isinstance(value, int):
            if 10**12 <= abs(value) < 10**20:
                text = str(value)
                if redact_text(text) != text:
                    return "[REDACTED:card]"
            if audit and abs(value) > MAX_SAFE_INT:
                return str(value)  # beyond 2**53 JSON numbers lose digits; keep the exact value as text
            return int(value)  # int subclasses (IntEnum) serialise as plain numbers
        if isinstance(value, float):
            return _audit_float(value) if audit else value
        if isinstance(value, bytes | bytearray | memoryview):
            return f"[bytes:{len(value)}]"
        fields = _named_fields(value)
        if fields is not None:  # records keep their field names, so the key rules apply to them too
            return self._walk(fields, depth, audit, strict)
        text = redact_text(repr(value))
        return _fix_surrogates(text) if strict else text


DEFAULT_REDACTOR = Redactor()
