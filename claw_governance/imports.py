"""Run code when a module is imported: how adapters patch a framework only once the application imports it.

``gov.enable()`` must not import a framework the process has not imported itself (crewai alone takes
seconds). An adapter's ``claw_enable`` calls ``when_imported("crewai", fn)``: if crewai is imported already,
``fn`` runs now; otherwise a finder on ``sys.meta_path`` waits for the first ``import crewai`` and runs ``fn``
right after the module's own code, before the import statement returns, so no call made through the module
can precede the patch.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

log = logging.getLogger("claw_governance.imports")

_lock = threading.RLock()
_pending: dict[str, list[PendingImport]] = {}


class PendingImport:
    """A callback waiting for a module's import; ``cancel()`` withdraws it (no effect once it has run)."""

    __slots__ = ("callback", "cancelled", "name")

    def __init__(self, name: str, callback: Callable[[ModuleType], None]) -> None:
        self.name = name
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Withdraw the callback if the module has not been imported yet."""
        with _lock:
            self.cancelled = True
            waiting = _pending.get(self.name)
            if waiting is not None and self in waiting:
                waiting.remove(self)
                if not waiting:
                    del _pending[self.name]

    @property
    def waiting(self) -> bool:
        """True while the callback still waits for the import."""
        with _lock:
            return self in _pending.get(self.name, ())


def _fire(name: str, module: ModuleType) -> None:
    with _lock:
        callbacks = _pending.pop(name, [])
    for pending in callbacks:
        if pending.cancelled:
            continue
        try:
            pending.callback(module)
        except Exception:  # the import itself must succeed; the adapter's own health check reports the gap
            log.exception("post-import hook for %s failed", name)


class _Loader(importlib.abc.Loader):
    """Wraps the real loader: executes the module, then runs the callbacks waiting for it."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self._inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        # The module is complete: put the real loader back where importlib.resources and friends look.
        if module.__spec__ is not None:
            module.__spec__.loader = self._inner
        module.__loader__ = self._inner
        _fire(module.__name__, module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a watched module, asks the other finders and wraps the loader they give."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _pending:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Loader(spec.loader)
        return spec


_FINDER = _Finder()


def when_imported(name: str, callback: Callable[[ModuleType], None]) -> PendingImport | None:
    """Run ``callback(module)`` once ``name`` is imported: now if it is, else right after its import.

    Returns the PendingImport to cancel, or None when the callback ran at once.
    """
    with _lock:
        module = sys.modules.get(name)
        if module is None:
            pending = PendingImport(name, callback)
            _pending.setdefault(name, []).append(pending)
            if _FINDER not in sys.meta_path:
                sys.meta_path.insert(0, _FINDER)
            return pending
    callback(module)
    return None


__all__ = ["PendingImport", "when_imported"]
