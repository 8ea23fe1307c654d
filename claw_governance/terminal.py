"""Text that is safe to print: no control or format character from a value reaches a terminal raw.

An action name, agent id, reason or tool output is attacker-controlled; printed raw, ``ESC [ 2 J``, a CR
that rewrites the line, a C1 ``CSI`` or an RTL override (U+202E) changes what a reviewer sees. Every
``claw-gov`` command prints values through these functions (``claw_governance.cli.echo``, ``echo_json``,
``fail``), after the redactor.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

# Categories escaped: controls (Cc: C0, DEL, C1), format (Cf: bidi overrides, zero-width, BOM, soft hyphen),
# line/paragraph separators, surrogates, private use and unassigned code points.
_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_ASCII_SAFE = frozenset(chr(c) for c in range(0x20, 0x7F))


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\x1b"}.get(ch, f"\\x{code:02x}")
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def safe_text(value: Any, *, keep_newlines: bool = False) -> str:
    """``str(value)`` with every unsafe character shown as an escape (``\\x1b``, ``\\r``, ``\\u202e``)."""
    text = value if isinstance(value, str) else str(value)
    if all(c in _ASCII_SAFE for c in text):
        return text
    return "".join(
        ch
        if ch in _ASCII_SAFE
        or (keep_newlines and ch == "\n")
        or (ch not in _ASCII_SAFE and ord(ch) > 0x7F and unicodedata.category(ch) not in _UNSAFE)
        or ch == " "
        else _escape_char(ch)
        for ch in text
    )


def safe_json(value: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """JSON text (non-ASCII kept readable) in which unsafe characters are ``\\uXXXX`` escapes, still valid
    JSON: ``json`` escapes only C0 controls, so C1 controls and format characters are escaped here."""
    text = json.dumps(value, indent=indent, default=str, ensure_ascii=False, sort_keys=sort_keys)
    if text.isascii() and "\x7f" not in text:
        return text
    return "".join(
        ch
        if ord(ch) < 0x7F or unicodedata.category(ch) not in _UNSAFE
        else (f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else json.dumps(ch)[1:-1])
        for ch in text
    )
