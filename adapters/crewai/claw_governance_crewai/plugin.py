"""The adapter's claw-governance plugin (entry point ``crewai`` in the group ``claw_governance``).

``gov.enable()`` calls ``claw_enable``: every CrewAI tool call in the process is then governed by ``gov``;
``gov.disable()`` / ``gov.close()`` call ``claw_disable``, which removes the hooks again. ``gov.enable()``
never imports crewai itself: if the process has not imported it yet, the hooks go in right after its first
``import crewai`` (claw_governance.imports), so a LangChain-only process does not pay for crewai.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from claw_governance import Governor
from claw_governance.hookspecs import hookimpl
from claw_governance.imports import PendingImport, when_imported

# Governors whose enable() waits for the process to import crewai (id(governor) -> the pending hook).
_waiting: dict[int, PendingImport] = {}


@hookimpl
def claw_enable(governor: Governor) -> None:
    """Register the global crewai before/after tool-call hooks for ``governor`` (idempotent), now if crewai
    is imported, else as soon as it is."""

    def enable(_: Any) -> None:
        _waiting.pop(id(governor), None)
        from claw_governance_crewai.hooks import enable_crewai_governance

        enable_crewai_governance(governor)

    if id(governor) in _waiting:
        return
    pending = when_imported("crewai", enable)
    if pending is not None:
        _waiting[id(governor)] = pending


@hookimpl
def claw_disable(governor: Governor) -> None:
    """Remove ``governor``'s crewai hooks. Does not import crewai if nothing imported it."""
    pending = _waiting.pop(id(governor), None)
    if pending is not None:
        pending.cancel()
    module = sys.modules.get("claw_governance_crewai.hooks")
    if module is not None:
        module.disable_crewai_governance(governor)


@hookimpl
def claw_health(governor: Governor) -> dict[str, Any] | None:
    """Report whether crewai tool calls are governed by ``governor`` in this process."""
    module = sys.modules.get("claw_governance_crewai.hooks")
    enabled = bool(module is not None and module.is_enabled(governor))
    installed = importlib.util.find_spec("crewai") is not None
    return {
        "crewai": {
            "status": "ok" if installed else "degraded",
            "installed": installed,
            "hooks_enabled": enabled,
            "waiting_for_import": id(governor) in _waiting,
        }
    }
