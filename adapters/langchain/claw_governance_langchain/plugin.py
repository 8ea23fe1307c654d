"""The adapter's claw-governance plugin (entry point ``langchain`` in the group ``claw_governance``).

``gov.enable()`` calls ``claw_enable``: every LangChain tool run in the process is then governed (see
process_wide.py); ``gov.disable()`` / ``gov.close()`` undo it. langchain-core is imported only then, so
loading this plugin (every ``Governor`` and every ``claw-gov`` command does) costs nothing.
"""

from __future__ import annotations

import sys
from typing import Any

from claw_governance import Governor
from claw_governance.hookspecs import hookimpl

_IMPL = "claw_governance_langchain.process_wide"


@hookimpl
def claw_enable(governor: Governor) -> None:
    """``Governor.enable()``: govern every LangChain tool run in the process."""
    from claw_governance_langchain.process_wide import enable_langchain_governance

    enable_langchain_governance(governor)


@hookimpl
def claw_disable(governor: Governor) -> None:
    """``Governor.disable()`` / ``close()``: undo ``claw_enable`` (imports nothing if it never ran)."""
    module = sys.modules.get(_IMPL)
    if module is not None:
        module.disable_langchain_governance(governor)


@hookimpl
def claw_health(governor: Governor) -> dict[str, Any] | None:
    """Report whether LangChain runs are governed process-wide by this governor."""
    module = sys.modules.get(_IMPL)
    handler = module.handler_for(governor) if module is not None else None
    return {"langchain": {"status": "ok", "process_wide": handler is not None,
                          "agent_id": handler.agent_id if handler is not None else None}}
