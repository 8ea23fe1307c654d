"""Read policy YAML into plain values that remember the line they came from.

PyYAML's constructors throw line numbers away, so documents are composed into nodes and converted here,
with limits that turn hostile input (huge files, deep nesting, alias bombs) into a PolicyError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from claw_governance.errors import PolicyError

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 64


class LocDict(dict[str, Any]):
    """A mapping from YAML with ``line`` (its own) and ``key_lines`` (each key's line), 1-based."""

    line: int
    key_lines: dict[str, int]


class LocList(list[Any]):
    """A sequence from YAML with ``line`` and ``item_lines``, 1-based."""

    line: int
    item_lines: list[int]


class _Converter:
    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.count = 0

    def convert(self, node: yaml.Node, depth: int = 0) -> Any:
        self.count += 1
        line = node.start_mark.line + 1
        if self.count > MAX_NODES:
            raise PolicyError(f"more than {MAX_NODES} YAML nodes (alias expansion?)", file=self.file, line=line)
        if depth > MAX_DEPTH:
            raise PolicyError(f"nesting deeper than {MAX_DEPTH} levels", file=self.file, line=line)
        if isinstance(node, yaml.MappingNode):
            out = LocDict()
            out.line = line
            out.key_lines = {}
            self.loader.flatten_mapping(node)
            for key_node, value_node in node.value:
                key = self.convert(key_node, depth + 1)
                kline = key_node.start_mark.line + 1
                if not isinstance(key, str | int | float | bool) or key is None:
                    raise PolicyError("mapping keys must be plain scalars", file=self.file, line=kline)
                skey = str(key)
                if skey in out:
                    raise PolicyError(f"duplicate key {skey!r}", file=self.file, line=kline)
                out[skey] = self.convert(value_node, depth + 1)
                out.key_lines[skey] = kline
            return out
        if isinstance(node, yaml.SequenceNode):
            seq = LocList()
            seq.line = line
            seq.item_lines = []
            for item in node.value:
                seq.append(self.convert(item, depth + 1))
                seq.item_lines.append(item.start_mark.line + 1)
            return seq
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # a bad scalar for its tag: `!!int x`, `!!timestamp 2001-02-30` (AttributeError)
            tag = node.tag.rsplit(":", 1)[-1]
            raise PolicyError(
                f"invalid {tag} value {str(node.value)[:40]!r}: {str(exc).splitlines()[0][:120]}",
                file=self.file,
                line=line,
            ) from None


def _nesting_line(text: str) -> int:
    """Best guess of the line where flow nesting or indentation runs too deep (for the error message)."""
    depth = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        if len(raw) - len(raw.lstrip(" ")) > 2 * MAX_DEPTH:
            return lineno
        for ch in raw:
            depth += ch in "[{"
            depth -= ch in "]}"
            if depth > MAX_DEPTH:
                return lineno
    return 1


def read_policy_bytes(path: Path, display: str | None = None) -> bytes:
    """The bytes of one policy file (at most ``MAX_FILE_BYTES``); PolicyError when it cannot be read."""
    name = display or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise PolicyError(
                f"{size} bytes is over the {MAX_FILE_BYTES // (1024 * 1024)} MB limit for a policy file",
                file=name,
                line=1,
            )
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise PolicyError(f"cannot read: {exc.strerror or exc}", file=name) from None
    if len(raw) > MAX_FILE_BYTES:  # grew between the stat and the read
        raise PolicyError(f"over the {MAX_FILE_BYTES // (1024 * 1024)} MB limit for a policy file", file=name, line=1)
    return raw


def load_documents(
    path: Path, display: str | None = None, raw: bytes | None = None
) -> tuple[list[tuple[Any, int]], bytes]:
    """Parse every YAML document of ``path`` (or of ``raw``, its bytes as already read); return
    ``[(value, line)]`` and the raw bytes (for hashing)."""
    name = display or str(path)
    if raw is None:
        raw = read_policy_bytes(path, name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PolicyError("not UTF-8 text", file=name, line=line) from None
    docs: list[tuple[Any, int]] = []
    try:
        loader = yaml.SafeLoader(text)  # checks the characters first: ReaderError for a NUL
    except yaml.YAMLError as exc:
        raise PolicyError(
            f"invalid YAML: {str(exc).splitlines()[-1].strip()[:160]}",
            file=name,
            line=getattr(getattr(exc, "problem_mark", None), "line", 0) + 1 or 1,
        ) from None
    try:
        conv = _Converter(loader, name)
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            docs.append((conv.convert(node), node.start_mark.line + 1))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        raise PolicyError(f"invalid YAML: {problem}", file=name, line=line) from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"invalid YAML: {str(exc).splitlines()[0]}", file=name, line=1) from None
    except RecursionError:
        raise PolicyError(f"nesting deeper than {MAX_DEPTH} levels", file=name, line=_nesting_line(text)) from None
    finally:
        loader.dispose()
    return docs, raw
