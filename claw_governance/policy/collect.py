"""Every error of a policy file, not only the first: what ``claw-gov policy lint`` reports.

The schema (schema.py) stops at a document's first problem, which is right when loading a policy (nothing
of a broken file may take effect). For lint, this module parses each document again and again: after each
error it removes the part of the YAML tree the error points at (the innermost key or list item on that line)
and parses what is left, until the document parses or nothing more can be removed. Each YAML document and
each item of a top-level list is checked on its own, so an error in one never hides another's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from claw_governance.errors import PolicyError
from claw_governance.policy.schema import PolicyDocument, parse_document
from claw_governance.policy.source import LocDict, LocList, load_documents

MAX_ERRORS_PER_DOCUMENT = 50
_PLACEHOLDER_AGENT = "\x00lint"  # stands in for a broken 'agent' value, so no "missing 'agent'" follows


def _remove_at(node: Any, line: int, top: bool = True) -> bool:
    """Remove the innermost key or item of ``node`` on ``line``; True if something was removed."""
    if isinstance(node, LocDict):
        for key in list(node):
            if _remove_at(node[key], line, top=False):
                return True
        for key, key_line in list(node.key_lines.items()):
            if key_line == line and key in node:
                if top and key == "agent":
                    node[key] = _PLACEHOLDER_AGENT
                else:
                    del node[key]
                    del node.key_lines[key]
                return True
    elif isinstance(node, LocList):
        for item in node:
            if _remove_at(item, line, top=False):
                return True
        for index, item_line in enumerate(node.item_lines):
            if item_line == line:
                del node[index]
                del node.item_lines[index]
                return True
    return False


def parse_document_all(value: Any, file: str, line: int) -> tuple[PolicyDocument | None, list[PolicyError]]:
    """The document (None if it never parsed) and every error found in it."""
    errors: list[PolicyError] = []
    seen: set[tuple[int | None, str]] = set()
    for _ in range(MAX_ERRORS_PER_DOCUMENT):
        try:
            doc = parse_document(value, file, line)
        except PolicyError as exc:
            key = (exc.line, exc.detail)
            if key in seen:  # removing did not help: stop rather than loop
                break
            seen.add(key)
            errors.append(exc)
            if exc.line is None or not _remove_at(value, exc.line):
                break
            continue
        return (doc if not errors else None), errors
    return None, errors


def parse_file_all(path: Path, display: str | None = None) -> tuple[list[PolicyDocument], list[PolicyError]]:
    """Every document that parses and every error, of one policy file."""
    name = display or str(path)
    try:
        raw_docs, _ = load_documents(path, name)
    except PolicyError as exc:  # the YAML itself is broken: the parser cannot go on past it
        return [], [exc]
    if not raw_docs:
        return [], [PolicyError("empty policy file (expected 'agent' and 'permissions')", file=name, line=1)]
    docs: list[PolicyDocument] = []
    errors: list[PolicyError] = []
    items: list[tuple[Any, int]] = []
    for value, line in raw_docs:
        if isinstance(value, LocList):
            items.extend((item, value.item_lines[i]) for i, item in enumerate(value))
        else:
            items.append((value, line))
    for value, line in items:
        doc, found = parse_document_all(value, name, line)
        errors.extend(found)
        if doc is not None:
            docs.append(doc)
    return docs, errors


__all__ = ["parse_document_all", "parse_file_all"]
