"""Loading policy files into a PolicySet, and hot reload that keeps the last good policy on failure."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from claw_governance.errors import PolicyError
from claw_governance.policy.engine import PolicySet
from claw_governance.policy.schema import PolicyDocument, parse_document
from claw_governance.policy.source import LocList, load_documents

log = logging.getLogger("claw_governance.policy")

POLICY_SUFFIXES = (".yaml", ".yml")
TEST_SUFFIXES = ("_test.yaml", "_test.yml")  # policy test cases live beside policies, as OPA's *_test.rego


def is_policy_file(path: Path) -> bool:
    """A YAML file that is not a test-case file."""
    return path.suffix in POLICY_SUFFIXES and not path.name.endswith(TEST_SUFFIXES)


def policy_files(path: Path) -> list[Path]:
    """The policy files under ``path`` (itself if it is a file), in a stable order."""
    if path.is_file():
        return [path]
    if not path.exists():
        raise PolicyError("policy path does not exist", file=str(path))
    return sorted(p for p in path.rglob("*") if is_policy_file(p) and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(path).parts))


def parse_file(path: Path, display: str | None = None) -> tuple[list[PolicyDocument], bytes]:
    """Every policy document in one file. A file may hold several YAML documents or a list of them."""
    name = display or str(path)
    raw_docs, raw = load_documents(path, name)
    if not raw_docs:
        raise PolicyError("empty policy file (expected 'agent' and 'permissions')", file=name, line=1)
    docs: list[PolicyDocument] = []
    for value, line in raw_docs:
        if isinstance(value, LocList):
            for index, item in enumerate(value):
                docs.append(parse_document(item, name, value.item_lines[index]))
        else:
            docs.append(parse_document(value, name, line))
    return docs, raw


def load_policy_set(path: Path | str) -> PolicySet:
    """Parse and compile every policy under ``path``. Raises PolicyError (file:line) on the first problem."""
    root = Path(path)
    files = policy_files(root)
    if not files:
        raise PolicyError("no policy files (*.yaml, *.yml) found", file=str(root))
    digest = hashlib.sha256()
    documents: list[PolicyDocument] = []
    shown: list[str] = []
    sources: list[tuple[str, str]] = []
    for file in files:
        display = str(file)
        docs, raw = parse_file(file, display)
        rel = file.name if root.is_file() else file.relative_to(root).as_posix()
        digest.update(rel.encode() + b"\0" + hashlib.sha256(raw).digest())
        documents.extend(docs)
        shown.append(display)
        sources.append((rel, raw.decode("utf-8", "replace")))
    warnings: list[str] = []
    agents = {d.agent for d in documents}
    if agents == {"*"}:
        warnings.append("only agent \"*\" policies: every agent gets the same rules")
    policy_set = PolicySet(documents, digest.hexdigest(), shown, warnings)
    policy_set.sources = tuple(sources)
    return policy_set


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload did: ``changed`` (a new policy is in force) or ``error`` (the old one still is)."""

    changed: bool
    policy_hash: str
    previous_hash: str
    error: str | None = None


class PolicyStore:
    """Holds the policy in force; ``reload()`` swaps it atomically or keeps it and reports the error."""

    def __init__(self, path: Path | str | None, on_reload: Callable[[ReloadResult], None] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._on_reload = on_reload
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[str, int, int], ...] = ()
        self.current: PolicySet = PolicySet.empty()
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.path is not None:
            self.current = load_policy_set(self.path)
            self._stamp = self._stat()

    def _stat(self) -> tuple[tuple[str, int, int], ...]:
        assert self.path is not None
        try:
            return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in policy_files(self.path))
        except (OSError, PolicyError):
            return ()

    def reload(self, *, force: bool = True) -> ReloadResult:
        """Re-read the policy files. On error the last good policy stays in force and the error is returned."""
        with self._lock:
            old = self.current
            if self.path is None:
                return ReloadResult(False, old.hash, old.hash)
            stamp = self._stat()
            if not force and stamp == self._stamp and stamp:
                return ReloadResult(False, old.hash, old.hash)
            try:
                new = load_policy_set(self.path)
            except PolicyError as exc:
                self._stamp = stamp
                self.last_error = str(exc)
                result = ReloadResult(False, old.hash, old.hash, str(exc))
                log.error("policy reload failed, keeping policy %s in force: %s", old.hash[:12], exc)
            else:
                self._stamp = stamp
                self.last_error = None
                self.current = new
                result = ReloadResult(new.hash != old.hash, new.hash, old.hash)
        if self._on_reload is not None and (result.changed or result.error):
            self._on_reload(result)
        return result

    def watch(self, interval_seconds: float) -> None:
        """Reload in a background thread every ``interval_seconds`` when a file changed."""
        if self._thread is not None or self.path is None:
            return

        def loop() -> None:
            while not self._stop.wait(interval_seconds):
                try:
                    self.reload(force=False)
                except Exception:  # never let the watcher die silently; the store keeps the old policy
                    log.exception("policy watcher failed")

        self._thread = threading.Thread(target=loop, name="claw-policy-reload", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the watcher thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
