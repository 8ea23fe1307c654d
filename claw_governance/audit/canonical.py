"""Canonical JSON (RFC 8785, "JCS") for the audit chain: fast with orjson, exact with a fallback.

Every entry's ``hash`` is SHA-256 over the RFC 8785 form of the entry's other fields. ``orjson.dumps`` with
``OPT_SORT_KEYS`` produces exactly that form for the values the trail writes, because the audit redactor
(``Redactor.for_audit``) normalises the few values on which the two differ before anything is hashed:

* integral floats (``1.0``, ``-0.0``): RFC 8785 prints ``1`` / ``0``, orjson ``1.0`` / ``-0.0``; they are
  stored as ints (the same JSON number, so nothing is lost);
* non-integral floats with ``1e-6 <= |x| < 1e-5``: orjson switches to exponent notation one decade early;
  below ``1e-5`` floats are emitted as an ``orjson.Fragment`` holding the RFC 8785 text;
* ints and integral floats outside the IEEE-754 safe range (``|n| > 2**53 - 1``): not exact for every JSON
  reader (I-JSON), so they are stored as decimal strings (an audit trail must not round an amount);
* NaN and infinities (not JSON): stored as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``;
* lone surrogates in strings (not UTF-8): replaced by U+FFFD;
* object keys with characters outside the Basic Multilingual Plane: RFC 8785 sorts keys by UTF-16 code
  units, orjson by code points; such entries are serialised by :func:`jcs_dumps` instead of orjson.

:func:`jcs_dumps` is a complete, slow RFC 8785 serialiser; the verifier falls back to it when the fast form
does not reproduce a stored hash, so both paths always agree with the standard (proved by a hypothesis test
against the ``rfc8785`` package).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import orjson

SORTED = orjson.OPT_SORT_KEYS
MAX_SAFE_INT = 2**53 - 1


class NonCanonicalKey(Exception):
    """Raised by the audit redactor for a key that orjson would sort differently from RFC 8785."""


def jcs_number(value: float | int) -> str:
    """The ECMAScript ``Number.prototype.toString`` form of a finite number, as RFC 8785 requires."""
    if isinstance(value, bool):
        raise TypeError("bool is not a number")
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INT:
            raise ValueError(f"{value} is outside the I-JSON safe integer range")
        return str(value)
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not representable in JSON")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr() gives the shortest digits that round-trip, which is also what ECMAScript chooses.
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    whole, _, frac = mantissa.partition(".")
    scale = (int(exp_text) if exp_text else 0) - len(frac)
    digits = str(int(whole + frac))  # value == int(digits) * 10**scale
    stripped = digits.rstrip("0")
    scale += len(digits) - len(stripped)
    digits = stripped
    point = len(digits) + scale  # n in ECMA-262 Number::toString: value == 0.digits * 10**n
    k = len(digits)
    if k <= point <= 21:
        text = digits + "0" * (point - k)
    elif 0 < point <= 21:
        text = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        text = "0." + "0" * (-point) + digits
    else:
        exp = point - 1
        exp_str = f"e+{exp}" if exp >= 0 else f"e-{-exp}"
        text = digits[0] + ("." + digits[1:] if k > 1 else "") + exp_str
    return sign + text


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def jcs_dumps(value: Any) -> bytes:
    """Serialise ``value`` exactly as RFC 8785 prescribes (pure Python; used off the hot path)."""
    parts: list[str] = []
    _jcs(value, parts)
    return "".join(parts).encode("utf-8")


def _jcs(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int | float):
        out.append(jcs_number(value))
    elif isinstance(value, orjson.Fragment):
        out.append(orjson.dumps(value).decode("utf-8"))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, key in enumerate(sorted(value, key=lambda k: _utf16_key(str(k)))):
            if i:
                out.append(",")
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _jcs(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _jcs(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON")


def canonical_copy(value: Any) -> Any:
    """A copy of JSON-like data the governance made itself (ids, hashes, seqs, times, paths) in the form the
    trail hashes, like ``Redactor.for_audit(strict=True)`` but without the secret detectors: a digit run inside
    a SHA-256 hex digest or an id can pass for a card number, and rewriting it would break what the record
    hands on (a retention record's resume hash and Merkle compact range). Raises TypeError for non-JSON."""
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        if value.isascii():
            return str(value)
        return value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates: U+FFFD, as for_audit does
    if isinstance(value, int):
        return int(value) if abs(value) <= MAX_SAFE_INT else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
        if value.is_integer():
            return int(value) if abs(value) <= MAX_SAFE_INT else jcs_number(value)
        return value
    if isinstance(value, Mapping):
        return {canonical_copy(str(k)): canonical_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical_copy(v) for v in value]
    raise TypeError(f"{type(value).__name__} is not JSON")


def has_non_bmp_key(value: Any) -> bool:
    """True if any object key (at any depth) holds a character outside the Basic Multilingual Plane."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and not key.isascii() and any(ord(c) > 0xFFFF for c in key):
                return True
            if has_non_bmp_key(item):
                return True
    elif isinstance(value, list | tuple):
        return any(has_non_bmp_key(item) for item in value)
    return False
