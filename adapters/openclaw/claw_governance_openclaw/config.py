"""Reading real ``openclaw.json`` files: JSON5, ``$include`` (single file or deep-merged list, sibling keys
override, 10 levels, paths kept inside the config's folder) and ``${VAR}`` environment substitution.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyjson5

MAX_INCLUDE_DEPTH = 10
MAX_INCLUDE_BYTES = 2 * 1024 * 1024
_ENV_REF = re.compile(r"\$(\$?)\{([A-Z_][A-Z0-9_]*)\}")


class OpenClawConfigError(ValueError):
    """An OpenClaw config cannot be read; the message names the file (and line, for syntax errors)."""


def _parse(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise OpenClawConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_INCLUDE_BYTES:
        raise OpenClawConfigError(f"{path}: larger than 2 MB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise OpenClawConfigError(f"{path}: not UTF-8 text") from None
    if not text.strip():
        return {}
    try:
        return pyjson5.decode(text)
    except Exception as exc:  # pyjson5 raises several exception types, all with a useful message
        message = str(getattr(exc, "message", None) or exc).splitlines()[0] or type(exc).__name__
        line = _error_line(text, exc)
        where = f"{path}:{line}" if line else str(path)
        raise OpenClawConfigError(f"{where}: invalid JSON5: {message}") from None


def _error_line(text: str, exc: Exception) -> int | None:
    match = re.search(r"near (\d+)", str(exc))
    if match is None:
        return None
    pos = int(match.group(1))
    return text.count("\n", 0, min(pos, len(text))) + 1


def _deep_merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            merged[key] = _deep_merge(merged[key], value) if key in merged else value
        return merged
    return over


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _resolve_includes(value: Any, here: Path, roots: list[Path], depth: int, chain: tuple[Path, ...]) -> Any:
    if isinstance(value, list):
        return [_resolve_includes(v, here, roots, depth, chain) for v in value]
    if not isinstance(value, dict):
        return value
    if "$include" not in value:
        return {k: _resolve_includes(v, here, roots, depth, chain) for k, v in value.items()}
    if depth >= MAX_INCLUDE_DEPTH:
        raise OpenClawConfigError(f"{here}: $include nested more than {MAX_INCLUDE_DEPTH} levels")
    spec = value["$include"]
    targets = spec if isinstance(spec, list) else [spec]
    merged: Any = {}
    for target in targets:
        if not isinstance(target, str) or not target or "\0" in target or len(target) >= 4096:
            raise OpenClawConfigError(f"{here}: $include must be a file path or a list of paths, not {target!r}")
        path = (here.parent / target).resolve()
        if not _inside(path, roots):
            raise OpenClawConfigError(
                f"{here}: $include {target!r} resolves outside the config folder "
                "(set OPENCLAW_INCLUDE_ROOTS to allow it)"
            )
        if path in chain:
            raise OpenClawConfigError(f"{here}: circular $include of {path}")
        included = _resolve_includes(_parse(path), path, roots, depth + 1, (*chain, path))
        merged = included if len(targets) == 1 else _deep_merge(merged, included)
    siblings = {k: _resolve_includes(v, here, roots, depth, chain) for k, v in value.items() if k != "$include"}
    return _deep_merge(merged, siblings) if siblings else merged


def substitute_env(value: Any, env: Mapping[str, str]) -> Any:
    """Replace ``${VAR}`` (uppercase names) in every string; ``$${VAR}`` is a literal; unset stays as is."""
    if isinstance(value, str):
        if "${" not in value:
            return value

        def repl(match: re.Match[str]) -> str:
            if match.group(1):
                return "${" + match.group(2) + "}"
            found = env.get(match.group(2))
            return found if found else match.group(0)

        return _ENV_REF.sub(repl, value)
    if isinstance(value, list):
        return [substitute_env(v, env) for v in value]
    if isinstance(value, dict):
        return {k: substitute_env(v, env) for k, v in value.items()}
    return value


def load_openclaw_config(path: str | Path, *, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read an ``openclaw.json`` (JSON5) with its ``$include`` files and ``${VAR}`` references resolved."""
    file = Path(path).expanduser()
    if file.is_dir():
        file = file / "openclaw.json"
    root = file.resolve()
    env = os.environ if env is None else env
    roots = [root.parent]
    roots += [
        Path(p).resolve() for p in env.get("OPENCLAW_INCLUDE_ROOTS", "").split(os.pathsep) if p and os.path.isabs(p)
    ]
    data = _resolve_includes(_parse(root), root, roots, 0, (root,))
    if not isinstance(data, dict):
        raise OpenClawConfigError(f"{file}: the top level must be an object, not {type(data).__name__}")
    resolved: dict[str, Any] = substitute_env(data, env)  # substitution keeps the object an object
    return resolved


def parse_openclaw_config(text: str) -> dict[str, Any]:
    """Parse JSON5 text (no includes, no substitution); mostly for tests and tools."""
    try:
        data = pyjson5.decode(text)
    except Exception as exc:
        raise OpenClawConfigError(f"invalid JSON5: {exc}") from None
    if not isinstance(data, dict):
        raise OpenClawConfigError("the top level must be an object")
    return data
