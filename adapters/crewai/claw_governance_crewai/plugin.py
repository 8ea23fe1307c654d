"""The adapter's claw-governance plugin (entry point ``crewai`` in the group ``claw_governance``).

``gov.enable()`` calls ``claw_enable``: every CrewAI tool call in the process is then governed by ``gov``;
``gov.disable()`` / ``gov.close()`` call ``claw_disable``, which removes the hooks again. crewai itself is
imported only then, so loading this plugin costs nothing for governors that never enable adapters.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from claw_governance import Governor
from claw_governance.hookspecs import hookimpl


@hookimpl
def claw_enable(governor: Governor) -> None:
    """Register the global crewai before/after tool-call hooks for ``governor`` (idempotent)."""
    from claw_governance_crewai.hooks import enable_crewai_governance

    enable_crewai_governance(governor)


@hookimpl
def claw_disable(governor: Governor) -> None:
    """Remove ``governor``'s crewai hooks. Does not import crewai if nothing imported it."""
    module = sys.modules.get("claw_governance_crewai.hooks")
    if module is not None:
        module.disable_crewai_governance(governor)


@hookimpl
def claw_health(governor: Governor) -> dict[str, Any] | None:
    """Report whether crewai tool calls are governed by ``governor`` in this process."""
    module = sys.modules.get("claw_governance_crewai.hooks")
    enabled = bool(module is not None and module.is_enabled(governor))
    installed = importlib.util.find_spec("crewai") is not None
    return {"crewai": {"status": "ok" if installed else "degraded", "installed": installed,
                       "hooks_enabled": enabled}}
