"""Model-call receipts for CrewAI: crewai's own ``PRE_MODEL_CALL`` / ``POST_MODEL_CALL`` hooks.

Before a model call the route (``provider/model`` of the agent's LLM) is checked against the work contract's
``models`` (``Governor.check_model``): a route outside it is blocked before the request is sent, by raising
``HookAborted`` (crewai's documented way for a hook to refuse; any other exception it would swallow). After
the call a ``model_call`` receipt is written (``Governor.record_model_call``): hashes of the messages and
the response, the duration and the job the crew runs under. Prompts and completions are never stored.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from claw_governance import Governor
from claw_governance.jobs.receipts import ModelCall
from crewai.hooks import HookAborted
from crewai.hooks.dispatch import InterceptionPoint, register, unregister

from claw_governance_crewai._util import FRAMEWORK, AgentIdSource, resolve_agent_id

log = logging.getLogger("claw_governance.crewai")

_MAX_PENDING = 4096


def _route_of(llm: Any) -> tuple[str, str | None]:
    """``(model, provider)`` of a crewai LLM (``openai/gpt-4o`` or ``model`` + ``provider`` attributes)."""
    if isinstance(llm, str):
        return llm, None
    model = str(getattr(llm, "model", None) or type(llm).__name__)
    provider = getattr(llm, "provider", None)
    return model, provider if isinstance(provider, str) and provider else None


def _messages(context: Any) -> list[dict[str, Any]]:
    return [dict(m) if isinstance(m, dict) else {"content": str(m)} for m in (context.messages or [])]


class CrewAIModelReceipts:
    """Checks and receipts every crewai model call for one governor (``register`` / ``unregister``)."""

    def __init__(self, governor: Governor, *, agent_id: AgentIdSource = None, job_token: str | None = None) -> None:
        self.governor = governor
        self.agent_id = agent_id
        self.job_token = job_token
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[str, str, str | None, list[dict[str, Any]], float]] = {}
        self._registered = False

    def _agent_id(self, context: Any) -> str:
        role = getattr(getattr(context, "agent", None), "role", None)
        return resolve_agent_id(self.agent_id, context, role)

    def before_model_call(self, context: Any) -> None:
        """Refuse a route outside the contract (HookAborted); remember the request for the receipt."""
        try:
            agent_id = self._agent_id(context)
            model, provider = _route_of(context.llm)
            decision = self.governor.check_model(agent_id, model, provider, job_token=self.job_token)
        except Exception as exc:  # fail closed: crewai swallows anything but HookAborted
            raise HookAborted(f"model call blocked: governance error ({type(exc).__name__})") from None
        if not decision.allowed:
            raise HookAborted(f"model call blocked by governance: {decision.reason}")
        with self._lock:
            if len(self._pending) >= _MAX_PENDING:
                self._pending.clear()
            self._pending[id(context.messages)] = (agent_id, model, provider, _messages(context), time.perf_counter())

    def after_model_call(self, context: Any) -> None:
        """Write the receipt (never raises: the call already happened)."""
        try:
            with self._lock:
                pending = self._pending.pop(id(context.messages), None)
            if pending is None:
                agent_id = self._agent_id(context)
                model, provider = _route_of(context.llm)
                request: list[dict[str, Any]] | None = None
                duration = None
            else:
                agent_id, model, provider, request, started = pending
                duration = (time.perf_counter() - started) * 1000
            self.governor.record_model_call(
                ModelCall(
                    agent_id,
                    model,
                    provider,
                    request=request,
                    response=context.response,
                    duration_ms=duration,
                    framework=FRAMEWORK,
                ),
                job_token=self.job_token,
            )
        except Exception as exc:
            log.error("claw-governance crewai model receipt failed: %s: %s", type(exc).__name__, exc)

    def register(self) -> None:
        """Add the global model-call hooks (idempotent)."""
        with self._lock:
            if not self._registered:
                register(InterceptionPoint.PRE_MODEL_CALL, self.before_model_call)
                register(InterceptionPoint.POST_MODEL_CALL, self.after_model_call)
                self._registered = True

    def unregister(self) -> None:
        """Remove them (idempotent)."""
        with self._lock:
            if self._registered:
                unregister(InterceptionPoint.PRE_MODEL_CALL, self.before_model_call)
                unregister(InterceptionPoint.POST_MODEL_CALL, self.after_model_call)
                self._registered = False
