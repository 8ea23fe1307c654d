"""Edited arguments: the diff a reviewer's edit makes, and the check that no redacted value was sent back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from claw_governance.audit.redaction import REDACTED


def contains_redaction(value: Any) -> bool:
    """True if any string in ``value`` (nested dicts and lists) is or holds a redaction placeholder."""
    if isinstance(value, str):
        return REDACTED in value or "[REDACTED:" in value
    if isinstance(value, Mapping):
        return any(contains_redaction(k) or contains_redaction(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(contains_redaction(v) for v in value)
    return False


def _pointer_token(key: Any) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    # Paths are JSON Pointers (RFC 6901), so no two places share a path ({"a.b": 1} vs {"a": {"b": 1}}).
    if isinstance(value, Mapping) and value:
        for key in value:
            _flatten(value[key], f"{prefix}/{_pointer_token(key)}", out)
    elif isinstance(value, list | tuple) and value:
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}/{index}", out)
    else:
        out[prefix] = value


def args_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The leaf-level changes from ``old`` to ``new``: ``[{"path", "op": added|removed|changed, "old"?, "new"?}]``,
    sorted by path; paths are JSON Pointers (``/items/0/sku``; ``""`` is the whole document)."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    _flatten(old, "", before)
    _flatten(new, "", after)
    changes: list[dict[str, Any]] = []
    for path in sorted(before.keys() | after.keys()):
        if path not in after:
            changes.append({"path": path, "op": "removed", "old": before[path]})
        elif path not in before:
            changes.append({"path": path, "op": "added", "new": after[path]})
        elif before[path] != after[path] or type(before[path]) is not type(after[path]):
            changes.append({"path": path, "op": "changed", "old": before[path], "new": after[path]})
    return changes
