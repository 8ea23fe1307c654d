"""Process-wide governance: every LangChain tool run in the process, without code changes.

``Governor(...).enable()`` (or ``enable_adapters=True``) calls ``claw_enable`` in plugin.py, which puts a
GovernanceCallbackHandler into every callback manager langchain-core configures, through langchain-core's
configure hook (``langchain_core.tracers.context.register_configure_hook``, the mechanism its own tracers
use). Existing application code needs no change: every ``tool.invoke``, chain, agent and langgraph ToolNode
run is governed. ``claw_disable`` (``gov.disable()`` / ``gov.close()``) takes it out again.

The configure hook reads a variable through ``.get()``; this adapter gives it a process-wide slot instead of a
ContextVar, so runs started in any thread (including threads created before ``enable()``) are governed, not
only those that inherited a context. When several governors are enabled, the most recently enabled one
governs; disabling it hands over to the previous one.
"""

from __future__ import annotations

import threading
from typing import Any

from claw_governance import Governor
from langchain_core.callbacks import BaseCallbackHandler

from claw_governance_langchain._shared import ActionSpec, default_agent_id
from claw_governance_langchain.callbacks import GovernanceCallbackHandler


class _ProcessWideSlot:
    """What langchain-core's configure hook reads with ``.get()``: the active handler, or None."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stack: list[tuple[Governor, GovernanceCallbackHandler]] = []
        self._registered = False

    def get(self, default: Any = None) -> BaseCallbackHandler | None:
        """The handler of the most recently enabled governor (ContextVar.get's signature)."""
        stack = self._stack
        return stack[-1][1] if stack else default

    def push(self, governor: Governor, handler: GovernanceCallbackHandler) -> GovernanceCallbackHandler:
        with self._lock:
            for gov, existing in self._stack:
                if gov is governor:
                    return existing  # idempotent
            if not self._registered:
                from langchain_core.tracers.context import register_configure_hook

                # inheritable: child runs (a tool inside a chain or agent) get the handler too.
                register_configure_hook(self, True)  # type: ignore[arg-type]
                self._registered = True
            self._stack = [*self._stack, (governor, handler)]
            return handler

    def remove(self, governor: Governor) -> bool:
        with self._lock:
            kept = [(g, h) for g, h in self._stack if g is not governor]
            removed = len(kept) != len(self._stack)
            self._stack = kept
            return removed

    def handler_for(self, governor: Governor) -> GovernanceCallbackHandler | None:
        for gov, handler in self._stack:
            if gov is governor:
                return handler
        return None


_SLOT = _ProcessWideSlot()


def enable_langchain_governance(
    governor: Governor,
    agent_id: str | None = None,
    *,
    action: ActionSpec = None,
    wait_for_approval: float | None = None,
) -> GovernanceCallbackHandler:
    """Govern every LangChain tool run in this process with ``governor``; returns the handler in use.

    ``agent_id`` defaults to the run's ``create_agent(name=...)``, else ``$CLAW_AGENT_ID``, else
    ``"langchain-agent"``; a run may name its agent with ``config={"metadata": {"claw_agent_id": "..."}}``.
    Idempotent per governor. ``gov.enable()`` calls this
    with the defaults.
    """
    existing = _SLOT.handler_for(governor)
    if existing is not None:
        return existing
    handler = GovernanceCallbackHandler(
        governor, agent_id or default_agent_id(), action=action, wait_for_approval=wait_for_approval
    )
    # No agent id given: a run's create_agent(name=...) names its agent, and the first denial for an agent
    # without a policy says how to name it (a new user's most likely first surprise).
    handler.defaulted_agent = agent_id is None
    return _SLOT.push(governor, handler)


def disable_langchain_governance(governor: Governor) -> bool:
    """Stop governing LangChain runs process-wide with ``governor``; True if it was enabled."""
    return _SLOT.remove(governor)


def active_handler() -> GovernanceCallbackHandler | None:
    """The handler that governs LangChain runs process-wide right now, if any."""
    handler = _SLOT.get()
    return handler if isinstance(handler, GovernanceCallbackHandler) else None


def handler_for(governor: Governor) -> GovernanceCallbackHandler | None:
    """The process-wide handler of ``governor``, if it is enabled."""
    return _SLOT.handler_for(governor)


__all__ = ["active_handler", "disable_langchain_governance", "enable_langchain_governance", "handler_for"]
