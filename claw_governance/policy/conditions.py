"""Rule conditions: CEL expressions over a call's arguments, compiled once when the policy loads.

CEL (the Common Expression Language, as used by Kubernetes and Envoy) is not Turing-complete: no loops, no
recursion, no I/O, and evaluation is bounded by the size of its input. We use the Rust implementation
(``common-expression-language``): ~0.4 us per evaluation here. Before compiling we bound the expression's
length and nesting, because a pathological input can make the parser panic.

An expression that cannot be evaluated for a call (a missing field, a wrong type, a non-boolean result)
yields ``None`` ("unknown"); the engine counts unknown as a match for deny and escalate rules and as no match
for allow rules, so unknown never opens a door.

Arguments come from the model, so they are bounded before CEL sees them (``ArgumentLimits``): only the
top-level fields an expression names are converted, by an iterative walk (no recursion, so a 10,000-deep
nesting cannot overflow a stack) that stops at the first bound crossed (depth, number of values, total string
characters) and at any value CEL would compare inexactly (an int outside 64 bits, NaN, a Decimal that is not
exactly a float, an unsupported type). Over a bound the condition is unknown and is never evaluated.
Expressions whose cost grows faster than their input (a macro such as ``exists`` inside another macro) are
rejected when the policy loads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import cel

MAX_EXPRESSION_CHARS = 2000
MAX_EXPRESSION_NESTING = 24
MACROS = ("exists_one", "exists", "all", "map", "filter")
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True, slots=True)
class ArgumentLimits:
    """Bounds on what of a call's arguments a condition may see (``GovernorConfig.condition_max_*``)."""

    max_depth: int = 32  # nesting of lists/maps below a top-level field
    max_items: int = 10_000  # values (scalars, list items, map entries) over every field one condition names
    max_string_chars: int = 1_048_576  # total characters of strings and bytes over those fields

    def __post_init__(self) -> None:
        for name in ("max_depth", "max_items", "max_string_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"condition {name} must be a positive whole number, not {value!r}")


DEFAULT_LIMITS = ArgumentLimits()


class OverBound(Exception):
    """The arguments cross a bound (or hold a value CEL cannot compare exactly): the condition is unknown."""


_SCALARS = (str, bytes, bool, int, float, type(None))
_FROM_ARGS: Any = object()  # Condition.evaluate without ``session=``: ``session`` is an argument like any other


def bound_value(value: Any, limits: ArgumentLimits, budget: list[int]) -> Any:
    """A plain copy of ``value`` (dict/list/str/bytes/int/float/bool/None) for CEL, or OverBound.

    ``budget`` is ``[items left, string characters left]``, shared by every field of one evaluation. The walk
    is iterative: depth costs no Python or native stack.
    """
    root: list[Any] = [None]
    # (source value, container to store the copy in, key or index in it, depth)
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]
    max_depth = limits.max_depth
    while stack:
        item, parent, slot, depth = stack.pop()
        budget[0] -= 1
        if budget[0] < 0:
            raise OverBound(f"more than {limits.max_items} values")
        kind = type(item)
        if kind is str or kind is bytes:
            budget[1] -= len(item)
            if budget[1] < 0:
                raise OverBound(f"more than {limits.max_string_chars} characters of text")
            parent[slot] = item
        elif kind is bool or item is None:
            parent[slot] = item
        elif kind is int:
            if not _INT64[0] <= item <= _INT64[1]:
                raise OverBound("an integer outside the 64-bit range")
            parent[slot] = item
        elif kind is float:
            if math.isnan(item):
                raise OverBound("NaN")
            parent[slot] = item
        elif kind is dict or (kind is not list and isinstance(item, Mapping)):
            if depth >= max_depth:
                raise OverBound(f"nesting deeper than {max_depth} levels")
            copy: dict[Any, Any] = {}
            parent[slot] = copy
            for key, sub in item.items():
                if type(key) not in (str, int, bool):
                    raise OverBound(f"a map key of type {type(key).__name__}")
                copy[key] = None
                stack.append((sub, copy, key, depth + 1))
        elif kind is list or isinstance(item, list | tuple):
            if depth >= max_depth:
                raise OverBound(f"nesting deeper than {max_depth} levels")
            if len(item) > budget[0]:
                raise OverBound(f"more than {limits.max_items} values")
            flat = _plain_list(item, budget)
            if flat is not None:
                budget[0] -= len(item)
                parent[slot] = flat
                continue
            seq: list[Any] = [None] * len(item)
            parent[slot] = seq
            stack.extend((sub, seq, index, depth + 1) for index, sub in enumerate(item))
        elif isinstance(item, Decimal):
            as_float = float(item)
            if not item.is_finite() or Decimal(as_float) != item:
                raise OverBound("a Decimal that is not exactly a float")
            parent[slot] = as_float
        elif isinstance(item, _SCALARS):  # a subclass of a scalar type (an IntEnum, a str subclass): its value
            plain: Any = (
                str.__str__(item)
                if isinstance(item, str)
                else bytes(item)
                if isinstance(item, bytes)
                else int(item)
                if isinstance(item, int)
                else float(item)
                if isinstance(item, float)
                else None
            )
            stack.append((plain, parent, slot, depth))
            budget[0] += 1
        else:
            raise OverBound(f"a value of type {kind.__name__}")
    return root[0]


_NONE = type(None)


def _plain_list(items: list[Any] | tuple[Any, ...], budget: list[int]) -> list[Any] | None:
    """A copy of a list whose items are all of one plain scalar type, checked at C speed; None otherwise."""
    kinds = set(map(type, items))
    if len(kinds) != 1:
        return None if kinds else []
    kind = kinds.pop()
    if kind is int:
        if min(items) < _INT64[0] or max(items) > _INT64[1]:
            raise OverBound("an integer outside the 64-bit range")
    elif kind is float:
        if any(map(math.isnan, items)):
            raise OverBound("NaN")
    elif kind is str or kind is bytes:
        budget[1] -= sum(map(len, items))
        if budget[1] < 0:
            raise OverBound("too many characters of text")
    elif kind is not bool and kind is not _NONE:
        return None
    return list(items)


def bound_arguments(
    args: Mapping[str, Any], names: frozenset[str], limits: ArgumentLimits = DEFAULT_LIMITS
) -> dict[str, Any]:
    """The fields of ``args`` that ``names`` lists, bounded and converted; OverBound past a bound."""
    budget = [limits.max_items, limits.max_string_chars]
    out: dict[str, Any] = {}
    for name in names:
        if name not in args:
            continue
        value = args[name]
        kind = type(value)
        # The usual cases without the general walk: a plain scalar, a flat list of one scalar type.
        if (
            (kind is int and _INT64[0] <= value <= _INT64[1])
            or kind is bool
            or value is None
            or (kind is float and value == value)
        ):
            budget[0] -= 1
            out[name] = value
        elif kind is str and len(value) <= budget[1]:
            budget[0] -= 1
            budget[1] -= len(value)
            out[name] = value
        elif kind is list and len(value) < budget[0] and (flat := _plain_list(value, budget)) is not None:
            budget[0] -= len(value) + 1
            out[name] = flat
        else:
            out[name] = bound_value(value, limits, budget)
        if budget[0] < 0:
            raise OverBound(f"more than {limits.max_items} values")
    return out


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

    __slots__ = ("_arg_name_set", "_arg_names", "_names", "_program", "names", "source")

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
        nested = _nested_macro(compiled)
        if nested is not None:
            raise ConditionSyntaxError(
                f"condition {source!r} calls {nested[1]}() inside {nested[0]}(): nested "
                "macros cost the product of the list sizes; not allowed"
            )
        self.names: frozenset[str] = _referenced_names(compiled)
        self._names = tuple(sorted(self.names))
        # The names to take from the arguments when the caller binds ``session`` itself (the engine does).
        self._arg_name_set = self.names - {"session"}
        self._arg_names = tuple(sorted(self._arg_name_set))
        try:
            self._program = cel.compile(compiled)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # pyo3 panics derive from BaseException
            raise ConditionSyntaxError(f"invalid condition {source!r}: {_parse_message(exc)}") from None
        self.source = source

    def evaluate(
        self, args: Mapping[str, Any], limits: ArgumentLimits = DEFAULT_LIMITS, session: Any = _FROM_ARGS
    ) -> bool | None:
        """True/False, or None when the expression cannot be evaluated for these arguments (or they are over
        ``limits``: then it is not evaluated at all).

        ``session``, when given, is what the name ``session`` means, whatever ``args`` holds under that name:
        a plain value already bounded by the caller (it is passed to CEL as it is), or None for "absent" (a
        condition that needs it cannot be evaluated)."""
        # Fast path: every field the condition names is a plain scalar (the usual `amount > 500`); the general
        # walk (bound_arguments) handles the rest and enforces every bound.
        bound = session is not _FROM_ARGS and "session" in self.names
        names, name_set = (self._arg_names, self._arg_name_set) if bound else (self._names, self.names)
        context: dict[str, Any] | None = {}
        chars = 0
        for name in names:
            if name in args:
                value = args[name]
                kind = type(value)
                if kind is str:
                    chars += len(value)
                elif not (
                    (kind is int and -9223372036854775808 <= value <= 9223372036854775807)
                    or kind is bool
                    or value is None
                    or (kind is float and value == value)
                ):
                    context = None
                    break
                context[name] = value  # type: ignore[index]
        if context is None or chars > limits.max_string_chars or len(names) > limits.max_items:
            try:
                context = bound_arguments(args, name_set, limits)
            except OverBound:
                return None
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException:
                return None
        if bound and session is not None:
            context["session"] = session
        try:
            result = self._program.execute(context)
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


_RESERVED = {
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
}


def _tokens(expr: str) -> list[tuple[str, int]]:
    """Identifiers and single punctuation characters with their positions, string literals skipped."""
    out: list[tuple[str, int]] = []
    i, n = 0, len(expr)
    while i < n:
        ch = expr[i]
        if ch in "\"'":
            i = _string_end(expr, i) + 1
        elif ch.isalpha() or ch == "_":
            j = i
            while j < n and (expr[j].isalnum() or expr[j] == "_"):
                j += 1
            out.append((expr[i:j], i))
            i = j
        elif ch.isspace():
            i += 1
        else:
            out.append((ch, i))
            i += 1
    return out


def _referenced_names(expr: str) -> frozenset[str]:
    """Top-level identifiers the expression may read (not after ``.``, not a function being called)."""
    toks = _tokens(expr)
    names: set[str] = set()
    for index, (tok, _) in enumerate(toks):
        if not (tok[0].isalpha() or tok[0] == "_") or tok in _RESERVED:
            continue
        if index and toks[index - 1][0] == ".":
            continue
        if index + 1 < len(toks) and toks[index + 1][0] == "(":
            continue  # a function or macro name (``size(x)``, ``has(x.y)``)
        names.add(tok)
    return frozenset(names)


def _nested_macro(expr: str) -> tuple[str, str] | None:
    """(outer, inner) for the first macro called inside another macro's arguments, else None."""
    toks = _tokens(expr)
    stack: list[str | None] = []  # per open parenthesis: the macro it belongs to, or None
    for index, (tok, _) in enumerate(toks):
        if tok == "(":
            prev = toks[index - 1][0] if index else ""
            dot = index >= 2 and toks[index - 2][0] == "."
            macro = prev if dot and prev in MACROS else None
            if macro is not None:
                outer = next((m for m in reversed(stack) if m is not None), None)
                if outer is not None:
                    return outer, macro
            stack.append(macro)
        elif tok == ")" and stack:
            stack.pop()
    return None
