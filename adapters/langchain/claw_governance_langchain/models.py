"""Model-call receipts for LangChain: a callback handler that sees every chat model and LLM call.

``on_chat_model_start`` / ``on_llm_start`` check the route (``ls_provider`` / ``ls_model_name`` that
LangChain puts in a model run's metadata, else the invocation parameters) against the work contract's
``models``; a route outside it raises, and because the handler is synchronous with ``raise_error = True``
the exception propagates out of the model call before any request is sent. ``on_llm_end`` writes the
``model_call`` receipt: hashes of the messages and of the generations, token usage when the model reports
it, the tool call ids it asked for, and the duration. Prompts and completions are never stored.

    chain.invoke(x, config={"callbacks": [ModelReceiptHandler(governor=gov, agent_id="research-agent")]})
"""

from __future__ import annotations

import threading
import time
from typing import Any
from uuid import UUID

from claw_governance import Governor
from claw_governance.errors import ClawGovernanceError
from claw_governance.jobs.receipts import ModelCall
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

FRAMEWORK = "langchain"
_MAX_PENDING = 4096


class ModelCallBlocked(ClawGovernanceError):
    """A model call refused by the work contract (raised before the request is sent)."""


def route_of(
    metadata: dict[str, Any] | None, invocation: dict[str, Any] | None, serialized: dict[str, Any] | None
) -> tuple[str, str | None]:
    """``(model, provider)`` of a LangChain model run."""
    metadata = metadata or {}
    invocation = invocation or {}
    provider = metadata.get("ls_provider")
    model = (
        metadata.get("ls_model_name")
        or invocation.get("model")
        or invocation.get("model_name")
        or invocation.get("_type")
        or (serialized or {}).get("name")
        or "unknown"
    )
    return str(model), str(provider) if provider else None


def _messages_json(messages: Any) -> Any:
    try:
        return [
            [{"type": getattr(m, "type", None), "content": getattr(m, "content", str(m))} for m in batch]
            for batch in messages
        ]
    except TypeError:
        return str(messages)


class ModelReceiptHandler(BaseCallbackHandler):
    """Checks each model route against the contract and writes a ``model_call`` receipt per model call."""

    raise_error = True  # a refusal must stop the call, not become a logged warning

    def __init__(self, governor: Governor, agent_id: str, *, job_token: str | None = None) -> None:
        self.governor = governor
        self.agent_id = agent_id
        self.job_token = job_token
        self._lock = threading.Lock()
        self._pending: dict[UUID, tuple[str, str | None, Any, float]] = {}

    def _start(self, run_id: UUID, request: Any, serialized: dict[str, Any] | None, kwargs: dict[str, Any]) -> None:
        model, provider = route_of(kwargs.get("metadata"), kwargs.get("invocation_params"), serialized)
        decision = self.governor.check_model(self.agent_id, model, provider, job_token=self.job_token)
        if not decision.allowed:
            raise ModelCallBlocked(f"model call blocked by governance: {decision.reason}")
        with self._lock:
            if len(self._pending) >= _MAX_PENDING:
                self._pending.clear()
            self._pending[run_id] = (model, provider, request, time.perf_counter())

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[Any]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        """Check the route before a chat model is called."""
        self._start(run_id, _messages_json(messages), serialized, kwargs)

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID, **kwargs: Any) -> None:
        """Check the route before a (completion) LLM is called."""
        self._start(run_id, list(prompts), serialized, kwargs)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """Write the receipt of a finished model call."""
        with self._lock:
            pending = self._pending.pop(run_id, None)
        if pending is None:
            return
        model, provider, request, started = pending
        usage: dict[str, int] = {}
        tool_call_ids: list[str] = []
        generations: list[Any] = []
        for batch in response.generations:
            for generation in batch:
                message = getattr(generation, "message", None)
                generations.append(getattr(message, "content", None) if message is not None else generation.text)
                for key, value in (getattr(message, "usage_metadata", None) or {}).items():
                    if isinstance(value, int) and not isinstance(value, bool):
                        usage[key] = usage.get(key, 0) + value
                tool_call_ids += [str(c.get("id")) for c in getattr(message, "tool_calls", None) or [] if c.get("id")]
        self.governor.record_model_call(
            ModelCall(
                self.agent_id,
                model,
                provider,
                request=request,
                response=generations,
                usage=usage,
                duration_ms=(time.perf_counter() - started) * 1000,
                tool_call_ids=tool_call_ids,
                framework=FRAMEWORK,
                run_id=str(run_id),
            ),
            job_token=self.job_token,
        )

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget a failed call (no receipt: no response came back)."""
        with self._lock:
            self._pending.pop(run_id, None)
