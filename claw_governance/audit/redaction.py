"""Redaction before anything is hashed or stored: sensitive keys anywhere in nested data, values that look
like secrets whatever their key, and every redacted value wherever else it shows up in the same value.

- Key names: ``keynames.is_sensitive_name`` (normalised words: ``passwords``, ``db_password``, ``PASS``,
  ``OPENAI_API_KEY``, ``private_key_pem``, look-alike letters ...), plus a policy's ``sensitive_fields``
  (``Redactor.with_keys``).
- Values: ``detectors.find_secrets`` (detect-secrets' formats on RE2, cards passing Luhn, SSNs, bearer and
  Basic credentials, a value after ``password=`` / ``secret is`` ...).
- Echoes: a value hidden by either rule is also replaced wherever it appears elsewhere in the same value,
  verbatim and base64-, URL-, hex- or JSON-encoded (``scrub``). The governor uses ``secrets_in`` and
  ``scrub`` to carry a call's argument secrets over to its output, error text and escalation context.
- Bounds: one string is kept up to ``max_text`` characters (the rest is replaced by a marker with the full
  value's size and SHA-256) before it is scanned, a container up to ``max_items`` items, nesting up to
  ``MAX_DEPTH``: scanning is linear in what is kept, and what is kept is bounded.

``Redactor.__call__`` returns plain JSON-like data for any caller. ``Redactor.for_audit`` does the same walk
and also normalises the values on which orjson and RFC 8785 disagree (see ``audit.canonical``), so the audit
trail hashes exactly once per entry with orjson and still matches the standard. Both are one walk
(``_walk``): exact-type dispatch first for the plain JSON types tool arguments almost always are.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import itertools
import json
import logging
import math
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from claw_governance.audit.canonical import MAX_SAFE_INT, NonCanonicalKey, jcs_number
from claw_governance.audit.detectors import _TOKEN_CHARS, find_secrets, luhn_valid, replace_spans
from claw_governance.audit.keynames import is_sensitive_name, key_form

REDACTED = "[REDACTED]"
MAX_DEPTH = 32
TRUNCATED = "[TRUNCATED:depth]"
MAX_TEXT = 64 * 1024  # characters of one string kept (and scanned); the default of ``max_stored_output``
MAX_ITEMS = 10_000  # items of one list or mapping kept
MIN_ECHO = 6  # a hidden value shorter than this is not searched for elsewhere (too many false hits)
MAX_ECHOES = 64  # distinct hidden values searched for in one value (longest first)
_SHORT = 8  # no detector matches a string shorter than this
_NONE: tuple[str, ...] = ()

# Kept for callers of the old API: the names every key rule covers (see keynames for the rules themselves).
BUILTIN_SENSITIVE_KEYS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "clientsecret",
        "token",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "apikey",
        "apisecret",
        "privatekey",
        "ssn",
        "socialsecuritynumber",
        "creditcard",
        "creditcardnumber",
        "cardnumber",
        "ccnumber",
        "cvv",
        "cvc",
        "cvv2",
        "pin",
        "authorization",
        "auth",
        "cookie",
        "setcookie",
        "sessionid",
        "session",
        "bearer",
        "credentials",
        "secretkey",
        "accesskey",
        "awssecretaccesskey",
        "xapikey",
        "proxyauthorization",
    }
)
SENSITIVE_SUFFIXES = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "secretkey",
    "accesskey",
    "credentials",
    "cookie",
    "sessionid",
)

__all__ = [
    "DEFAULT_REDACTOR",
    "MAX_TEXT",
    "REDACTED",
    "Redactor",
    "bound_text",
    "encodings",
    "key_form",
    "luhn_valid",
    "redact_text",
]


def _fix_surrogates(text: str) -> str:
    # Lone surrogates cannot be encoded as UTF-8 (and so not hashed or scanned); keep the rest of the string.
    return text.encode("utf-8", "replace").decode("utf-8") if not text.isascii() else text


def bound_text(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, with a marker giving the full size (UTF-8 bytes) and SHA-256.

    A token cut in two at the limit is dropped whole (up to 1 KiB of it), so half a key is never kept.
    """
    if len(text) <= limit:
        return text
    data = text.encode("utf-8", "surrogatepass")
    kept = text[:limit]
    end = len(kept)
    floor = max(0, end - 1024)
    while end > floor and kept[end - 1] in _TOKEN_CHARS:
        end -= 1
    return f"{kept[:end]}[TRUNCATED:{len(data)} bytes, sha256:{hashlib.sha256(data).hexdigest()}]"


def redact_text(text: str) -> str:
    """Replace secret-looking substrings of one string (cheap when there is nothing to find)."""
    if len(text) < _SHORT:
        return text
    text = _fix_surrogates(bound_text(text))
    spans = find_secrets(text)
    return replace_spans(text, spans) if spans else text


def encodings(secret: str) -> list[str]:
    """``secret`` and the forms in which a tool may echo it: base64 (standard and URL-safe, with and without
    padding), URL-encoded, hex, JSON-escaped. Longest first, so a longer form is replaced before a shorter."""
    data = secret.encode("utf-8", "surrogatepass")
    forms = {
        secret,
        base64.b64encode(data).decode(),
        base64.urlsafe_b64encode(data).decode(),
        data.hex(),
        data.hex().upper(),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }
    forms |= {f.rstrip("=") for f in list(forms)}
    return sorted((f for f in forms if len(f) >= MIN_ECHO // 2 + 2), key=len, reverse=True)


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


def _leaves(value: Any, out: list[str], depth: int = 0) -> None:
    """The strings (and long numbers, as text) inside a value hidden by its key: searched for elsewhere."""
    if isinstance(value, str):
        if len(value) >= MIN_ECHO:
            out.append(value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        text = str(value)
        if len(text) >= MIN_ECHO:
            out.append(text)
    elif depth < MAX_DEPTH and isinstance(value, Mapping):
        for item in list(value.values())[:MAX_ITEMS]:
            _leaves(item, out, depth + 1)
    elif depth < MAX_DEPTH and isinstance(value, list | tuple | set | frozenset):
        for item in list(value)[:MAX_ITEMS]:
            _leaves(item, out, depth + 1)
    elif isinstance(value, bytes | bytearray):
        try:
            _leaves(bytes(value).decode("utf-8"), out, depth + 1)
        except UnicodeDecodeError:
            return


class Redactor:
    """Redacts nested data: keys named like secrets (or in ``extra_keys``), secret-looking values, and the
    echoes of both; bounded (``max_text`` characters per string, ``max_items`` per container)."""

    __slots__ = (
        "_ascii_keys",
        "_cache",
        "_clones",
        "_last",
        "_text_cache",
        "extra",
        "keys",
        "max_items",
        "max_scan",
        "max_text",
    )

    def __init__(self, extra_keys: Iterable[str] = (), *, max_text: int = MAX_TEXT, max_items: int = MAX_ITEMS) -> None:
        self.extra: frozenset[str] = frozenset(key_form(k) for k in extra_keys if isinstance(k, str))
        self.keys: frozenset[str] = BUILTIN_SENSITIVE_KEYS | self.extra  # (kept for callers that read it)
        self.max_text = max(256, int(max_text))
        self.max_items = max(1, int(max_items))
        self.max_scan = self.max_text * 4  # characters one walk scans at most (256 KiB by default)
        # key -> is it sensitive; the same few argument names recur on every call.
        self._cache: dict[Any, bool] = {}
        # text -> (redacted text, secrets found in it); strings the governor makes recur on every call.
        self._text_cache: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._clones: dict[frozenset[str], Redactor] = {}
        self._last: tuple[Any, tuple[str, ...]] = (None, ())
        self._ascii_keys: dict[str, bool] = {}

    def with_keys(self, extra_keys: Iterable[str]) -> Redactor:
        """A redactor that also hides ``extra_keys`` (e.g. a policy's ``sensitive_fields``); cached."""
        frozen = extra_keys if isinstance(extra_keys, frozenset) else frozenset(extra_keys)
        if not frozen:
            return self
        clone = self._clones.get(frozen)
        if clone is None:
            clone = Redactor(self.extra | frozen, max_text=self.max_text, max_items=self.max_items)
            if len(self._clones) > 256:
                self._clones.clear()
            self._clones[frozen] = clone
        return clone

    def with_limits(self, *, max_text: int | None = None, max_items: int | None = None) -> Redactor:
        """A redactor with other bounds (the governor's ``max_stored_output``)."""
        return Redactor(self.extra, max_text=max_text or self.max_text, max_items=max_items or self.max_items)

    def is_sensitive(self, key: Any) -> bool:
        """True if a mapping key names a secret (non-string keys never do)."""
        cache = self._cache
        hit = cache.get(key)
        if hit is None:
            if isinstance(key, str):
                hit = is_sensitive_name(key) or (bool(self.extra) and key_form(key) in self.extra)
            else:
                hit = False
            if len(cache) > 4096:
                cache.clear()
            cache[key] = hit
        return hit

    # ------------------------------------------------------------------------------------------- entry points

    def __call__(self, value: Any, depth: int = 0, *, echoes: bool = True) -> Any:
        """Redacted copy of ``value`` (dicts, lists, strings, numbers ...), echoes scrubbed; never raises.

        ``echoes=False`` skips the scrub pass (the CLI, printing values that were scrubbed when stored).
        """
        found: list[Any] = [self.max_scan]
        out = self._walk(value, depth, False, False, found)
        return self._scrub_found(out, found) if echoes and len(found) > 1 else out

    def for_audit(self, value: Any, *, strict: bool = False) -> Any:
        """Redact and normalise for the audit chain (string keys, RFC 8785-safe numbers).

        Raises ``NonCanonicalKey`` for a key outside the BMP unless ``strict`` (the exact path, which also
        replaces lone surrogates).
        """
        found: list[Any] = [self.max_scan]
        out = self._walk(value, 0, True, strict, found)
        # The governor asks, after the tool ran, what this call's arguments hid (secrets_in): the trail has
        # just walked them as the policy_decision context, so the answer is kept for that same object.
        if len(found) > 1:
            self._last = (value, tuple(found[1:]))
            return self._scrub_found(out, found)
        self._last = (value, _NONE)
        return out

    def secrets_in(self, value: Any) -> Sequence[str]:
        """The values ``value`` would have hidden (under sensitive keys, or matched by a detector)."""
        last = self._last
        if last[0] is value:  # the very object the last walk saw (held by it, so the id is not reused)
            return last[1]
        found: list[Any] = [self.max_scan]
        with contextlib.suppress(Exception):  # never in a call's way: the trail reports what it cannot read
            self._walk(value, 0, False, False, found)
        return found[1:]

    def scrub(self, value: Any, secrets: Iterable[str]) -> Any:
        """``value`` with every string in ``secrets`` (and its encodings) replaced by ``[REDACTED]``."""
        forms = self._forms(secrets)
        return self._replace(value, forms, 0) if forms else value

    # ---------------------------------------------------------------------------------------------- the walk
    # ``found`` is one list per walk: its first item is what is left of the walk's scan budget (``max_scan``
    # characters: the work of one walk is bounded whatever the number of strings), the rest are the secrets
    # the walk hid, searched for again by the scrub pass.

    def _scrub_found(self, out: Any, found: list[Any]) -> Any:
        if len(found) < 2:
            return out
        forms = self._forms(found[1:])
        return self._replace(out, forms, 0) if forms else out

    @staticmethod
    def _forms(secrets: Iterable[str]) -> list[str]:
        distinct = sorted({s for s in secrets if isinstance(s, str) and len(s) >= MIN_ECHO}, key=len, reverse=True)[
            :MAX_ECHOES
        ]
        forms: set[str] = set()
        for secret in distinct:
            forms.update(encodings(secret))
        return sorted(forms, key=len, reverse=True)

    def _replace(self, value: Any, forms: list[str], depth: int) -> Any:
        if isinstance(value, str):
            for form in forms:
                if form in value:
                    value = value.replace(form, REDACTED)
            return value
        if depth >= MAX_DEPTH:
            return value
        if isinstance(value, dict):
            # Keys are left as they are: they are names, and scrubbing them would merge or mangle entries.
            return {k: self._replace(v, forms, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [self._replace(v, forms, depth + 1) for v in value]
        if isinstance(value, tuple):
            return tuple(self._replace(v, forms, depth + 1) for v in value)
        if isinstance(value, int) and not isinstance(value, bool) and str(value) in forms:
            return REDACTED
        return value

    def _text(self, value: str, strict: bool, found: list[Any]) -> str:
        if len(value) < _SHORT:
            return _fix_surrogates(value) if strict else value
        texts = self._text_cache
        hit = texts.get(value)
        if hit is not None:
            if hit[1]:
                found.extend(hit[1])
            return hit[0]
        if found[0] <= 0:  # this walk has scanned its budget: the rest is recorded by size only
            return f"[TRUNCATED:{len(value)} chars, scan budget of {self.max_scan} used]"
        text = bound_text(value, self.max_text)
        found[0] -= len(text)
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # RE2 scans UTF-8: a lone surrogate cannot be stored anyway
                text = _fix_surrogates(text)
        spans = find_secrets(text)
        if spans:
            secrets = tuple(text[a:b] for a, b, _ in spans)
            found.extend(secrets)
            text = replace_spans(text, spans)
        else:
            secrets = ()
        if len(value) <= 256:
            if len(texts) > 4096:
                texts.clear()
            texts[value] = (text, secrets)
        return text

    def _walk(self, value: Any, depth: int, audit: bool, strict: bool, found: list[Any]) -> Any:
        # Exact types first (no ABC isinstance checks): what tool arguments and outputs almost always are.
        kind = type(value)
        if kind is str:
            return self._text(value, strict, found)
        if value is None or kind is bool:
            return value
        if kind is int:
            if -(10**12) < value < 10**12:
                return value
            return self._number(value, audit, found)
        if kind is float:
            if not audit or (1e-5 <= abs(value) < 9e15 and not value.is_integer()):
                return value
            return _audit_float(value)
        if kind is dict or isinstance(value, Mapping):
            if depth >= MAX_DEPTH:
                return TRUNCATED
            out: dict[Any, Any] = {}
            ascii_keys = self._ascii_keys  # plain ASCII str key -> sensitive? (a hit needs no other check)
            texts = self._text_cache
            items: Iterable[tuple[Any, Any]] = value.items()
            if len(value) > self.max_items:
                out["[TRUNCATED:items]"] = len(value) - self.max_items
                items = itertools.islice(items, self.max_items)
            for key, item in items:
                flag = ascii_keys.get(key) if type(key) is str else None
                if flag is None:
                    if type(key) is not str:
                        if audit:
                            key = (
                                "null"
                                if key is None
                                else (jcs_number(key) if isinstance(key, float) and math.isfinite(key) else str(key))
                            )
                        elif not isinstance(key, str):
                            out[key] = self._walk(item, depth + 1, audit, strict, found)
                            continue
                    if not key.isascii():
                        if audit and strict:
                            key = _fix_surrogates(key)
                        elif audit and any(ord(c) > 0xFFFF for c in key):
                            raise NonCanonicalKey(key)
                        flag = self.is_sensitive(key)
                    else:
                        flag = self.is_sensitive(key)
                        if type(key) is str:
                            if len(ascii_keys) > 4096:
                                ascii_keys.clear()
                            ascii_keys[key] = flag
                if flag:
                    _leaves(item, found)
                    out[key] = REDACTED
                    continue
                item_kind = type(item)
                if item_kind is str:  # leaves inline: a call per value is most of the cost of a small dict
                    if len(item) < _SHORT and not strict:
                        out[key] = item
                        continue
                    hit = texts.get(item)
                    if hit is None or strict:
                        out[key] = self._text(item, strict, found)
                    else:
                        out[key] = hit[0]
                        if hit[1]:
                            found.extend(hit[1])
                elif item is None or item_kind is bool or (item_kind is int and -(10**12) < item < 10**12):
                    out[key] = item
                else:
                    out[key] = self._walk(item, depth + 1, audit, strict, found)
            return out
        if kind is list or kind is tuple:
            if depth >= MAX_DEPTH:
                return TRUNCATED
            if kind is tuple and hasattr(value, "_asdict"):  # a namedtuple: keep its field names
                return self._walk(_named_fields(value), depth, audit, strict, found)
            if len(value) > self.max_items:
                kept = [self._walk(v, depth + 1, audit, strict, found) for v in value[: self.max_items]]
                kept.append(f"[TRUNCATED:{len(value) - self.max_items} more items]")
                return kept
            return [self._walk(v, depth + 1, audit, strict, found) for v in value]
        if isinstance(value, str):  # str subclasses
            return self._text(str(value), strict, found)
        if isinstance(value, tuple) and hasattr(value, "_asdict"):
            return self._walk(_named_fields(value), depth, audit, strict, found)
        if isinstance(value, list | tuple | set | frozenset):
            if depth >= MAX_DEPTH:
                return TRUNCATED
            return [self._walk(v, depth + 1, audit, strict, found) for v in list(value)[: self.max_items]]
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return self._number(int(value), audit, found)  # int subclasses (IntEnum) serialise as plain numbers
        if isinstance(value, float):
            return _audit_float(float(value)) if audit else float(value)
        if isinstance(value, bytes | bytearray | memoryview):
            return f"[bytes:{len(value)}]"
        fields = _named_fields(value)
        if fields is not None:  # records keep their field names, so the key rules apply to them too
            return self._walk(fields, depth, audit, strict, found)
        try:
            text = repr(value)
        except Exception:
            text = f"[unprintable:{type(value).__name__}]"
        return self._text(text, True, found) if strict else self._text(text, False, found)

    def _number(self, value: int, audit: bool, found: list[Any]) -> Any:
        if 10**12 <= abs(value) < 10**20:
            digits = str(abs(value))
            if 13 <= len(digits) <= 19 and luhn_valid(digits):
                found.append(digits)
                return "[REDACTED:card]"
        if audit and abs(value) > MAX_SAFE_INT:
            return str(value)  # beyond 2**53 JSON numbers lose digits; keep the exact value as text
        return value


DEFAULT_REDACTOR = Redactor()


class RedactingLogFilter(logging.Filter):
    """Redacts the final text of every log record of the project's loggers (exception texts quote values)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the record as it is, logging reports it
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


# The loggers claw_governance writes to (a filter on a logger does not apply to its children, so each one).
PROJECT_LOGGERS = (
    "claw_governance",
    "claw_governance.identity",
    "claw_governance.plugins",
    "claw_governance.policy",
    "claw_governance.escalation",
    "claw_governance.audit",
    "claw_governance.state",
)
_LOG_FILTER = RedactingLogFilter()
for _name in PROJECT_LOGGERS:
    logging.getLogger(_name).addFilter(_LOG_FILTER)
