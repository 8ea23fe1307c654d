"""Rule conditions: CEL expressions over a call's arguments, compiled once when the policy loads.

CEL (the Common Expression Language, as used by Kubernetes and Envoy) is not Turing-complete: no loops, no
recursion, no I/O, and evaluation is bounded by the size of its input. We use the Rust implementation
(``common-expression-language``): ~0.4 us per evaluation here. Before compiling we bound the expression's
length and nesting, because a pathological input can make the parser panic.

An expression that cannot be evaluated for a call (a missing field, a wrong type, a non-boolean result)
yields ``None`` ("unknown"); the engine counts unknown as a match for deny and escalate rules and as no match
for allow rules, so unknown never opens a door.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cel

MAX_EXPRESSION_CHARS = 2000
MAX_EXPRESSION_NESTING = 24


class ConditionSyntaxError(ValueError):
    """The expression cannot be compiled; the message is one line."""


def _string_end(expr: str, i: int) -> int:
    """Index of the quote closing the string literal that opens at ``expr[i]`` (``len - 1`` if none); a
    backslash escapes the next character, so ``"a\\" or b"`` is one literal."""
    quote, j, n = expr[i], i + 1, len(expr)
    while j < n:
        if expr[j] == "\\":
            j += 2
            continue
        if expr[j] == quote:
            return j
        j += 1
    return n - 1


def _nesting(expr: str) -> int:
    depth = deepest = 0
    quote: str | None = None
    escaped = False
    for ch in expr:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return text.strip()


class Condition:
    """A compiled condition. ``evaluate(args)`` returns True, False or None (cannot be evaluated)."""

    __slots__ = ("_program", "source")

    def __init__(self, source: str) -> None:
        source = source.strip()
        if not source:
            raise ConditionSyntaxError("empty condition")
        if len(source) > MAX_EXPRESSION_CHARS:
            raise ConditionSyntaxError(f"condition longer than {MAX_EXPRESSION_CHARS} characters")
        if _nesting(source) > MAX_EXPRESSION_NESTING:
            raise ConditionSyntaxError(f"condition nested deeper than {MAX_EXPRESSION_NESTING} levels")
        # C-style `&&`, `||`, `!` are CEL already; accept Python's `and`/`or` spellings too, since the
        # seed's examples read like either. (Whole words only, outside string literals.)
        compiled = _translate_keywords(source)
        try:
            self._program = cel.compile(compiled)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # pyo3 panics derive from BaseException
            raise ConditionSyntaxError(f"invalid condition {source!r}: {_parse_message(exc)}") from None
        self.source = source

    def evaluate(self, args: Mapping[str, Any]) -> bool | None:
        """True/False, or None when the expression cannot be evaluated for these arguments."""
        try:
            result = self._program.execute(args if isinstance(args, dict) else dict(args))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:
            return None
        return result if isinstance(result, bool) else None

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"


def _parse_message(exc: BaseException) -> str:
    text = str(exc)
    for line in text.splitlines():
        if "Syntax error" in line or "ERROR" in line:
            return line.split("ERROR:", 1)[-1].strip()
    return _first_line(text)[:200]


# `not` is deliberately absent: Python's `not` binds looser than `>`, CEL's `!` tighter.
_KEYWORDS = {"and": "&&", "or": "||"}


def _translate_keywords(expr: str) -> str:
    out: list[str] = []
    i, n = 0, len(expr)
    while i < n:
        ch = expr[i]
        if ch in "\"'":
            j = _string_end(expr, i)
            out.append(expr[i : j + 1])
            i = j + 1
        elif ch.isalpha() or ch == "_":
            j = i
            while j < n and (expr[j].isalnum() or expr[j] == "_"):
                j += 1
            word = expr[i:j]
            prev = expr[i - 1] if i else ""
            out.append(_KEYWORDS.get(word, word) if prev != "." else word)
            i = j
        else:
            out.append(ch)
            i += 1
    return "".join(out)
