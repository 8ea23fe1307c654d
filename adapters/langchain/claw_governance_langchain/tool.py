"""GovernedTool: any LangChain BaseTool, governed; the model sees exactly the same tool.

The wrapper copies the inner tool's name, description and schemas (``convert_to_openai_tool`` gives the same
result for both) and overrides ``run`` / ``arun``, the methods every invocation path goes through
(``invoke``, ``ainvoke``, ``batch``, agents, langgraph's ToolNode). Each call is decided by the Governor
first; only an ALLOW delegates to ``inner.run`` / ``inner.arun`` with every argument unchanged, so the inner
tool's own validation, injected arguments (``InjectedToolCallId``, injected state), ``response_format``,
error handling and callbacks behave exactly as without governance. The outcome goes back to the Governor.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from claw_governance import Decision, Governor, Outcome, ToolCall
from langchain_core.callbacks import Callbacks
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, Tool
from langchain_core.tools import tool as make_tool
from langchain_core.tools.base import ArgsSchema
from langchain_core.utils.pydantic import TypeBaseModel
from pydantic import Field
from typing_extensions import override

from claw_governance_langchain._shared import (
    FRAMEWORK,
    ActionSpec,
    InnerRun,
    RefusalMode,
    error_outcome,
    inner_run,
    outcome_of,
    refusal,
    resolve_action,
)

# A legacy single-string `Tool` without args_schema takes one string, "__arg1" (what convert_to_openai_tool
# shows for it; for the wrapper it shows the same schema, less the property's "title").
_LEGACY_TOOL_SCHEMA: dict[str, Any] = {
    "properties": {"__arg1": {"type": "string"}},
    "required": ["__arg1"],
    "type": "object",
}


def _arg_names(schema: ArgsSchema) -> frozenset[str]:
    """The property names of a tool-call schema (a JSON schema dict or a pydantic model), as the model sends them."""
    if isinstance(schema, dict):
        return frozenset(schema.get("properties", {}))
    if hasattr(schema, "model_json_schema"):  # pydantic v2: aliases, as in the schema the model sees
        return frozenset(schema.model_json_schema().get("properties", {}))
    return frozenset(getattr(schema, "__fields__", {}))


class GovernedTool(BaseTool):
    """A BaseTool that runs ``inner`` only when the Governor allows the call.

    ``GovernedTool(tool, governor=gov, agent_id="research-agent")``. Options:

    - ``action``: the governance action; default ``"tool:<name>"``; a string, or a function of the LangChain
      tool call (``{"name", "args", "id", "type"}``) returning one.
    - ``on_deny``: ``"message"`` (default) returns the reason to the model as a ToolMessage with status
      ``"error"`` (a plain string when invoked without a tool-call id), so the agent carries on without the
      action; ``"raise"`` raises ``ToolCallDenied``.
    - ``on_escalate``: ``"message"`` (default) returns a ToolMessage naming the escalation id; ``"raise"``
      raises ``EscalationRequired``.
    - ``wait_for_approval``: seconds to wait for a human to resolve an escalation before answering (the call
      then runs if approved). ``None`` (default): do not wait.
    - ``job_token``: a work-contract job token (``gov.start_job(...).token``): every call carries it and is
      checked against it (scope, expiry, revocation, pinned policy) before the policy.
    """

    inner: BaseTool
    governor: Governor
    agent_id: str
    action: ActionSpec = None
    on_deny: RefusalMode = "message"
    on_escalate: RefusalMode = "message"
    wait_for_approval: float | None = None
    job_token: str | None = Field(default=None, repr=False)
    model_arg_names: frozenset[str] = frozenset()
    """The arguments in the tool-call schema the model is shown (a call within them is governed as it is)."""

    def __init__(
        self,
        inner: BaseTool,
        *,
        governor: Governor,
        agent_id: str,
        action: ActionSpec = None,
        on_deny: RefusalMode = "message",
        on_escalate: RefusalMode = "message",
        wait_for_approval: float | None = None,
        job_token: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Wrap ``inner``; creates the agent's identity in ``governor`` if it does not exist yet."""
        if not isinstance(inner, BaseTool):
            raise TypeError(f"GovernedTool wraps a langchain_core BaseTool, not {type(inner).__name__}")
        if on_deny not in ("message", "raise") or on_escalate not in ("message", "raise"):
            raise ValueError('on_deny and on_escalate must be "message" or "raise"')
        governor.agent(agent_id, framework=FRAMEWORK)
        fields: dict[str, Any] = {
            "name": inner.name,
            "description": inner.description,
            "args_schema": inner.args_schema,
            "return_direct": inner.return_direct,
            "response_format": inner.response_format,
            "extras": inner.extras,
        }
        fields.update(kwargs)
        super().__init__(
            inner=inner,
            governor=governor,
            agent_id=agent_id,
            action=action,
            on_deny=on_deny,
            on_escalate=on_escalate,
            wait_for_approval=wait_for_approval,
            job_token=job_token,
            **fields,
        )
        self.model_arg_names = _arg_names(self.tool_call_schema)

    # ------------------------------------------------------------------------ the tool the model sees

    @property
    @override
    def tool_call_schema(self) -> ArgsSchema:
        """The inner tool's tool-call schema (injected arguments excluded), unchanged."""
        if isinstance(self.inner, Tool) and not self.inner.args_schema:
            return dict(_LEGACY_TOOL_SCHEMA)
        return self.inner.tool_call_schema

    @override
    def get_input_schema(self, config: RunnableConfig | None = None) -> TypeBaseModel:
        """The inner tool's input schema (injected arguments included, as langgraph's ToolNode expects)."""
        return self.inner.get_input_schema(config)

    @override
    def _run(self, *args: Any, **kwargs: Any) -> Any:
        """Never called: ``run`` and ``arun`` govern the call and delegate to the inner tool's ``run``."""
        raise NotImplementedError("GovernedTool runs through run()/invoke(), which govern the call")

    # ---------------------------------------------------------------------------------- governance

    def _governed_args(self, tool_input: str | dict[str, Any]) -> dict[str, Any]:
        """The arguments the model gave: injected values (state, runtime, tool-call id) left out.

        Only injected values are left out, exactly as langchain-core leaves them out of ``on_tool_start``'s
        ``inputs`` (what GovernanceCallbackHandler governs): an argument the schema does not list still reaches
        a tool with a JSON-schema ``args_schema`` or ``**kwargs``, so policy and the audit trail see it too.
        """
        if isinstance(tool_input, str):
            return {"input": tool_input}
        keys = self.model_arg_names
        if not keys or keys.issuperset(tool_input):
            return tool_input
        return self.inner._filter_injected_args(tool_input)

    def _decide(self, tool_input: str | dict[str, Any], tool_call_id: str | None) -> tuple[ToolCall, Decision]:
        args = self._governed_args(tool_input)
        action = resolve_action(self.action, self.name, args, tool_call_id)
        call = self.governor.make_call(
            self.agent_id,
            action,
            args,
            framework=FRAMEWORK,
            call_id=tool_call_id,
            metadata={"tool": self.name},
            job_token=self.job_token,
        )
        return call, self.governor.before_call(call)

    # ------------------------------------------------------------------------------------ invocation

    @override
    def run(
        self,
        tool_input: str | dict[str, Any],
        verbose: bool | None = None,
        start_color: str | None = "green",
        color: str | None = "green",
        callbacks: Callbacks = None,
        *,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        run_name: str | None = None,
        run_id: uuid.UUID | None = None,
        config: RunnableConfig | None = None,
        tool_call_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Govern the call, then run the inner tool only on ALLOW; report the outcome to the Governor."""
        call, decision = self._decide(tool_input, tool_call_id)
        if decision.outcome is Outcome.ESCALATE and self.wait_for_approval:
            decision = self.governor.wait_for_approval(decision, self.wait_for_approval)
        if not decision.allowed:
            return refusal(self.name, decision, tool_call_id, self.on_deny, self.on_escalate)
        token = inner_run.set(InnerRun(self.governor, self.inner.name))
        started = time.perf_counter()
        try:
            output = self.inner.run(
                tool_input,
                verbose,
                start_color,
                color,
                callbacks,
                tags=tags,
                metadata=metadata,
                run_name=run_name,
                run_id=run_id,
                config=config,
                tool_call_id=tool_call_id,
                **kwargs,
            )
        except BaseException as exc:
            elapsed = (time.perf_counter() - started) * 1000
            self.governor.after_call(call, decision, error_outcome(exc, elapsed))
            raise
        finally:
            inner_run.reset(token)
        self.governor.after_call(call, decision, outcome_of(output, (time.perf_counter() - started) * 1000))
        return output

    @override
    async def arun(
        self,
        tool_input: str | dict[str, Any],
        verbose: bool | None = None,
        start_color: str | None = "green",
        color: str | None = "green",
        callbacks: Callbacks = None,
        *,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        run_name: str | None = None,
        run_id: uuid.UUID | None = None,
        config: RunnableConfig | None = None,
        tool_call_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """``run`` for async callers; waiting for approval does not block the event loop."""
        call, decision = self._decide(tool_input, tool_call_id)
        if decision.outcome is Outcome.ESCALATE and self.wait_for_approval:
            decision = await self.governor.await_approval(decision, self.wait_for_approval)
        if not decision.allowed:
            return refusal(self.name, decision, tool_call_id, self.on_deny, self.on_escalate)
        token = inner_run.set(InnerRun(self.governor, self.inner.name))
        started = time.perf_counter()
        try:
            output = await self.inner.arun(
                tool_input,
                verbose,
                start_color,
                color,
                callbacks,
                tags=tags,
                metadata=metadata,
                run_name=run_name,
                run_id=run_id,
                config=config,
                tool_call_id=tool_call_id,
                **kwargs,
            )
        except BaseException as exc:
            elapsed = (time.perf_counter() - started) * 1000
            self.governor.after_call(call, decision, error_outcome(exc, elapsed))
            raise
        finally:
            inner_run.reset(token)
        self.governor.after_call(call, decision, outcome_of(output, (time.perf_counter() - started) * 1000))
        return output


def govern_tools(
    tools: Iterable[BaseTool | Callable[..., Any]], *, governor: Governor, agent_id: str, **options: Any
) -> list[BaseTool]:
    """Wrap every tool in ``tools`` in a GovernedTool (plain functions are made tools with ``@tool`` first).

    ``options`` are GovernedTool's (``action``, ``on_deny``, ``on_escalate``, ``wait_for_approval``,
    ``job_token``); a tool that is already a GovernedTool is kept as it is.
    """
    governed: list[BaseTool] = []
    for item in tools:
        if isinstance(item, GovernedTool):
            governed.append(item)
            continue
        inner = item if isinstance(item, BaseTool) else make_tool(item)
        governed.append(GovernedTool(inner, governor=governor, agent_id=agent_id, **options))
    return governed


__all__: Sequence[str] = ("GovernedTool", "govern_tools")
