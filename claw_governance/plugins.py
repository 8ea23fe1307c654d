"""The plugin manager: entry points (group ``claw_governance``), ``$CLAW_PLUGINS``, and change listeners."""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pluggy
from pluggy import HookImpl, Result

from claw_governance import hookspecs

log = logging.getLogger("claw_governance.plugins")


@dataclass(frozen=True, slots=True)
class PluginLoadFailure:
    """An entry point that could not be loaded or registered; it was skipped, the rest still loaded."""

    name: str
    value: str
    error: str


class ClawPluginManager(pluggy.PluginManager):
    """A pluggy PluginManager that tells its listeners whenever the plugin set or the hook-call monitoring
    changes (the governor rebuilds its compiled pipeline then, see ``claw_governance.pipeline``)."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.generation = 0  # counts changes (register, unregister, block, monitoring on or off)
        self.load_failures: list[PluginLoadFailure] = []
        self._monitors = 0
        self._listeners: list[Callable[[], None]] = []

    @property
    def monitored(self) -> bool:
        """Whether hook-call monitoring (``add_hookcall_monitoring``, ``enable_tracing``) is on: every pipeline
        step must then be a real hook call, so that the monitor sees it."""
        return self._monitors > 0

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every change of the plugin set or of the monitoring."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        self.generation += 1
        for listener in self._listeners:
            listener()

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        """``pluggy.PluginManager.register``, then the listeners are told."""
        result = super().register(plugin, name)
        self._changed()
        return result

    def unregister(self, plugin: Any | None = None, name: str | None = None) -> Any | None:
        """``pluggy.PluginManager.unregister``, then the listeners are told."""
        result = super().unregister(plugin, name)
        self._changed()
        return result

    def set_blocked(self, name: str) -> None:
        """``pluggy.PluginManager.set_blocked`` (it unregisters the plugin), then the listeners are told."""
        super().set_blocked(name)
        self._changed()

    def add_hookcall_monitoring(
        self,
        before: Callable[[str, Sequence[HookImpl], Mapping[str, object]], None],
        after: Callable[[Result[object], str, Sequence[HookImpl], Mapping[str, object]], None],
    ) -> Callable[[], None]:
        """``pluggy``'s monitoring (``enable_tracing`` uses it too); while on, every step is a hook call."""
        undo = super().add_hookcall_monitoring(before, after)
        self._monitors += 1
        self._changed()
        undone = False

        def undo_and_rebuild() -> None:
            nonlocal undone
            undo()
            if not undone:  # pluggy's undo may be called twice; count it once
                undone = True
                self._monitors -= 1
                self._changed()

        return undo_and_rebuild

    def load_entry_points(self, group: str = hookspecs.PROJECT) -> list[str]:
        """Load every entry point of ``group`` one at a time; a broken one is recorded and skipped.

        (pluggy's ``load_setuptools_entrypoints`` raises at the first broken plugin and loads none after it.)
        """
        loaded: list[str] = []
        for ep in importlib.metadata.entry_points(group=group):
            if self.get_plugin(ep.name) is not None or self.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
                self.register(plugin, name=ep.name)
            except Exception as exc:
                failure = PluginLoadFailure(ep.name, ep.value, f"{type(exc).__name__}: {exc}")
                self.load_failures.append(failure)
                log.error("skipped plugin %s (%s): %s", ep.name, ep.value, failure.error)
                continue
            loaded.append(ep.name)
        return loaded


ENV_PLUGINS = "CLAW_PLUGINS"


def plugins_from_env(environ: dict[str, str] | None = None) -> list[tuple[str, Any]]:
    """The plugins named in ``$CLAW_PLUGINS``: comma-separated ``module`` or ``module:attribute`` paths.

    Like ``PYTEST_PLUGINS``: a way to add a plugin to every governor of a process (and of the processes it
    starts) without an installed distribution, e.g. a site's extra veto, or the test suite's no-op plugin.
    A path that cannot be imported is a ``ConfigError`` (a governor must not start without a plugin it was
    told to load: that plugin may be a deny rule).
    """
    from claw_governance.errors import ConfigError

    spec = (environ if environ is not None else os.environ).get(ENV_PLUGINS, "")
    found: list[tuple[str, Any]] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        module_name, _, attribute = item.partition(":")
        try:
            plugin: Any = importlib.import_module(module_name)
            for part in filter(None, attribute.split(".")):
                plugin = getattr(plugin, part)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"{ENV_PLUGINS}: cannot load plugin {item!r}: {type(exc).__name__}: {exc}") from None
        found.append((item, plugin() if isinstance(plugin, type) else plugin))
    return found
