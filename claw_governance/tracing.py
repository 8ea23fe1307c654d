"""OpenTelemetry traces: one span per governed call (``opentelemetry-api`` only; the SDK is the user's choice).

The span ``claw.govern <action>`` starts when ``Governor.before_call`` starts, as a child of whatever span is
current there (the framework's, or the application's around the agent run), and carries the decision:

- ``claw.agent_id``, ``claw.action``, ``claw.framework``, ``claw.call_id``, ``claw.outcome``, ``claw.stage``,
  ``claw.reason``, ``claw.rule`` (``file:line``), ``claw.rule.pattern``, ``claw.policy_hash``,
  ``claw.escalation_id``, ``claw.decision.duration_ms``, ``claw.audit.duration_ms``;
- an event ``claw.denied`` or ``claw.escalated`` (with the reason, rule and escalation id).

A call that is not allowed ends its span at once. An allowed call's span stays open until
``Governor.after_call`` records what the tool did (``claw.tool.success``, ``claw.tool.duration_ms``, status
ERROR and ``claw.tool.error`` on failure). Spans of allowed calls whose outcome never comes (a crashed tool
runner) are ended after ``MAX_OPEN`` newer ones, marked ``claw.tool.outcome_unknown``.

Cost: without a configured SDK (the API's proxy provider) nothing is created; the check is one function
call per decision.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider

from claw_governance.audit.redaction import redact_text

if TYPE_CHECKING:
    from claw_governance.model import CallOutcome, Decision, ToolCall

INSTRUMENTATION = "claw_governance"
MAX_OPEN = 10_000
_PROXY = trace.get_tracer_provider()  # the API's placeholder until an SDK provider is set
# trace.get_tracer_provider() reads os.environ on every call (~0.9 us); the API keeps the provider set with
# set_tracer_provider() in a module global, which is read directly here (~0.05 us). When that global is not
# there (another API version) or a provider is named by environment variable, the public call is used.
_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
_HAS_GLOBAL = hasattr(trace, "_TRACER_PROVIDER")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("claw-governance")
    except Exception:
        return "0"


class CallTracer:
    """Makes the spans of one governor. ``provider`` overrides the global tracer provider (tests, embedding)."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider
        self._tracer: Tracer | None = None
        self._tracer_of: object = None
        self._open: OrderedDict[str, Span] = OrderedDict()
        self._lock = threading.Lock()
        self.version = _version()

    def enabled(self) -> bool:
        """Whether spans are recorded (an SDK provider is set, globally or on this tracer)."""
        if self.provider is not None:
            return True
        if _HAS_GLOBAL and not _FROM_ENV:
            return trace._TRACER_PROVIDER is not None
        return trace.get_tracer_provider() is not _PROXY

    def _get_tracer(self) -> Tracer:
        provider = self.provider if self.provider is not None else trace.get_tracer_provider()
        if self._tracer is None or self._tracer_of is not provider:
            self._tracer = provider.get_tracer(INSTRUMENTATION, self.version)
            self._tracer_of = provider
        return self._tracer

    def decided(self, call: ToolCall, decision: Decision, started_ns: int, audit_seconds: float) -> None:
        """Start (and, unless the call may run, end) the call's span; never raises."""
        with contextlib.suppress(Exception):  # tracing never changes a decision
            self._decided(call, decision, started_ns, audit_seconds)

    def _decided(self, call: ToolCall, decision: Decision, started_ns: int, audit_seconds: float) -> None:
        outcome = decision.outcome._value_
        now_ns = time.time_ns()
        attributes: dict[str, Any] = {
            "claw.agent_id": call.agent_id,
            "claw.action": call.action,
            "claw.framework": call.framework,
            "claw.call_id": call.call_id,
            "claw.outcome": outcome,
            "claw.stage": decision.stage or "",
            "claw.reason": decision.reason,
            "claw.policy_hash": decision.policy_hash or "",
            "claw.decision.duration_ms": round((now_ns - started_ns) / 1e6 - audit_seconds * 1000, 4),
            "claw.audit.duration_ms": round(audit_seconds * 1000, 4),
        }
        rule = decision.rule
        if rule is not None:
            attributes["claw.rule"] = rule.source
            attributes["claw.rule.pattern"] = rule.pattern
        if decision.escalation_id:
            attributes["claw.escalation_id"] = decision.escalation_id
        span = self._get_tracer().start_span(
            f"claw.govern {call.action}", kind=SpanKind.INTERNAL, attributes=attributes, start_time=started_ns
        )
        if outcome == "allow":
            evicted: list[Span] = []
            with self._lock:
                earlier = self._open.pop(call.call_id, None)  # the same call id decided again (a retry)
                if earlier is not None:
                    evicted.append(earlier)
                self._open[call.call_id] = span
                while len(self._open) > MAX_OPEN:
                    evicted.append(self._open.popitem(last=False)[1])
            for old in evicted:
                old.set_attribute("claw.tool.outcome_unknown", True)
                old.end()
            return
        event = {"claw.reason": decision.reason, "claw.stage": decision.stage or ""}
        if rule is not None:
            event["claw.rule"] = rule.source
        if outcome == "escalate":
            event["claw.escalation_id"] = decision.escalation_id or ""
            span.add_event("claw.escalated", event)
        else:
            span.add_event("claw.denied", event)
            if decision.stage in ("plugin", "governor", "audit"):  # a fault, not a policy answer
                span.set_status(Status(StatusCode.ERROR, decision.reason))
        span.end(end_time=now_ns)

    def finished(self, call: ToolCall, outcome: CallOutcome) -> None:
        """End an allowed call's span with what the tool did; never raises."""
        if not self._open:
            return
        with self._lock:
            span = self._open.pop(call.call_id, None)
        if span is None:
            return
        try:
            span.set_attribute("claw.tool.success", bool(outcome.success))
            span.set_attribute("claw.tool.duration_ms", round(float(outcome.duration_ms), 4))
            if not outcome.success:
                span.set_attribute("claw.tool.error", redact_text(str(outcome.error or ""))[:500])
                span.set_status(Status(StatusCode.ERROR, "the tool failed"))
            span.end()
        except Exception:
            pass

    def decided_only(self, call: ToolCall) -> None:
        """End an allowed call's span that will not run a tool (``AgentHandle.check``)."""
        if not self._open:
            return
        with self._lock:
            span = self._open.pop(call.call_id, None)
        if span is not None:
            with contextlib.suppress(Exception):
                span.set_attribute("claw.check_only", True)
                span.end()

    def close(self) -> None:
        """End every span still open (the governor is closing)."""
        with self._lock:
            spans = list(self._open.values())
            self._open.clear()
        for span in spans:
            try:
                span.set_attribute("claw.tool.outcome_unknown", True)
                span.end()
            except Exception:
                pass
