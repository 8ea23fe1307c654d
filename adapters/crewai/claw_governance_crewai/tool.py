"""``GovernedCrewTool``: explicit, per-tool governance for users who prefer wrapping to global hooks.

crewai's text/ReAct path calls a tool's ``_run`` directly (through ``CrewStructuredTool(func=tool._run)``),
its native function-calling path calls ``run()`` which then calls ``_run``. So the wrapper decides in
``_run`` (and ``_arun``): that is the one method both paths reach.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Iterable
from typing import Any, Literal

from claw_governance import (
    CallOutcome,
    Decision,
    EscalationRequired,
    Governor,
    Outcome,
    ToolCall,
    ToolCallDenied,
)
from crewai.tools import BaseTool
from crewai.tools.tool_failure import ToolFailure
from crewai.utilities.string_utils import sanitize_tool_name
from pydantic import PrivateAttr

from claw_governance_crewai._util import FRAMEWORK, blocked_message, jsonable

OnBlock = Literal["message", "raise"]


class GovernedCrewTool(BaseTool):
    """A crewai ``BaseTool`` that runs the wrapped tool only when the governor allows the call.

    ``GovernedCrewTool(tool, governor=gov, agent_id="researcher")`` keeps the wrapped tool's name,
    description and argument schema, so the model sees the same tool. The action is
    ``tool:<sanitized name>`` unless ``action=`` says otherwise. A refused call returns the reason as the
    tool's result (``on_block="message"``, the default: the model learns why) or raises
    ``ToolCallDenied`` / ``EscalationRequired`` (``on_block="raise"``). ``wait_for_approval`` seconds
    make a call that needs a human wait for the decision instead of being refused at once.

    When global hooks (:func:`enable_crewai_governance`) are on as well, they leave this tool to itself,
    so a call is decided once.
    """

    _governor: Governor = PrivateAttr()
    _inner: BaseTool = PrivateAttr()
    _agent_id: str = PrivateAttr()
    _action: str = PrivateAttr()
    _wait: float | None = PrivateAttr(default=None)
    _on_block: OnBlock = PrivateAttr(default="message")
    _known: bool = PrivateAttr(default=False)
    _job_token: str | None = PrivateAttr(default=None)

    def __init__(
        self,
        tool: BaseTool,
        *,
        governor: Governor,
        agent_id: str,
        action: str | None = None,
        wait_for_approval: float | None = None,
        on_block: OnBlock = "message",
        job_token: str | None = None,
    ) -> None:
        if not isinstance(tool, BaseTool):
            raise TypeError(f"GovernedCrewTool wraps a crewai BaseTool, not {type(tool).__name__}")
        if not isinstance(agent_id, str) or not agent_id.strip():
            raise ValueError(f"agent_id must be a non-empty string, not {agent_id!r}")
        if on_block not in ("message", "raise"):
            raise ValueError(f"on_block must be 'message' or 'raise', not {on_block!r}")
        super().__init__(
            name=tool.name,
            description=tool.description,
            args_schema=tool.args_schema,
            result_as_answer=tool.result_as_answer,
            max_usage_count=tool.max_usage_count,
            cache_function=tool.cache_function,
        )
        self._governor = governor
        self._inner = tool
        self._agent_id = agent_id
        self._action = action or f"tool:{sanitize_tool_name(tool.name)}"
        self._wait = wait_for_approval
        self._on_block = on_block
        self._job_token = job_token

    @property
    def wrapped(self) -> BaseTool:
        """The tool this one governs."""
        return self._inner

    @property
    def action(self) -> str:
        """The action name the policy sees, e.g. ``tool:web_search``."""
        return self._action

    # -------------------------------------------------------------------------------------------- run

    def _decide(self, kwargs: dict[str, Any]) -> tuple[ToolCall, Decision]:
        governor = self._governor
        if not self._known:
            governor.agent(self._agent_id, framework=FRAMEWORK)
            self._known = True
        call = governor.make_call(
            self._agent_id,
            self._action,
            kwargs,
            framework=FRAMEWORK,
            metadata={"tool": self.name, "wrapper": "GovernedCrewTool"},
            job_token=self._job_token,
        )
        decision = governor.before_call(call)
        if decision.outcome is Outcome.ESCALATE and self._wait:
            decision = governor.wait_for_approval(decision, self._wait)
        return call, decision

    def _refuse(self, decision: Decision) -> str:
        if self._on_block == "raise":
            if decision.outcome is Outcome.ESCALATE:
                raise EscalationRequired(decision.reason, decision.escalation_id, decision)
            raise ToolCallDenied(decision.reason, decision)
        return blocked_message(decision)

    def _record(
        self, call: ToolCall, decision: Decision, started: float, result: Any, error: BaseException | None
    ) -> None:
        duration_ms = (time.perf_counter() - started) * 1000.0
        if error is not None:
            outcome = CallOutcome(False, None, f"{type(error).__name__}: {error}", duration_ms)
        elif isinstance(result, ToolFailure):
            outcome = CallOutcome(False, None, result.as_agent_message(), duration_ms)
        else:
            outcome = CallOutcome(True, jsonable(result), None, duration_ms)
        self._governor.after_call(call, decision, outcome)

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        """Decide; run the wrapped tool's ``_run`` only on ALLOW; record the outcome."""
        if args:
            raise TypeError(f"{self.name} takes keyword arguments only")
        call, decision = self._decide(kwargs)
        if decision.allowed is not True:
            return self._refuse(decision)
        started = time.perf_counter()
        try:
            result = self._inner._run(**kwargs)
            if inspect.iscoroutine(result):
                result = asyncio.run(result)
        except Exception as exc:
            self._record(call, decision, started, None, exc)
            raise
        self._record(call, decision, started, result, None)
        return result

    async def _arun(self, *args: Any, **kwargs: Any) -> Any:
        """Async ``_run``: the wrapped tool's ``_arun`` if it has one, else its ``_run`` in a thread."""
        if args:
            raise TypeError(f"{self.name} takes keyword arguments only")
        call, decision = await asyncio.to_thread(self._decide, kwargs)
        if decision.allowed is not True:
            return self._refuse(decision)
        started = time.perf_counter()
        try:
            if type(self._inner)._arun is not BaseTool._arun:
                result = await self._inner._arun(**kwargs)
            else:
                result = await asyncio.to_thread(self._inner._run, **kwargs)
                if inspect.iscoroutine(result):
                    result = await result
        except Exception as exc:
            self._record(call, decision, started, None, exc)
            raise
        self._record(call, decision, started, result, None)
        return result


def govern_crew_tools(
    tools: Iterable[BaseTool],
    *,
    governor: Governor,
    agent_id: str,
    wait_for_approval: float | None = None,
    on_block: OnBlock = "message",
    job_token: str | None = None,
) -> list[BaseTool]:
    """Wrap each tool in a :class:`GovernedCrewTool` (tools already wrapped are kept as they are)."""
    return [
        tool
        if isinstance(tool, GovernedCrewTool)
        else GovernedCrewTool(
            tool,
            governor=governor,
            agent_id=agent_id,
            wait_for_approval=wait_for_approval,
            on_block=on_block,
            job_token=job_token,
        )
        for tool in tools
    ]
