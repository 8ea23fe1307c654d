"""Make an arbitrary value storable as JSON without an exception (escalation context, notifier payloads).

orjson refuses integers beyond 64 bits and nesting deeper than 254 levels; Python's ``str(int)`` refuses
more than 4,300 digits. A value that is only stored and shown (never compared by a decision) is better kept
approximately than lost with the whole call, so those parts are replaced by short descriptive strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

_INT64 = (-(2**63), 2**63 - 1)
MAX_DEPTH = 200


def _scalar(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if _INT64[0] <= value <= _INT64[1]:
            return value
        return str(value) if value.bit_length() < 14_000 else f"<int of {value.bit_length()} bits>"
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else repr(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8") if not value.isascii() else value
    return str(value)


def json_safe(value: Any) -> Any:
    """``value`` itself when orjson can write it, else a copy with every part it cannot write replaced."""
    try:
        orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
        return value
    except (orjson.JSONEncodeError, TypeError, ValueError):
        pass
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]
    while stack:
        item, parent, slot, depth = stack.pop()
        if isinstance(item, Mapping | list | tuple) and depth >= MAX_DEPTH:
            parent[slot] = f"<nested deeper than {MAX_DEPTH} levels>"
        elif isinstance(item, Mapping):
            copy: dict[str, Any] = {}
            parent[slot] = copy
            for key, sub in item.items():
                text = str(_scalar(key))
                copy[text] = None
                stack.append((sub, copy, text, depth + 1))
        elif isinstance(item, list | tuple):
            seq: list[Any] = [None] * len(item)
            parent[slot] = seq
            stack.extend((sub, seq, index, depth + 1) for index, sub in enumerate(item))
        else:
            parent[slot] = _scalar(item)
    return root[0]
