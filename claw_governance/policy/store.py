"""Loading policy files into a PolicySet, and hot reload that keeps the last good policy on failure."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from claw_governance.errors import PolicyError
from claw_governance.model import Outcome
from claw_governance.policy.conditions import DEFAULT_LIMITS, ArgumentLimits
from claw_governance.policy.engine import PolicySet
from claw_governance.policy.schema import PolicyDocument, parse_document
from claw_governance.policy.source import LocList, load_documents, read_policy_bytes

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
    return sorted(
        p
        for p in path.rglob("*")
        if is_policy_file(p) and p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )


def parse_file(path: Path, display: str | None = None, raw: bytes | None = None) -> tuple[list[PolicyDocument], bytes]:
    """Every policy document in one file (or in ``raw``, its bytes as already read). A file may hold several
    YAML documents or a list of them."""
    name = display or str(path)
    raw_docs, raw = load_documents(path, name, raw)
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


# A file as a reload saw it: path, mtime (ns), size, SHA-256 of its content.
Stamp = tuple[tuple[str, int, int, str], ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The policy files and their bytes, read once; ``stamp`` identifies exactly what was read."""

    files: tuple[tuple[Path, bytes], ...]
    stamp: Stamp


class UnstableFiles(PolicyError):
    """A policy file changed while it was read (a write in progress): nothing was loaded."""


def read_snapshot(root: Path) -> Snapshot:
    """Read every policy file under ``root``; UnstableFiles if one changes size or mtime during its read."""
    files: list[tuple[Path, bytes]] = []
    stamp: list[tuple[str, int, int, str]] = []
    for file in policy_files(root):
        try:
            before = file.stat()
        except OSError as exc:
            raise PolicyError(f"cannot read: {exc.strerror or exc}", file=str(file)) from None
        raw = read_policy_bytes(file, str(file))
        try:
            after = file.stat()
        except OSError as exc:
            raise PolicyError(f"cannot read: {exc.strerror or exc}", file=str(file)) from None
        if (before.st_mtime_ns, before.st_size) != (after.st_mtime_ns, after.st_size) or len(raw) != after.st_size:
            raise UnstableFiles("changed while it was read (a write in progress?)", file=str(file))
        files.append((file, raw))
        stamp.append((str(file), after.st_mtime_ns, after.st_size, hashlib.sha256(raw).hexdigest()))
    return Snapshot(tuple(files), tuple(stamp))


def stable_snapshot(root: Path, settle_seconds: float, attempts: int = 20) -> Snapshot:
    """Two reads ``settle_seconds`` apart that agree on every file's size, mtime and hash; the policy files
    must not be changing. UnstableFiles after ``attempts`` disagreements."""
    first: Snapshot | None = None
    for _ in range(attempts):
        try:
            second = read_snapshot(root)
        except UnstableFiles:
            first = None
            time.sleep(settle_seconds)
            continue
        if first is not None and first.stamp == second.stamp:
            return second
        first = second
        time.sleep(settle_seconds)
    raise UnstableFiles(
        f"kept changing while being read ({attempts} reads, {settle_seconds}s apart): a write in "
        "progress? Write policies to a temporary file and rename it into place",
        file=str(root),
    )


def load_policy_set(
    path: Path | str, *, limits: ArgumentLimits = DEFAULT_LIMITS, snapshot: Snapshot | None = None
) -> PolicySet:
    """Parse and compile every policy under ``path`` (from ``snapshot`` when given: the bytes already read).
    Raises PolicyError (file:line) on the first problem."""
    root = Path(path)
    files = list(snapshot.files) if snapshot is not None else [(f, None) for f in policy_files(root)]
    if not files:
        raise PolicyError("no policy files (*.yaml, *.yml) found", file=str(root))
    digest = hashlib.sha256()
    documents: list[PolicyDocument] = []
    shown: list[str] = []
    sources: list[tuple[str, str]] = []
    for file, content in files:
        display = str(file)
        docs, raw = parse_file(file, display, content)
        rel = file.name if root.is_file() else file.relative_to(root).as_posix()
        digest.update(rel.encode() + b"\0" + hashlib.sha256(raw).digest())
        documents.extend(docs)
        shown.append(display)
        sources.append((rel, raw.decode("utf-8", "replace")))
    warnings: list[str] = []
    agents = {d.agent for d in documents}
    if agents == {"*"}:
        warnings.append('only agent "*" policies: every agent gets the same rules')
    policy_set = PolicySet(documents, digest.hexdigest(), shown, warnings, limits)
    policy_set.sources = tuple(sources)
    return policy_set


def _deny_files(policy: PolicySet) -> dict[str, int]:
    """File -> number of deny rules it holds."""
    counts: dict[str, int] = {}
    for doc in policy.documents:
        n = sum(1 for r in doc.rules if r.effect is Outcome.DENY)
        if n:
            counts[doc.file] = counts.get(doc.file, 0) + n
    return counts


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload did: ``changed`` (a new policy is in force) or ``error`` (the old one still is).

    ``removed_deny`` names files that held deny rules in the previous policy and are gone from the new one.
    """

    changed: bool
    policy_hash: str
    previous_hash: str
    error: str | None = None
    removed_deny: tuple[str, ...] = ()
    explicit: bool = True  # reload() called by someone (an operator's act), not the watcher's tick


class PolicyStore:
    """Holds the policy in force; ``reload()`` swaps it atomically or keeps it and reports the error.

    A reload only takes a file set that is stable across two reads (size, mtime and SHA-256 of every file):
    ``reload()`` reads twice ``settle_seconds`` apart, the watcher compares what it reads with what it read on
    its previous tick, so a file that is being written in place is never loaded half-written. A failed reload
    is reported (``on_reload``) once per distinct error. When a reload drops a file that held deny rules the
    store is ``degraded`` until an explicit ``reload()`` (an operator's act) or the file comes back.
    """

    def __init__(
        self,
        path: Path | str | None,
        on_reload: Callable[[ReloadResult], None] | None = None,
        *,
        limits: ArgumentLimits = DEFAULT_LIMITS,
        settle_seconds: float = 0.05,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self._on_reload = on_reload
        self.limits = limits
        self.settle_seconds = settle_seconds
        self._lock = threading.Lock()
        self._stat_stamp: tuple[tuple[str, int, int], ...] = ()
        self._stamp: Stamp = ()  # what the policy in force was loaded from
        self._pending: Stamp | None = None  # what the watcher saw last tick (not yet taken)
        self._reported: str | None = None  # the last error reported, so a repeat is not reported again
        self.current: PolicySet = PolicySet.empty(limits)
        self.last_error: str | None = None
        self.degraded: str | None = None  # set while deny rules are missing because their file disappeared
        self._lost: dict[str, int] = {}
        self.ticks = 0  # watcher passes so far (lets a test or a health probe see the watcher is alive)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.path is not None:
            snapshot = stable_snapshot(self.path, 0.0)  # two reads back to back; a write in progress retries
            self.current = load_policy_set(self.path, limits=limits, snapshot=snapshot)
            self._stamp = snapshot.stamp
            self._stat_stamp = self._stat()

    def _stat(self) -> tuple[tuple[str, int, int], ...]:
        assert self.path is not None
        try:
            return tuple((str(p), st.st_mtime_ns, st.st_size) for p in policy_files(self.path) for st in [p.stat()])
        except (OSError, PolicyError):
            return ()

    def reload(self, *, force: bool = True) -> ReloadResult:
        """Re-read the policy files. On error the last good policy stays in force and the error is returned.

        ``force=False`` is the watcher's tick: nothing happens unless a file changed, and a change is taken
        only when the next tick reads the same bytes.
        """
        with self._lock:
            old = self.current
            if self.path is None:
                return ReloadResult(False, old.hash, old.hash)
            stat_stamp = self._stat()
            if not force and stat_stamp == self._stat_stamp and stat_stamp:
                self._pending = None
                return ReloadResult(False, old.hash, old.hash)
            try:
                if force:
                    snapshot = stable_snapshot(self.path, self.settle_seconds)
                else:
                    snapshot = read_snapshot(self.path)
                    if snapshot.stamp != self._pending and snapshot.stamp != self._stamp:
                        self._pending = snapshot.stamp  # changed since the last tick: wait for it to settle
                        return ReloadResult(False, old.hash, old.hash)
                self._pending = None
                new = load_policy_set(self.path, limits=self.limits, snapshot=snapshot)
            except PolicyError as exc:
                if not force and isinstance(exc, UnstableFiles):
                    self._pending = None  # being written right now: look again next tick
                    return ReloadResult(False, old.hash, old.hash)
                if not force:
                    self._pending = None
                self._stat_stamp = stat_stamp
                self.last_error = str(exc)
                result = ReloadResult(False, old.hash, old.hash, str(exc), explicit=force)
                repeated = self._reported == result.error and not force
                self._reported = result.error
                if not repeated:
                    log.error("policy reload failed, keeping policy %s in force: %s", old.hash[:12], exc)
            else:
                repeated = False
                self._stat_stamp = stat_stamp
                self._stamp = snapshot.stamp
                self.last_error = None
                self._reported = None
                self.current = new
                before = _deny_files(old)
                removed = tuple(sorted(before.keys() - set(new.files)))
                if force:  # an explicit reload is the operator's act: what it loads is intended
                    self._lost = {}
                else:
                    self._lost.update({f: before[f] for f in removed})
                    self._lost = {f: n for f, n in self._lost.items() if f not in new.files}  # came back
                self.degraded = (
                    None
                    if not self._lost
                    else (
                        "files that held deny rules disappeared and their rules are no longer in force: "
                        + ", ".join(
                            f"{f} ({n} deny rule{'s' if n != 1 else ''})" for f, n in sorted(self._lost.items())
                        )
                        + "; restore them, or reload explicitly (reload_policies) to accept"
                    )
                )
                if removed:
                    log.error("policy reload dropped deny rules: %s", ", ".join(removed))
                result = ReloadResult(new.hash != old.hash, new.hash, old.hash, removed_deny=removed, explicit=force)
        if self._on_reload is not None and ((result.changed or result.error) and not repeated):
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
                self.ticks += 1

        self._thread = threading.Thread(target=loop, name="claw-policy-reload", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the watcher thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
