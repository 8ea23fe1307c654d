"""GovernanceCallbackHandler: governs every tool run of the chain or agent it is given to, in on_tool_start.

A synchronous handler with ``raise_error=True``: langchain-core re-raises its exceptions on every path (sync
``invoke``, ``ainvoke``, tools run by agents and langgraph). An async handler's errors are swallowed on some
paths (``ainvoke`` of a sync-only tool), which would fail open, so there is deliberately no async variant;
on async paths langchain-core runs this handler in its executor, so waiting for approval never blocks the
event loop.

langchain-core calls ``on_tool_start`` before the tool body, outside the tool's own error handling: raising
``ToolCallDenied`` / ``EscalationRequired`` there stops the tool, and the exception propagates to whoever
invoked the chain or agent. (To let the model read the refusal and carry on instead, use GovernedTool.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from claw_governance import CallOutcome, Decision, Governor, Outcome, ToolCall, ToolCallDenied
from langchain_core.callbacks import BaseCallbackHandler

from claw_governance_langchain._shared import (
    AGENT_METADATA_KEY,
    FRAMEWORK,
    LC_AGENT_NAME_KEY,
    ActionSpec,
    claim,
    error_outcome,
    inner_run,
    naming_hint,
    outcome_of,
    refusal_error,
    release,
    resolve_action,
)


def _args_from(input_str: str, inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The tool's arguments: ``inputs`` for dict input (injected values already filtered out by
    langchain-core), else the single string input as ``{"input": ...}``."""
    return dict(inputs) if inputs is not None else {"input": input_str}


class GovernanceCallbackHandler(BaseCallbackHandler):
    """Governs tool runs through LangChain callbacks: ``config={"callbacks": [handler]}``.

    ``on_tool_start`` decides the call; DENY raises ``ToolCallDenied``, ESCALATE raises ``EscalationRequired``
    (or waits ``wait_for_approval`` seconds for a human, then runs or raises ``ToolCallDenied``).
    ``on_tool_end`` / ``on_tool_error`` report the outcome for trust and audit.

    The agent id is ``agent_id``, unless a run's metadata names one under ``"claw_agent_id"``
    (``config={"metadata": {"claw_agent_id": "billing-agent"}}``). ``action`` works as for GovernedTool.
    A tool run already governed for the same governor (by a GovernedTool, or by another handler) is left
    alone, so combining them never decides a call twice.
    """

    raise_error: bool = True
    run_inline: bool = False

    def __init__(
        self,
        governor: Governor,
        agent_id: str,
        *,
        action: ActionSpec = None,
        wait_for_approval: float | None = None,
        job_token: str | None = None,
    ) -> None:
        """Create the handler; creates the agent's identity in ``governor`` if it does not exist yet.

        ``job_token``: every tool call the handler sees carries this work-contract token (gov.start_job).
        """
        super().__init__()
        self.job_token = job_token
        governor.agent(agent_id, framework=FRAMEWORK)
        self.governor = governor
        self.agent_id = agent_id
        self.action = action
        self.wait_for_approval = wait_for_approval
        self._runs: dict[UUID, tuple[ToolCall, Decision, float] | None] = {}
        self._known_agents = {agent_id}
        self._lock = threading.Lock()
        self.defaulted_agent = False
        """Set by ``gov.enable()`` when no agent id was given: a run's ``create_agent(name=...)`` then names
        the agent, and a denial for an agent without policy says how to name it."""

    def _agent_for(self, metadata: Mapping[str, Any] | None) -> str:
        agent_id = metadata.get(AGENT_METADATA_KEY) if metadata else None
        if (not isinstance(agent_id, str) or not agent_id.strip()) and self.defaulted_agent and metadata:
            agent_id = metadata.get(LC_AGENT_NAME_KEY)  # create_agent(name=...) names the agent
        if not isinstance(agent_id, str) or not agent_id.strip():
            return self.agent_id
        if agent_id not in self._known_agents:
            with self._lock:
                self.governor.agent(agent_id, framework=FRAMEWORK)
                self._known_agents.add(agent_id)
        return agent_id

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Decide the call before the tool runs; raise to stop it."""
        name = str((serialized or {}).get("name") or kwargs.get("name") or "unknown")
        marker = inner_run.get()
        if marker is not None and marker.take(self.governor, name):
            claim(self.governor, run_id, marker)  # so other handlers for this governor let it through too
            self._runs[run_id] = None  # the GovernedTool reports the outcome; only release the claim
            return
        if not claim(self.governor, run_id, self):
            return  # decided already by another handler for this governor
        try:
            tool_call_id = kwargs.get("tool_call_id")
            args = _args_from(input_str, inputs)
            action = resolve_action(self.action, name, args, tool_call_id)
            call = self.governor.make_call(
                self._agent_for(metadata),
                action,
                args,
                framework=FRAMEWORK,
                call_id=tool_call_id or str(run_id),
                metadata={
                    "tool": name,
                    "run_id": str(run_id),
                    "parent_run_id": str(parent_run_id) if parent_run_id else None,
                    # the session (claw_governance.session): a LangGraph thread, when the run has one
                    "thread_id": (metadata or {}).get("thread_id"),
                },
                job_token=self.job_token,
            )
            decision = self.governor.before_call(call)
            if decision.outcome is Outcome.ESCALATE and self.wait_for_approval:
                decision = self.governor.wait_for_approval(decision, self.wait_for_approval)
            if not decision.allowed:
                error = refusal_error(decision)
                hint = (
                    naming_hint(decision, 'create_agent(name=...), config={"metadata": {"claw_agent_id": ...}}')
                    if self.defaulted_agent
                    else ""
                )
                if hint:
                    error = ToolCallDenied(decision.reason + hint, decision)
                raise error
        except BaseException:
            release(self.governor, run_id)
            raise
        self._runs[run_id] = (call, decision, time.perf_counter())

    def _finish(self, run_id: UUID, outcome: Any) -> None:
        if run_id not in self._runs:
            return
        entry = self._runs.pop(run_id, None)
        release(self.governor, run_id)
        if entry is None:
            return
        call, decision, started = entry
        duration_ms = (time.perf_counter() - started) * 1000
        result: CallOutcome = (
            error_outcome(outcome, duration_ms)
            if isinstance(outcome, BaseException)
            else outcome_of(outcome, duration_ms)
        )
        self.governor.after_call(call, decision, result)

    def on_tool_end(self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        """Report a tool's result (a ToolMessage with status "error" counts as a failure)."""
        self._finish(run_id, output)

    def on_tool_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        """Report a tool that raised."""
        self._finish(run_id, error)


__all__ = ["GovernanceCallbackHandler"]
