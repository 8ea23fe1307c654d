"""``claw-gov policy migrate``: rewrite the seed JavaScript toolkit's policy spellings into the canonical ones.

What changes (everything else, comments included, is kept as written where ruamel.yaml's round trip allows):

- ``trust.minimum_score`` -> ``trust.min_score``; ``trust.recovery_threshold`` -> ``trust.recovery_score``
- ``audit.sensitive_fields`` -> the top-level ``sensitive_fields`` (merged with it when both exist)
- ``rate_limits.actions_per_minute: N`` -> ``rate_limits: {"*": N/minute}`` (the same limit; see schema.py)

``metadata:`` and ``rate_limits.escalations_per_hour`` are canonical already and stay. A file this project
refuses (for example ``rate_limits.reviews_per_hour``) is not migrated: the error says what to write instead.
Every rewrite is checked: the new text must parse to the same rules and settings as the old, or nothing is
written.
"""

from __future__ import annotations

import difflib
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from claw_governance.errors import PolicyError
from claw_governance.policy.schema import TRUST_ALIASES, PolicyDocument
from claw_governance.policy.store import parse_file

# Indentation styles tried for the round trip; the one that reproduces an untouched file exactly is used, so a
# migration changes only the lines it must.
_STYLES = ((2, 4, 2), (2, 2, 0), (4, 4, 0), (4, 6, 4), (4, 4, 2), (2, 4, 4))


@dataclass(frozen=True, slots=True)
class Migration:
    """One file: its text before and after (equal when nothing needed rewriting) and what was rewritten."""

    path: Path
    before: str
    after: str
    changes: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """Whether the file would be rewritten."""
        return self.before != self.after

    def diff(self) -> str:
        """A unified diff of the rewrite ('' when unchanged)."""
        name = self.path.as_posix()
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True), self.after.splitlines(keepends=True), f"a/{name}", f"b/{name}"
            )
        )


def _yaml(style: tuple[int, int, int]) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    yaml.indent(mapping=style[0], sequence=style[1], offset=style[2])
    return yaml


def _dump(yaml: YAML, docs: list[Any], explicit_start: bool) -> str:
    yaml.explicit_start = explicit_start
    out = io.StringIO()
    yaml.dump_all(docs, out)
    return out.getvalue()


def _style(text: str) -> tuple[YAML, list[Any], bool]:
    """The YAML instance (indentation style) whose round trip of ``text`` changes the fewest lines."""
    best: tuple[int, YAML, list[Any], bool] | None = None
    explicit = text.lstrip().startswith("---")
    for style in _STYLES:
        yaml = _yaml(style)
        docs = list(yaml.load_all(text))
        again = _dump(yaml, docs, explicit)
        cost = sum(1 for line in difflib.ndiff(text.splitlines(), again.splitlines()) if line[:1] in "+-")
        if best is None or cost < best[0]:
            best = (cost, yaml, docs, explicit)
        if cost == 0:
            break
    assert best is not None
    return best[1], list(best[1].load_all(text)), best[3]


def _rename(mapping: CommentedMap, old: str, new: str, value: Any = None) -> None:
    """Rename a key in place: same position, same end-of-line comment; optionally a new value."""
    position = list(mapping.keys()).index(old)
    comment = mapping.ca.items.pop(old, None)
    current = mapping.pop(old)
    mapping.insert(position, new, current if value is None else value)
    if comment is not None:
        mapping.ca.items[new] = comment


def _join(into: list[Any], extra: list[Any]) -> None:
    """Merge ruamel comment slots: a slot both have keeps both texts, on one line for end-of-line comments."""
    for index, token in enumerate(extra):
        if token is None or index >= len(into):
            continue
        if into[index] is None:
            into[index] = token
        elif hasattr(into[index], "value") and hasattr(token, "value"):
            into[index].value = into[index].value.rstrip("\n") + " " + token.value.lstrip()


def _merge_fields(doc: CommentedMap, top: Any, fields: Any, comment: Any) -> None:
    """``audit.sensitive_fields`` appended to an existing top-level list, keeping their comments."""
    item_comments = getattr(getattr(fields, "ca", None), "items", {})
    for index, name in enumerate(fields):
        if name not in top:
            top.append(name)
            if index in item_comments and hasattr(top, "ca"):
                top.ca.items[len(top) - 1] = item_comments[index]
        elif index in item_comments and hasattr(top, "ca"):
            _join(top.ca.items.setdefault(len(top) - 1, [None, None, None, None]), item_comments[index])
    if comment is not None:
        _join(doc.ca.items.setdefault("sensitive_fields", [None, None, None, None]), comment)


def _migrate_document(doc: Any, changes: list[str]) -> None:
    if not isinstance(doc, CommentedMap):
        return
    trust = doc.get("trust")
    if isinstance(trust, CommentedMap):
        for alias, ours in TRUST_ALIASES.items():
            if alias in trust and ours not in trust:
                _rename(trust, alias, ours)
                changes.append(f"trust.{alias} -> trust.{ours}")
    audit = doc.get("audit")
    if isinstance(audit, CommentedMap) and isinstance(audit.get("sensitive_fields"), list):
        fields = audit["sensitive_fields"]
        comment = audit.ca.items.pop("sensitive_fields", None)
        del audit["sensitive_fields"]
        top = doc.get("sensitive_fields")
        if isinstance(top, list):
            _merge_fields(doc, top, fields, comment)
        else:
            position = list(doc.keys()).index("audit") + 1
            doc.insert(position, "sensitive_fields", fields)
            if comment is not None:
                doc.ca.items["sensitive_fields"] = comment
        if not audit:
            del doc["audit"]
        changes.append("audit.sensitive_fields -> sensitive_fields")
    limits = doc.get("rate_limits")
    if isinstance(limits, CommentedMap) and "actions_per_minute" in limits and "*" not in limits:
        count = limits["actions_per_minute"]
        _rename(limits, "actions_per_minute", "*", f"{count}/minute")
        changes.append(f'rate_limits.actions_per_minute: {count} -> "*": {count}/minute')


def _documents(docs: list[Any]) -> Iterator[Any]:
    for doc in docs:
        if isinstance(doc, CommentedSeq):  # a file holding a list of policy documents
            yield from doc
        else:
            yield doc


def _meaning(docs: list[PolicyDocument]) -> list[tuple[Any, ...]]:
    """What a file's documents decide and configure, without where it is written (file, line)."""
    return [
        (
            d.agent,
            d.description,
            d.metadata,
            d.trust,
            d.audit_level,
            d.audit_retention_days,
            d.sensitive_fields,
            sorted(
                (r.effect.value, r.pattern, r.condition.source if r.condition else None, r.reason, r.timeout_seconds)
                for r in d.rules
            ),
            sorted((rl.pattern, rl.limit, rl.period_seconds) for rl in d.rate_limits),
            sorted((el.limit, el.period_seconds) for el in d.escalation_limits),
            d.shadow,
            sorted(r.shadow for r in d.rules),
            sorted(
                (b.pattern, b.maximum, b.period_seconds, b.sum_field, b.scope, b.then.value, b.name or "")
                for b in d.budgets
            ),
            sorted((pattern, sorted(names)) for pattern, names, _ in d.labels),
        )
        for d in docs
    ]


def _parse_text(text: str, like: Path, display: str) -> list[PolicyDocument]:
    handle, name = tempfile.mkstemp(suffix=like.suffix, dir=like.parent, prefix=".claw-migrate-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        return parse_file(Path(name), display)[0]
    finally:
        os.unlink(name)


def migrate_file(path: Path) -> Migration:
    """Work out the canonical form of one policy file (nothing is written). Raises PolicyError (file:line)
    for a file this project refuses, or if the rewrite would not mean the same as the original."""
    display = str(path)
    before_docs = parse_file(path, display)[0]  # refused keys and conflicts fail here, with file:line
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read: {exc}", file=display) from None
    try:
        yaml, docs, explicit = _style(text)
    except YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise PolicyError(f"ruamel.yaml cannot round-trip this file: {first}", file=display) from None
    changes: list[str] = []
    for doc in _documents(docs):
        _migrate_document(doc, changes)
    if not changes:
        return Migration(path, text, text, ())
    after = _dump(yaml, docs, explicit)
    after_docs = _parse_text(after, path, display)
    if _meaning(after_docs) != _meaning(before_docs):
        raise PolicyError(
            "the migrated text would not mean the same as the original; not rewritten (please report this file)",
            file=display,
        )
    return Migration(path, text, after, tuple(changes))


def write_migration(migration: Migration) -> None:
    """Replace the file with its migrated text atomically (same permissions)."""
    path = migration.path
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(migration.after)
        os.chmod(name, path.stat().st_mode & 0o7777)
        os.replace(name, path)
    except BaseException:
        if os.path.exists(name):
            os.unlink(name)
        raise
