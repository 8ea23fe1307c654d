"""The adapter's claw-governance plugin (entry point ``langchain`` in the group ``claw_governance``).

``gov.enable()`` calls ``claw_enable``: every LangChain tool run in the process is then governed (see
process_wide.py); ``gov.disable()`` / ``gov.close()`` undo it. ``gov.enable()`` never imports langchain-core
itself: if the process has not imported it yet, governance goes in right after its first import
(claw_governance.imports), so loading this plugin (every ``Governor`` and every ``claw-gov`` command does)
and enabling it in a process without LangChain cost nothing.
"""

from __future__ import annotations

import sys
from typing import Any

from claw_governance import Governor
from claw_governance.hookspecs import hookimpl
from claw_governance.imports import PendingImport, when_imported

_IMPL = "claw_governance_langchain.process_wide"
_waiting: dict[int, PendingImport] = {}


@hookimpl
def claw_enable(governor: Governor) -> None:
    """``Governor.enable()``: govern every LangChain tool run in the process (from its import on)."""

    def enable(_: Any) -> None:
        _waiting.pop(id(governor), None)
        from claw_governance_langchain.process_wide import enable_langchain_governance

        enable_langchain_governance(governor)

    if id(governor) in _waiting:
        return
    pending = when_imported("langchain_core", enable)
    if pending is not None:
        _waiting[id(governor)] = pending


@hookimpl
def claw_disable(governor: Governor) -> None:
    """``Governor.disable()`` / ``close()``: undo ``claw_enable`` (imports nothing if it never ran)."""
    pending = _waiting.pop(id(governor), None)
    if pending is not None:
        pending.cancel()
    module = sys.modules.get(_IMPL)
    if module is not None:
        module.disable_langchain_governance(governor)


@hookimpl
def claw_health(governor: Governor) -> dict[str, Any] | None:
    """Report whether LangChain runs are governed process-wide by this governor."""
    module = sys.modules.get(_IMPL)
    handler = module.handler_for(governor) if module is not None else None
    return {
        "langchain": {
            "status": "ok",
            "process_wide": handler is not None,
            "agent_id": handler.agent_id if handler is not None else None,
        }
    }
