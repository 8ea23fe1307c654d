"""The plugin manager: default plugins, entry points (group ``claw_governance``), and fast hook dispatch."""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy

from claw_governance import hookspecs

log = logging.getLogger("claw_governance.plugins")


@dataclass(frozen=True, slots=True)
class PluginLoadFailure:
    """An entry point that could not be loaded or registered; it was skipped, the rest still loaded."""

    name: str
    value: str
    error: str


class ClawPluginManager(pluggy.PluginManager):
    """A pluggy PluginManager that counts changes, so hook dispatchers know when to rebuild."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.generation = 0
        self.load_failures: list[PluginLoadFailure] = []

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        result = super().register(plugin, name)
        self.generation += 1
        return result

    def unregister(self, plugin: Any | None = None, name: str | None = None) -> Any | None:
        result = super().unregister(plugin, name)
        self.generation += 1
        return result

    def set_blocked(self, name: str) -> None:
        super().set_blocked(name)
        self.generation += 1

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


class HookDispatch:
    """Calls one hook with its arguments given positionally, in the spec's order.

    With a single plain implementation the function is called directly (~0.1 us instead of pluggy's
    ~1.2 us); otherwise the call goes through pluggy. Non-firstresult hooks always return a list. The binding
    is rebuilt whenever plugins change (the manager's generation counter), so a plugin registered at run time
    takes part in the very next call.
    """

    __slots__ = ("_call", "_generation", "_hook", "_pm", "_sole", "argnames", "firstresult", "name")

    def __init__(self, pm: ClawPluginManager, name: str) -> None:
        self._pm = pm
        self.name = name
        self._hook = getattr(pm.hook, name)
        spec = self._hook.spec
        self.argnames: tuple[str, ...] = tuple(spec.argnames) if spec is not None else ()
        self.firstresult = bool(spec and spec.opts.get("firstresult"))
        self._generation = -1
        self._call: Callable[..., Any] = self._via_pluggy
        self._sole: object | None = None

    def _via_pluggy(self, *args: Any) -> Any:
        return self._hook(**dict(zip(self.argnames, args, strict=True)))

    def _rebuild(self) -> None:
        impls = self._hook.get_hookimpls()
        self._generation = self._pm.generation
        self._call = self._via_pluggy
        self._sole = impls[0].plugin if len(impls) == 1 else None
        if len(impls) != 1 or impls[0].hookwrapper or impls[0].wrapper:
            return
        function = impls[0].function
        if tuple(impls[0].argnames) == self.argnames:
            bound = function  # the common case: a default plugin taking every argument
        else:
            index = [self.argnames.index(a) for a in impls[0].argnames]

            def bound(*args: Any) -> Any:
                return function(*[args[i] for i in index])

        if self.firstresult:
            self._call = bound
        else:

            def listed(*args: Any) -> Any:
                result = bound(*args)
                return [] if result is None else [result]

            self._call = listed

    def sole_plugin(self) -> object | None:
        """The plugin object behind the only implementation, or None when there are none or several."""
        if self._generation != self._pm.generation:
            self._rebuild()
        return self._sole

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._generation != self._pm.generation:
            self._rebuild()
        if kwargs:
            args = (*args, *(kwargs[a] for a in self.argnames[len(args) :]))
        return self._call(*args)

    @property
    def implementations(self) -> list[str]:
        """Names of the plugins implementing this hook (for health and error messages)."""
        return [impl.plugin_name for impl in self._hook.get_hookimpls()]
