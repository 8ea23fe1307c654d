"""Framework-wide governance of CrewAI tool calls through crewai's own before/after tool-call hooks.

crewai runs every ``pre_tool_call`` hook before a tool runs, on both of its tool paths (the text/ReAct
path and native function calling), and every ``post_tool_call`` hook afterwards, also for a blocked call.
Its dispatcher swallows any exception other than ``HookAborted`` (fail open), so the before-hook here is
written the other way round: the call goes on only when the governor's decision is ALLOW; every other
outcome, and any error of ours, ends in ``HookAborted``.

The after-hook records the outcome of an allowed call (trust, ``agent_action`` audit entry) and, for a
call we blocked, replaces crewai's generic "Tool execution blocked by hook" text with our reason, so the
model learns why.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from claw_governance import AuditEvent, CallOutcome, Decision, Governor, Outcome, ToolCall
from crewai.hooks import HookAborted, ToolCallHookContext
from crewai.hooks.dispatch import (
    InterceptionPoint,
    get_scoped_hooks,
    register,
    register_scoped,
    scoped_hooks,
    unregister,
)
from crewai.tools.tool_failure import ToolFailure

from claw_governance_crewai._util import (
    FRAMEWORK,
    AgentIdSource,
    blocked_message,
    error_message,
    jsonable,
    resolve_agent_id,
)

log = logging.getLogger("claw_governance.crewai")

ABORT_SOURCE = "claw-governance"
_MAX_PENDING = 4096  # calls between before- and after-hook; a leak guard, far above any real concurrency


def _react_error_prefix() -> str:
    """The start of the text crewai's ReAct path gives the model when a tool raised (from its i18n file)."""
    try:
        from crewai.utilities.i18n import I18N_DEFAULT

        template = I18N_DEFAULT.errors("tool_usage_exception")
        prefix = template.split("{", 1)[0].strip()
        return prefix or "I encountered an error while trying to use the tool."
    except Exception:  # an i18n change must not break governance; fall back to the 1.15 text
        return "I encountered an error while trying to use the tool."


_REACT_ERROR = _react_error_prefix()
_NATIVE_ERROR = "Error executing tool: "


def _error_text(raw_result: Any) -> str | None:
    """The error in the text crewai builds from a caught exception (native or ReAct path), else None."""
    if isinstance(raw_result, str):
        if raw_result.startswith(_NATIVE_ERROR):
            return raw_result[len(_NATIVE_ERROR) :] or raw_result
        stripped = raw_result.lstrip()
        if stripped.startswith(_REACT_ERROR):
            return stripped.split("\n", 1)[0]
    return None


def _tools_errors(task: Any) -> int | None:
    """crewai's own count of tool exceptions of a task (``Task.tools_errors``), or None without a task."""
    value = getattr(task, "tools_errors", None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def tool_error(raw_result: Any, errors_before: int | None = None, errors_after: int | None = None) -> str | None:
    """The error of a tool run as crewai reports it to the after-hooks, or ``None`` if the tool succeeded.

    Only crewai's real failure signals count, never the text of an output (a hostile web page can start
    with anything): a ``crewai.tools.ToolFailure`` the tool returned, or an exception the tool raised.
    crewai catches that exception itself, so a hook never sees it; what it does do, on both tool paths and
    before the after-hooks run, is count it in ``Task.tools_errors``. A call is a failure when that count
    went up while it ran AND crewai's error text is the result (the text alone proves nothing; the
    count alone could be a retry that then succeeded). Without a task there is no count: only a
    ``ToolFailure`` is a failure then.
    """
    if isinstance(raw_result, ToolFailure):
        return raw_result.as_agent_message()
    if errors_before is None or errors_after is None or errors_after <= errors_before:
        return None
    return _error_text(raw_result)


@dataclass(slots=True)
class _Pending:
    """One tool call between our before-hook and our after-hook."""

    tool_input: dict[str, Any]  # kept so its id() cannot be reused while we wait for the after-hook
    call: ToolCall | None
    decision: Decision | None
    message: str | None  # the text the model should read when the call was blocked
    started: float
    errors_before: int | None = None  # the task's ``tools_errors`` when the call was allowed


class CrewAIGovernance:
    """Governs CrewAI tool calls for one governor through crewai's tool-call hooks.

    Use :func:`enable_crewai_governance` (process-wide) or :func:`crewai_governance` (one ``with`` block,
    e.g. one kickoff) rather than building this directly.

    ``agent_id``: ``None`` names the agent after the crewai agent's role, slugified ("Senior Researcher"
    -> ``senior-researcher``); a string names every agent the same; a function receives the
    ``ToolCallHookContext`` and returns the id. ``wait_for_approval``: seconds a call that needs a human
    waits (blocking the crew) for the decision before it is refused; ``None`` refuses at once.
    ``job_token``: a work-contract job token (``gov.start_job(...).token``) every call carries.
    """

    def __init__(
        self,
        governor: Governor,
        *,
        agent_id: AgentIdSource = None,
        wait_for_approval: float | None = None,
        job_token: str | None = None,
    ) -> None:
        self.governor = governor
        self.agent_id = agent_id
        self.wait_for_approval = wait_for_approval
        self.job_token = job_token
        self.receipts: Any = None  # the model-call receipts registered with this gate (enable_crewai_governance)
        self._known_agents: set[str] = set()
        self._pending: OrderedDict[int, _Pending] = OrderedDict()
        self._lock = threading.Lock()
        self._registered = False

    # ----------------------------------------------------------------------------------------- hooks

    def before_tool_call(self, context: ToolCallHookContext) -> None:
        """crewai ``pre_tool_call`` hook: returns (lets the tool run) only on ALLOW; else ``HookAborted``.

        Any error of ours also ends in ``HookAborted``: crewai would swallow any other exception and run
        the tool (fail open), so none may leave this function.
        """
        message = "Tool call blocked by claw-governance; it did not run."
        try:
            verdict = self._admit(context)
            if verdict is True:
                return None
            if isinstance(verdict, str):
                message = verdict
        except Exception as exc:
            message = self._failed(context, exc)
        raise HookAborted(message, source=ABORT_SOURCE)

    def after_tool_call(self, context: ToolCallHookContext) -> str | None:
        """crewai ``post_tool_call`` hook: records an allowed call's outcome; explains a blocked one."""
        try:
            return self._after(context)
        except Exception as exc:  # never let crewai swallow and print our error without a log line
            log.error("claw-governance crewai after-hook failed: %s: %s", type(exc).__name__, exc)
            return None

    # ----------------------------------------------------------------------------------------- logic

    def _admit(self, context: ToolCallHookContext) -> bool | str:
        """``True`` when the call may run; otherwise the text the model should read instead."""
        governor = self.governor
        if _governs_itself(context):  # a GovernedCrewTool decides in its own _run; do not decide twice
            return True
        agent = context.agent
        role = getattr(agent, "role", None)
        agent_id = resolve_agent_id(self.agent_id, context, role)
        if agent_id not in self._known_agents:
            governor.agent(agent_id, framework=FRAMEWORK)  # creates the identity; raises if it cannot
            self._known_agents.add(agent_id)
        task = context.task
        metadata: dict[str, Any] = {"tool": context.tool_name}
        if role:
            metadata["agent_role"] = role
        if task is not None:
            metadata["task"] = getattr(task, "name", None) or str(getattr(task, "description", ""))[:80]
        call = governor.make_call(
            agent_id,
            f"tool:{context.tool_name}",
            dict(context.tool_input),
            framework=FRAMEWORK,
            metadata=metadata,
            job_token=self.job_token,
        )
        decision = governor.before_call(call)
        if decision.outcome is Outcome.ESCALATE and self.wait_for_approval:
            decision = governor.wait_for_approval(decision, self.wait_for_approval)
        if decision.allowed is True:
            self._remember(context, call, decision, None)
            return True
        message = blocked_message(decision)
        self._remember(context, call, decision, message)
        return message

    def _failed(self, context: ToolCallHookContext, exc: Exception) -> str:
        """Turn an error of ours into the blocked call's text. Never raises."""
        try:
            message = error_message(exc)
        except Exception:  # even str(exc) may fail
            message = "Tool call blocked: governance error; it did not run (fail closed)."
        try:
            log.error("claw-governance crewai hook failed, call blocked: %s", message)
            self._remember(context, None, None, message)
        except Exception:
            pass
        # best effort: the trail shows the refusal although the pipeline never decided
        with contextlib.suppress(Exception):
            self.governor.record(
                AuditEvent(
                    "policy_decision",
                    None,
                    f"tool:{context.tool_name}",
                    context=jsonable(dict(context.tool_input)),
                    decision={
                        "outcome": Outcome.DENY.value,
                        "allowed": False,
                        "reason": message,
                        "rule": None,
                        "stage": "adapter",
                        "escalation_id": None,
                    },
                    details={"framework": FRAMEWORK, "agent_role": getattr(context.agent, "role", None)},
                )
            )
        return message

    def _remember(
        self, context: ToolCallHookContext, call: ToolCall | None, decision: Decision | None, message: str | None
    ) -> None:
        tool_input = context.tool_input
        entry = _Pending(tool_input, call, decision, message, time.perf_counter(), _tools_errors(context.task))
        with self._lock:
            self._pending[id(tool_input)] = entry
            while len(self._pending) > _MAX_PENDING:
                self._pending.popitem(last=False)

    def _after(self, context: ToolCallHookContext) -> str | None:
        key = id(context.tool_input)
        with self._lock:
            pending = self._pending.get(key)
            if pending is None or pending.tool_input is not context.tool_input:
                return None  # not a call we decided (e.g. another hook blocked it before ours ran)
            del self._pending[key]
        if pending.message is not None:  # we blocked it: the model reads our reason, not crewai's text
            return pending.message
        if pending.call is None or pending.decision is None:
            return None  # a GovernedCrewTool call: the tool recorded its own outcome
        raw = context.raw_tool_result
        # Every call we allowed gets its agent_action entry, whatever its output says: a tool's output that
        # starts with crewai's "Tool execution blocked by hook." is still a tool's output (nothing in the
        # hook context tells a later hook's block from such an output, so the text decides nothing).
        error = tool_error(raw, pending.errors_before, _tools_errors(context.task))
        duration_ms = (time.perf_counter() - pending.started) * 1000.0
        self.governor.after_call(
            pending.call,
            pending.decision,
            CallOutcome(error is None, None if error is not None else jsonable(raw), error, duration_ms),
        )
        return None

    # ---------------------------------------------------------------------------------- registration

    def register(self) -> None:
        """Add both hooks to crewai's global hook lists (idempotent)."""
        with self._lock:
            if self._registered:
                return
            register(InterceptionPoint.PRE_TOOL_CALL, self.before_tool_call)
            register(InterceptionPoint.POST_TOOL_CALL, self.after_tool_call)
            self._registered = True

    def unregister(self) -> None:
        """Remove both hooks from crewai's global hook lists (idempotent)."""
        with self._lock:
            unregister(InterceptionPoint.PRE_TOOL_CALL, self.before_tool_call)
            unregister(InterceptionPoint.POST_TOOL_CALL, self.after_tool_call)
            self._registered = False
            self._pending.clear()

    @property
    def registered(self) -> bool:
        """True while the hooks are in crewai's global lists."""
        return self._registered


def _governs_itself(context: ToolCallHookContext) -> bool:
    from claw_governance_crewai.tool import GovernedCrewTool

    tool = context.tool
    original = getattr(tool, "_original_tool", None)
    return isinstance(tool, GovernedCrewTool) or isinstance(original, GovernedCrewTool)


_enabled: dict[int, CrewAIGovernance] = {}
_enabled_lock = threading.Lock()


def enable_crewai_governance(
    governor: Governor,
    *,
    agent_id: AgentIdSource = None,
    wait_for_approval: float | None = None,
    job_token: str | None = None,
    model_receipts: bool | None = None,
) -> CrewAIGovernance:
    """Govern every CrewAI tool call in this process with ``governor`` (global crewai hooks).

    No change to crew code: call this (or ``governor.enable()``) before ``crew.kickoff()``. Idempotent per
    governor: a second call returns the registered instance unchanged. Undo with
    :func:`disable_crewai_governance`. See :class:`CrewAIGovernance` for ``agent_id``,
    ``wait_for_approval`` and ``job_token``. ``model_receipts`` also checks every model call against the work
    contract's ``models`` and writes a ``model_call`` receipt for it (see ``claw_governance_crewai.models``);
    ``None`` (default) turns it on when a policy in force is a work contract with ``models`` or
    ``receipts: required``.
    """
    with _enabled_lock:
        current = _enabled.get(id(governor))
        if current is not None and current.governor is governor:
            return current
        gate = CrewAIGovernance(governor, agent_id=agent_id, wait_for_approval=wait_for_approval, job_token=job_token)
        gate.register()
        if model_receipts is None:
            model_receipts = any(
                doc.contract is not None
                and (doc.contract.models_allow or doc.contract.models_deny or doc.contract.receipts_required)
                for doc in governor.policy.documents
            )
        if model_receipts:
            from claw_governance_crewai.models import CrewAIModelReceipts

            gate.receipts = CrewAIModelReceipts(governor, agent_id=agent_id, job_token=job_token)
            gate.receipts.register()
        _enabled[id(governor)] = gate
        return gate


def disable_crewai_governance(governor: Governor) -> bool:
    """Remove ``governor``'s global crewai hooks; returns whether any were registered."""
    with _enabled_lock:
        gate = _enabled.pop(id(governor), None)
    if gate is None or gate.governor is not governor:
        return False
    gate.unregister()
    if gate.receipts is not None:
        gate.receipts.unregister()
    return True


@contextlib.contextmanager
def crewai_governance(
    governor: Governor,
    *,
    agent_id: AgentIdSource = None,
    wait_for_approval: float | None = None,
    job_token: str | None = None,
) -> Iterator[CrewAIGovernance]:
    """Govern the CrewAI tool calls made inside this ``with`` block only (e.g. one kickoff).

    The hooks live in crewai's execution-scoped registry (a context variable), so other threads' crews and
    calls after the block are not affected; crewai copies the context into the threads it starts itself
    (async tasks, parallel native tool calls)::

        with crewai_governance(gov):
            crew.kickoff()
    """
    gate = CrewAIGovernance(governor, agent_id=agent_id, wait_for_approval=wait_for_approval, job_token=job_token)
    inherited = {point: get_scoped_hooks(point) for point in InterceptionPoint}  # keep an outer scope's hooks
    with scoped_hooks({point: hooks for point, hooks in inherited.items() if hooks}):
        register_scoped(InterceptionPoint.PRE_TOOL_CALL, gate.before_tool_call)
        register_scoped(InterceptionPoint.POST_TOOL_CALL, gate.after_tool_call)
        yield gate


def governed_kickoff(
    crew: Any,
    governor: Governor,
    inputs: dict[str, Any] | None = None,
    *,
    agent_id: AgentIdSource = None,
    wait_for_approval: float | None = None,
    job_token: str | None = None,
) -> Any:
    """``crew.kickoff(inputs=inputs)`` with every tool call of that kickoff governed (and no other)."""
    with crewai_governance(governor, agent_id=agent_id, wait_for_approval=wait_for_approval, job_token=job_token):
        return crew.kickoff(inputs=inputs)


def is_enabled(governor: Governor) -> bool:
    """True while ``governor``'s global crewai hooks are registered."""
    with _enabled_lock:
        gate = _enabled.get(id(governor))
    return gate is not None and gate.governor is governor and gate.registered
