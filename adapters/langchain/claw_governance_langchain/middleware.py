"""GovernanceMiddleware: governance as LangChain v1 agent middleware (``create_agent(..., middleware=[...])``).

``wrap_tool_call`` / ``awrap_tool_call`` decide every tool call the agent makes before it runs:

- DENY: the tool never runs; the model gets an error ToolMessage with the reason (same tool-call id, so no
  tool call is left without an answer).
- ESCALATE: the graph pauses with LangGraph's ``interrupt()``; the interrupt's value carries the escalation
  id, the rule, the reason, the redacted arguments and, when ``console_url`` is configured, a link for the
  reviewer. Resuming the graph (``Command(resume=...)``) decides the call again: it runs only if a reviewer
  approved the escalation through the CLI, the console or the API (which authenticate the reviewer), and
  then exactly once (the approval's one-shot grant is consumed). The resume value itself approves nothing.
  Still pending: the graph pauses again. Denied or expired: an error ToolMessage.
- ALLOW: the tool runs; its outcome is audited.

Each tool call of a message is its own LangGraph task in ``create_agent``, so parallel calls are decided
one by one, and an allowed call that ran before a sibling paused is not run again on resume.

``wrap_model_call`` / ``awrap_model_call`` record one ``model_call`` audit entry per model call: model and
provider, SHA-256 hashes of the request and the response (RFC 8785 canonical JSON), token usage and
duration; a basis for model-call receipts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from claw_governance import AuditEvent, Decision, EscalationStatus, Governor, Outcome, Stage, ToolCall
from claw_governance.audit.canonical import jcs_dumps
from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command, interrupt

from claw_governance_langchain._shared import (
    FRAMEWORK,
    LC_AGENT_NAME_KEY,
    ActionSpec,
    InnerRun,
    default_agent_id,
    error_outcome,
    governance_info,
    inner_run,
    naming_hint,
    outcome_of,
    refusal_text,
    resolve_action,
)

INTERRUPT_TYPE = "claw_governance.escalation"

ToolResult = ToolMessage | Command[Any]


def _digest(value: Any) -> str:
    """SHA-256 (hex) of the RFC 8785 canonical JSON of ``value`` (anything not JSON is taken as its str)."""
    plain = json.loads(json.dumps(value, default=str))
    return hashlib.sha256(jcs_dumps(plain)).hexdigest()


def _messages_form(messages: list[Any]) -> list[Any]:
    return [m.model_dump(mode="json") if isinstance(m, BaseMessage) else m for m in messages]


def _resuming() -> bool:
    """True while LangGraph re-runs this task to resume it (a resume value is waiting for an interrupt).

    Code before ``interrupt()`` runs again on resume; knowing that, the middleware looks up the escalation it
    opened the first time instead of opening a second one. Any doubt answers False (at worst a duplicate
    escalation is opened, never a call allowed).
    """
    try:
        from langgraph._internal._constants import CONFIG_KEY_SCRATCHPAD
        from langgraph.config import get_config

        scratchpad = get_config()["configurable"][CONFIG_KEY_SCRATCHPAD]
        return bool(scratchpad.resume) or scratchpad.get_null_resume(False) is not None
    except Exception:
        return False


class GovernanceMiddleware(AgentMiddleware[Any, Any, Any]):
    """Govern every tool call (and record every model call) of a ``create_agent`` agent.

    ``GovernanceMiddleware(governor=gov, agent_id="research-agent")``. Options:

    - ``agent_id``: the agent the calls are governed as. Default: the agent's ``name`` given to
      ``create_agent(name=...)``, else ``$CLAW_AGENT_ID``, else ``"langchain-agent"``.
    - ``action``: the governance action; default ``"tool:<name>"`` (as GovernedTool); a string or a function
      of the tool call.
    - ``console_url``: base URL of the reviewer console for the link in interrupts (default: the governor's
      ``console_url`` setting, ``$CLAW_CONSOLE_URL``).
    - ``record_model_calls``: write a ``model_call`` audit entry per model call (default True).
    """

    def __init__(
        self,
        *,
        governor: Governor,
        agent_id: str | None = None,
        action: ActionSpec = None,
        console_url: str | None = None,
        record_model_calls: bool = True,
    ) -> None:
        super().__init__()
        self.governor = governor
        self.agent_id = agent_id
        self.action = action
        self.console_url = console_url if console_url is not None else getattr(governor.config, "console_url", None)
        self.record_model_calls = record_model_calls
        self._known: set[str] = set()
        if agent_id is not None:
            governor.agent(agent_id, framework=FRAMEWORK)
            self._known.add(agent_id)

    @property
    def name(self) -> str:
        """The middleware's name in the graph (one per agent)."""
        return "ClawGovernanceMiddleware"

    # ------------------------------------------------------------------------------------ tool calls

    def _agent_for(self, runtime: Any) -> str:
        if self.agent_id is not None:
            return self.agent_id
        config = getattr(runtime, "config", None) or {}
        name = (config.get("metadata") or {}).get(LC_AGENT_NAME_KEY)
        agent_id = name if isinstance(name, str) and name.strip() else default_agent_id()
        if agent_id not in self._known:  # its identity, as for an explicit agent_id (once per name)
            self.governor.agent(agent_id, framework=FRAMEWORK)
            self._known.add(agent_id)
        return agent_id

    def _call(self, request: ToolCallRequest) -> ToolCall:
        tool_call = request.tool_call
        name = tool_call["name"]
        args = dict(tool_call.get("args") or {})
        call_id = tool_call.get("id")
        action = resolve_action(self.action, name, args, call_id)
        return self.governor.make_call(
            self._agent_for(request.runtime),
            action,
            args,
            framework=FRAMEWORK,
            call_id=call_id,
            metadata={"tool": name, "via": "middleware"},
        )

    def _existing_escalation(self, call: ToolCall) -> Any:
        """The newest escalation for exactly this call (agent, action, arguments), if any."""
        matches = [
            e
            for e in self.governor.escalations.list_escalations()
            if e.agent_id == call.agent_id and e.action == call.action and e.args_hash == call.args_hash
        ]
        if not matches:
            return None
        newest = max(matches, key=lambda e: e.created)
        return self.governor.escalations.get(newest.id)  # applies expiry

    def _from_escalation(self, call: ToolCall, escalation: Any, policy_hash: str) -> Decision:
        """Decide ``call`` again in the light of its escalation's current state."""
        if escalation is None:
            return Decision(
                Outcome.DENY, "Escalation not found; denied", call, None, policy_hash, stage=Stage.ESCALATION
            )
        if escalation.status is EscalationStatus.PENDING:
            return Decision(
                Outcome.ESCALATE,
                escalation.reason,
                call,
                None,
                policy_hash,
                escalation_id=escalation.id,
                stage=Stage.ESCALATION,
            )
        if escalation.status is EscalationStatus.APPROVED:
            if self.governor.config.require_signature:  # fresh nonce and timestamp: approval may come hours later
                call = self.governor.make_call(
                    call.agent_id,
                    call.action,
                    call.args,
                    framework=call.framework,
                    call_id=call.call_id,
                    metadata=call.metadata,
                )
            return self.governor.before_call(call)  # consumes the one-shot grant, or escalates anew if it is gone
        by = f" by {escalation.resolver}" if escalation.resolver else ""
        return Decision(
            Outcome.DENY,
            f"Escalation {escalation.id} {escalation.status.value}{by}: {escalation.reason}",
            call,
            None,
            policy_hash,
            escalation_id=escalation.id,
            stage=Stage.ESCALATION,
        )

    def _first_decision(self, call: ToolCall) -> Decision:
        if _resuming():
            existing = self._existing_escalation(call)
            if existing is not None:
                return self._from_escalation(call, existing, self.governor.policy.hash)
        return self.governor.before_call(call)

    def interrupt_value(self, decision: Decision, tool_name: str) -> dict[str, Any]:
        """What the graph's interrupt carries for an escalated call (JSON-serialisable)."""
        call = decision.call
        escalation_id = decision.escalation_id
        rule = decision.rule.source if decision.rule is not None else None
        if rule is None and escalation_id:
            stored = self.governor.escalations.get(escalation_id)
            rule = stored.rule if stored is not None else None
        value: dict[str, Any] = {
            "type": INTERRUPT_TYPE,
            "escalation_id": escalation_id,
            "tool_call_id": call.call_id,
            "tool": tool_name,
            "agent_id": call.agent_id,
            "action": call.action,
            "rule": rule,
            "reason": decision.reason,
            "args": self.governor.redact(dict(call.args), call.agent_id),
            "approve": f"claw-gov escalations approve {escalation_id} --by YOU --notes WHY",
            "note": "Resuming the graph decides the call again: it runs only once a reviewer has approved it.",
        }
        if self.console_url:
            value["console_url"] = f"{self.console_url.rstrip('/')}/escalations/{escalation_id}"
        return value

    def _decide(self, request: ToolCallRequest) -> tuple[ToolCall, Decision]:
        """Decide the call; pause the graph (``interrupt``) for as long as it waits for a reviewer."""
        call = self._call(request)
        decision = self._first_decision(call)
        while decision.outcome is Outcome.ESCALATE and decision.escalation_id:
            interrupt(self.interrupt_value(decision, request.tool_call["name"]))  # the resume value is ignored
            decision = self._from_escalation(
                call, self.governor.escalations.get(decision.escalation_id), decision.policy_hash
            )
        return call, decision

    def _refusal(self, request: ToolCallRequest, decision: Decision) -> ToolMessage:
        name = request.tool_call["name"]
        text = refusal_text(name, decision)
        if self.agent_id is None:
            text += naming_hint(decision, "GovernanceMiddleware(agent_id=...), create_agent(name=...)")
        return ToolMessage(
            text,
            tool_call_id=request.tool_call.get("id") or "",
            name=name,
            status="error",
            response_metadata=governance_info(decision),
        )

    def wrap_tool_call(self, request: ToolCallRequest, handler: Callable[[ToolCallRequest], ToolResult]) -> ToolResult:
        """Decide the call; run it (``handler``) only on ALLOW; audit the outcome."""
        call, decision = self._decide(request)
        if not decision.allowed:
            return self._refusal(request, decision)
        token = inner_run.set(InnerRun(self.governor, request.tool_call["name"]))
        started = time.perf_counter()
        try:
            result = handler(request)
        except BaseException as exc:
            self.governor.after_call(call, decision, error_outcome(exc, (time.perf_counter() - started) * 1000))
            raise
        finally:
            inner_run.reset(token)
        self.governor.after_call(call, decision, outcome_of(result, (time.perf_counter() - started) * 1000))
        return result

    async def awrap_tool_call(
        self, request: ToolCallRequest, handler: Callable[[ToolCallRequest], Awaitable[ToolResult]]
    ) -> ToolResult:
        """``wrap_tool_call`` for async agents."""
        call, decision = self._decide(request)
        if not decision.allowed:
            return self._refusal(request, decision)
        token = inner_run.set(InnerRun(self.governor, request.tool_call["name"]))
        started = time.perf_counter()
        try:
            result = await handler(request)
        except BaseException as exc:
            self.governor.after_call(call, decision, error_outcome(exc, (time.perf_counter() - started) * 1000))
            raise
        finally:
            inner_run.reset(token)
        self.governor.after_call(call, decision, outcome_of(result, (time.perf_counter() - started) * 1000))
        return result

    # ----------------------------------------------------------------------------------- model calls

    def _record_model_call(
        self, request: ModelRequest[Any], response: Any, duration_ms: float, error: BaseException | None
    ) -> None:
        model = request.model
        ident = getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__
        try:
            provider = model._get_ls_params().get("ls_provider")
        except Exception:
            provider = None
        messages = ([request.system_message] if request.system_message is not None else []) + list(request.messages)
        tools = [t if isinstance(t, Mapping) else {"name": getattr(t, "name", str(t))} for t in request.tools]
        details: dict[str, Any] = {
            "model": str(ident),
            "provider": provider,
            "request_hash": _digest(
                {"messages": _messages_form(messages), "tools": tools, "settings": request.model_settings}
            ),
            "duration_ms": round(duration_ms, 3),
        }
        if error is not None:
            details["error"] = f"{type(error).__name__}: {error}"
        else:
            result = getattr(response, "result", None)
            if result is None and isinstance(response, AIMessage):
                result = [response]
            result = list(result or [])
            details["response_hash"] = _digest(_messages_form(result))
            usage = next((m.usage_metadata for m in result if isinstance(m, AIMessage) and m.usage_metadata), None)
            details["usage"] = dict(usage) if usage else None
        agent = self._agent_for(request.runtime)
        # A model call is not a governed action: a failed record does not stop the agent (the governor's
        # health_check shows the audit fault).
        with contextlib.suppress(Exception):
            self.governor.record(AuditEvent("model_call", agent, None, details=details))

    def wrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], ModelResponse[Any]]
    ) -> Any:
        """Call the model; record a ``model_call`` audit entry."""
        if not self.record_model_calls:
            return handler(request)
        started = time.perf_counter()
        try:
            response = handler(request)
        except BaseException as exc:
            self._record_model_call(request, None, (time.perf_counter() - started) * 1000, exc)
            raise
        self._record_model_call(request, response, (time.perf_counter() - started) * 1000, None)
        return response

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]]
    ) -> Any:
        """``wrap_model_call`` for async agents."""
        if not self.record_model_calls:
            return await handler(request)
        started = time.perf_counter()
        try:
            response = await handler(request)
        except BaseException as exc:
            self._record_model_call(request, None, (time.perf_counter() - started) * 1000, exc)
            raise
        self._record_model_call(request, response, (time.perf_counter() - started) * 1000, None)
        return response


__all__ = ["INTERRUPT_TYPE", "GovernanceMiddleware"]
