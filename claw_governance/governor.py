"""The Governor: the pipeline every adapter calls, and AgentHandle, its per-agent face.

``before_call`` runs identity -> trust gate -> policy -> escalation -> audit through the plugin hooks and
returns a Decision; nothing may run unless it is ALLOW. Any error on that path is a DENY. ``after_call``
records the outcome (trust, ``agent_action`` audit entry).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

from claw_governance.audit import AuditTrail, open_trail
from claw_governance.audit.plugin import AuditPlugin
from claw_governance.audit.redaction import DEFAULT_REDACTOR, MAX_TEXT, bound_text, redact_text
from claw_governance.audit.report import compliance_report
from claw_governance.config import GovernorConfig, config_from_env
from claw_governance.errors import ConfigError, EscalationError
from claw_governance.escalation import EscalationQueue
from claw_governance.escalation.plugin import EscalationPlugin, default_notifiers
from claw_governance.identity import IdentityRegistry, TrustLedger
from claw_governance.identity.plugin import IdentityPlugin, TrustPlugin
from claw_governance.model import (
    AuditEvent,
    CallOutcome,
    Decision,
    Escalation,
    EscalationStatus,
    ExecutionResult,
    IdentityVerdict,
    Outcome,
    ToolCall,
    new_call_id,
)
from claw_governance.plugins import ClawPluginManager, HookDispatch
from claw_governance.policy import PolicySet, PolicyStore, ReloadResult, TrustSettings
from claw_governance.policy.plugin import PolicyPlugin
from claw_governance.state import StateStore, open_state_store

log = logging.getLogger("claw_governance")

_PRECEDENCE = {Outcome.DENY: 0, Outcome.ESCALATE: 1, Outcome.ALLOW: 2}
_PIPELINE_HOOKS = ("claw_verify_identity", "claw_trust_score", "claw_decide", "claw_consume_grant",
                   "claw_open_escalation", "claw_notify_escalation", "claw_record_audit", "claw_update_trust")


@dataclass(frozen=True, slots=True)
class _AgentFacts:
    """Per-agent facts of one policy version that every call needs (cached: no lookups per call)."""

    settings: TrustSettings
    minimum: int
    sensitive: frozenset[str]
    metadata_only: bool


_NO_FACTS = _AgentFacts(TrustSettings(), 0, frozenset(), False)
_NO_METADATA: Mapping[str, Any] = MappingProxyType({})  # shared, read-only: most calls carry no metadata


def _audit_form(decision: Decision) -> dict[str, Any]:
    """``decision.as_dict()`` sharing the rule's prebuilt dict (only serialised, never changed, on this path)."""
    rule = decision.rule
    return {"outcome": decision.outcome._value_, "allowed": decision.outcome is Outcome.ALLOW,
            "reason": decision.reason, "rule": None if rule is None else rule.audit_form, "stage": decision.stage,
            "escalation_id": decision.escalation_id}


class _Fault(Exception):
    """A hook failed; carries the hook name for the DENY reason."""

    def __init__(self, hook: str, error: BaseException) -> None:
        self.hook = hook
        self.error = error
        super().__init__(f"{hook}: {type(error).__name__}: {error}")


class Governor:
    """Governs tool calls: ``gov.agent(id).check(...)`` / ``.execute(...)``; see DESIGN.md for the API."""

    def __init__(
        self,
        policy_path: str | Path | None = None,
        audit_path: str | Path | None = None,
        identity_path: str | Path | None = None,
        *,
        config: GovernorConfig | None = None,
        plugins: tuple[object, ...] | list[object] = (),
        **settings: Any,
    ) -> None:
        if config is None:
            paths = {"policy_path": policy_path, "audit_path": audit_path, "identity_path": identity_path,
                     "state_path": settings.pop("state_path", None)}
            try:
                given: dict[str, Any] = {k: Path(v) for k, v in paths.items() if v is not None}
                config = GovernorConfig(**given, **settings)
            except TypeError as exc:
                raise ConfigError(f"unknown Governor setting: {exc}") from None
        elif policy_path or audit_path or identity_path or settings:
            raise ConfigError("pass either config= or individual settings, not both")
        self.config = config
        self._closed = False
        self._enabled = False
        self._health_lock = threading.Lock()
        self._faults: dict[str, str] = {}
        # One redactor for every sink (trail, escalation context, faults); its bound is max_stored_output.
        self.redactor = DEFAULT_REDACTOR if config.max_stored_output == MAX_TEXT else \
            DEFAULT_REDACTOR.with_limits(max_text=config.max_stored_output)
        self._facts_cache: dict[str, _AgentFacts] = {}
        self._facts_policy: PolicySet | None = None

        self.pm = ClawPluginManager()
        self.state: StateStore = open_state_store(config)
        try:
            self.audit: AuditTrail = open_trail(config, self.state)
        except BaseException:
            self.state.close()
            raise
        self.audit.redactor = self.redactor
        self._audit_plugin = AuditPlugin(self.audit)
        self.pm.register(self._audit_plugin, name="audit")
        self._record_hook = HookDispatch(self.pm, "claw_record_audit")
        try:
            self.policies = PolicyStore(config.policy_path, on_reload=self._policy_reloaded)
            self.identities = IdentityRegistry(config, self.state, self.record)
            self.trust = TrustLedger(config, self.state, self.record, on_zero=self._revoke_at_zero)
            self.escalations = EscalationQueue(config, self.state, self.record)
        except BaseException:
            self.audit.close()
            self.state.close()
            raise
        self._policy_plugin = PolicyPlugin()
        self._identity_plugin = IdentityPlugin(self.identities)
        self._trust_plugin = TrustPlugin(self.trust, lambda agent_id: self._facts(self.policy, agent_id).settings)
        self.pm.register(self._policy_plugin, name="policy")
        self.pm.register(self._identity_plugin, name="identity")
        self.pm.register(self._trust_plugin, name="trust")
        self.pm.register(EscalationPlugin(self.escalations, self.redact), name="escalation")
        for index, notifier in enumerate(default_notifiers(config)):
            self.pm.register(notifier, name=f"notifier-{index}")
        for plugin in plugins:
            self.pm.register(plugin)
        if config.load_entry_points:
            self.pm.load_entry_points()
        self._hooks = {name: HookDispatch(self.pm, name) for name in _PIPELINE_HOOKS}
        self._lane_generation = -1
        self._direct_decide = self._direct_trust = self._direct_audit = False
        self.pm.hook.claw_startup(governor=self)
        if config.policy_reload_interval:
            self.policies.watch(config.policy_reload_interval)
        if config.enable_adapters:
            self.enable()

    # ------------------------------------------------------------------------------------ construction

    @classmethod
    def from_env(cls, **overrides: Any) -> Governor:
        """A governor configured from POLICY_PATH, AUDIT_PATH, IDENTITY_PATH ... (the seed's variables)."""
        return cls(config=config_from_env(**overrides))

    def agent(self, agent_id: str, *, framework: str = "python") -> AgentHandle:
        """The handle through which one agent's calls are governed; creates its identity if allowed."""
        if not isinstance(agent_id, str) or not agent_id.strip():
            raise ConfigError(f"agent id must be a non-empty string, not {agent_id!r}")
        self.identities.ensure(agent_id)
        return AgentHandle(self, agent_id, framework)

    def register_plugin(self, plugin: object, name: str | None = None) -> None:
        """Add a plugin at run time (it joins the hooks immediately)."""
        self.pm.register(plugin, name=name)

    # ------------------------------------------------------------------------------------------ helpers

    @property
    def policy(self) -> PolicySet:
        """The compiled policy in force."""
        return self.policies.current

    def redact(self, value: Any, agent_id: str | None = None) -> Any:
        """Redact nested data with the built-in rules plus the agent's policy ``sensitive_fields``."""
        extra = self.policy.sensitive_fields(agent_id) if agent_id else frozenset()
        return self.redactor.with_keys(extra)(value)

    def record(self, event: AuditEvent) -> None:
        """Write an event through ``claw_record_audit``; raises if any implementation fails."""
        try:
            self._record_hook(event)
        except Exception as exc:
            self._fault("audit", f"{type(exc).__name__}: {exc}")
            raise

    def _record_call(self, entry_type: str, call: ToolCall, decision: Mapping[str, Any], policy_hash: str,
                     context: Any, details: Mapping[str, Any] | None, facts: _AgentFacts,
                     meta: Mapping[str, Any]) -> None:
        """Audit one of a call's two entries. When the built-in trail is the only ``claw_record_audit``
        implementation (the usual case) its fields go straight to it, without building an AuditEvent or
        dispatching; any other audit plugin gets the AuditEvent through the hook."""
        if self._lane_generation != self.pm.generation:
            self._refresh_lane()
        if self._direct_audit:
            try:
                self.audit.append_parts(entry_type, call.agent_id, call.action, context, decision, policy_hash, details,
                                        facts.sensitive, True, meta)
            except Exception as exc:
                self._fault("audit", f"{exc.__class__.__name__}: {exc}")
                raise
        else:
            self.record(AuditEvent(entry_type, call.agent_id, call.action, context, decision, policy_hash, details,
                                   facts.sensitive, trusted_decision=True, meta=meta))

    def _fault(self, component: str, message: str) -> None:
        message = redact_text(message)  # faults reach health_check() (often behind /health) and the log
        with self._health_lock:
            self._faults[component] = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {message}"
        log.error("claw-governance %s fault: %s", component, message)

    def _clear_fault(self, component: str) -> None:
        if component in self._faults:
            with self._health_lock:
                self._faults.pop(component, None)

    def _revoke_at_zero(self, agent_id: str) -> None:
        self.identities.revoke(agent_id, "trust score reached 0")

    def _policy_reloaded(self, result: ReloadResult) -> None:
        if result.error:
            self._fault("policy", f"reload failed, previous policy {result.previous_hash[:12]} stays: {result.error}")
        else:
            self._clear_fault("policy")
        with contextlib.suppress(Exception):  # a failed write is already reported as an audit fault
            self.record(AuditEvent("policy_reload", policy_hash=result.policy_hash, details={
                "ok": result.error is None, "changed": result.changed, "previous_hash": result.previous_hash,
                "error": result.error, "files": list(self.policy.files)}))

    def make_call(self, agent_id: str, action: str, args: Mapping[str, Any] | None = None, *,
                  framework: str = "python", call_id: str | None = None,
                  metadata: Mapping[str, Any] | None = None) -> ToolCall:
        """Build a ToolCall; signs it on the agent's behalf when signatures are required."""
        call = ToolCall(agent_id, action, dict(args) if args else {}, framework, call_id or new_call_id(),
                        metadata=dict(metadata) if metadata else _NO_METADATA)
        if self.config.require_signature:
            sign = getattr(self.identities, "sign_call", None)
            if sign is not None:
                try:
                    call = sign(call)
                except Exception as exc:  # an unsigned call is then denied by the identity step
                    log.warning("could not sign call for %s: %s", agent_id, redact_text(str(exc)))
        return call

    # --------------------------------------------------------------------------------------- the pipeline

    def _hook(self, name: str, *args: Any) -> Any:
        """Call a pipeline hook with the spec's arguments in order; any exception becomes a _Fault."""
        try:
            return self._hooks[name](*args)
        except Exception as exc:
            raise _Fault(name, exc) from exc

    def _facts(self, policy: PolicySet, agent_id: str) -> _AgentFacts:
        """What the policy in force says about one agent, computed once per policy version."""
        if policy is not self._facts_policy:
            self._facts_cache = {}
            self._facts_policy = policy
        facts = self._facts_cache.get(agent_id)
        if facts is None:
            agent_policy = policy.for_agent(agent_id)
            settings = policy.trust_settings(agent_id)
            facts = _AgentFacts(
                settings,
                settings.min_score if policy.trust_configured(agent_id) else self.config.min_trust_score,
                agent_policy.sensitive_fields if agent_policy is not None else frozenset(),
                agent_policy is not None and agent_policy.audit_level == "metadata")
            if len(self._facts_cache) >= 65536:
                self._facts_cache = {}  # bounded: a flood of invented agent ids cannot grow it
            self._facts_cache[agent_id] = facts
        return facts

    def _refresh_lane(self) -> None:
        """Which pipeline steps only the built-in plugins implement (they are then called directly)."""
        hooks = self._hooks
        self._direct_decide = (hooks["claw_verify_identity"].sole_plugin() is self._identity_plugin
                               and hooks["claw_trust_score"].sole_plugin() is self._trust_plugin
                               and hooks["claw_decide"].sole_plugin() is self._policy_plugin)
        self._direct_trust = hooks["claw_update_trust"].sole_plugin() is self._trust_plugin
        self._direct_audit = self._record_hook.sole_plugin() is self._audit_plugin
        self._lane_generation = self.pm.generation

    def _decide(self, call: ToolCall, policy: PolicySet, facts: _AgentFacts) -> Decision:
        if self._lane_generation != self.pm.generation:
            self._refresh_lane()
        if not self._direct_decide:
            return self._decide_through_hooks(call, policy, facts)
        # The usual case: only the built-in identity, trust and policy plugins. The same steps as the hooks
        # (see _decide_through_hooks) without dispatch; the policy plugin's rate limits included.
        hook = "claw_verify_identity"
        try:
            verdict = self.identities.verify(call, policy)
            if not verdict.ok:
                return self._identity_denied(call, policy, facts, verdict)
            hook = "claw_trust_score"
            score = self.trust.score(call.agent_id, facts.settings)
            if score < facts.minimum:
                return self._trust_denied(call, policy, facts, score)
            hook = "claw_decide"
            decision = self._policy_plugin.claw_decide(call, policy)
        except Exception as exc:
            raise _Fault(hook, exc) from exc
        if decision.outcome is not Outcome.ESCALATE:
            return decision
        return self._escalate(call, policy, decision)

    def _identity_denied(self, call: ToolCall, policy: PolicySet, facts: _AgentFacts,
                         verdict: IdentityVerdict | None) -> Decision:
        reason = verdict.reason if verdict is not None else f'No identity plugin vouches for "{call.agent_id}"'
        if verdict is not None and verdict.trust_penalty:
            self._hook("claw_update_trust", call.agent_id, facts.settings.bad_signature,
                       f"bad signature: {reason}", policy)
        return Decision(Outcome.DENY, reason, call, policy_hash=policy.hash, stage="identity")

    @staticmethod
    def _trust_denied(call: ToolCall, policy: PolicySet, facts: _AgentFacts, score: int | None) -> Decision:
        return Decision(Outcome.DENY, f'Trust score of "{call.agent_id}" is {score}, below the minimum '
                        f"{facts.minimum}", call, policy_hash=policy.hash, stage="trust")

    def _decide_through_hooks(self, call: ToolCall, policy: PolicySet, facts: _AgentFacts) -> Decision:
        verdict = self._hook("claw_verify_identity", call, policy)
        if verdict is None or not verdict.ok:
            return self._identity_denied(call, policy, facts, verdict)
        score = self._hook("claw_trust_score", call.agent_id)
        if score is None or score < facts.minimum:
            return self._trust_denied(call, policy, facts, score)
        answers = self._hook("claw_decide", call, policy)
        if not answers:
            return Decision(Outcome.DENY, "No policy plugin gave a decision (default deny)", call,
                            policy_hash=policy.hash)
        # Explicit answers rank deny > escalate > allow; a default deny (no rule matched) ranks below them all,
        # so a plugin may allow what the policy does not mention but can never overturn a rule's deny.
        decision: Decision = answers[0] if len(answers) == 1 else \
            min(answers, key=lambda d: 3 if d.stage == "default" else _PRECEDENCE[d.outcome])
        if decision.outcome is not Outcome.ESCALATE:
            return decision
        return self._escalate(call, policy, decision)

    def _escalate(self, call: ToolCall, policy: PolicySet, decision: Decision) -> Decision:
        """An ESCALATE: consume a matching approved grant (ALLOW) or open an escalation (through the hooks)."""
        granted = self._hook("claw_consume_grant", call, decision)
        if granted:
            return Decision(Outcome.ALLOW, f"Approved by a human (escalation {granted}); {decision.reason}", call,
                            decision.rule, policy.hash, escalation_id=granted, stage="escalation")
        timeout = (decision.rule.timeout_seconds if decision.rule and decision.rule.timeout_seconds
                   else self.config.escalation_timeout_hours * 3600.0)
        escalation = self._hook("claw_open_escalation", call, decision, timeout)
        if escalation is None:
            return Decision(Outcome.DENY, "Needs human approval but no escalation store accepted it; "
                            f"denied. ({decision.reason})", call, decision.rule, policy.hash, stage="escalation")
        self._notify(escalation)
        return Decision(Outcome.ESCALATE, decision.reason, call, decision.rule, policy.hash,
                        escalation_id=escalation.id, stage=decision.stage)

    def _notify(self, escalation: Escalation) -> None:
        try:
            self._hooks["claw_notify_escalation"](escalation)
        except Exception as exc:  # notifications never change a decision; they do show in health
            self._fault("notify", f"{type(exc).__name__}: {exc}")

    def before_call(self, call: ToolCall) -> Decision:
        """Decide one call and audit the decision. Only an ALLOW lets the tool run. Never raises."""
        policy = self.policies.current
        try:
            facts = self._facts(policy, call.agent_id)
            decision = self._decide(call, policy, facts)
        except _Fault as fault:
            # The reason names the hook and the error's type only: an exception's text can quote the call's
            # arguments (pydantic does), and the reason is audited as is and shown to the model. The full
            # text goes to health_check()["faults"] (after the value detectors) for the operator.
            self._fault("plugin", redact_text(str(fault)))
            decision = Decision(Outcome.DENY, f"Governance error in {fault.hook} ({type(fault.error).__name__}); "
                                "denied to fail closed (details in health_check)", call, policy_hash=policy.hash,
                                stage="plugin")
            facts = _NO_FACTS
        except Exception as exc:  # a bug of ours is still a DENY, never an ALLOW
            self._fault("governor", redact_text(f"{type(exc).__name__}: {exc}"))
            decision = Decision(Outcome.DENY, f"Governance error ({type(exc).__name__}); denied to fail closed "
                                "(details in health_check)", call, policy_hash=policy.hash, stage="governor")
            facts = _NO_FACTS
        try:
            self._record_call(
                "policy_decision", call, _audit_form(decision), policy.hash,
                None if facts.metadata_only else call.args, None, facts,
                {"call_id": call.call_id, "framework": call.framework, "args_hash": call.args_hash}
                if facts.metadata_only else {"call_id": call.call_id, "framework": call.framework})
        except Exception as exc:
            return Decision(Outcome.DENY, f"Audit trail cannot be written ({type(exc).__name__}: {exc}); denied",
                            call, decision.rule, policy.hash, stage="audit")
        return decision

    def after_call(self, call: ToolCall, decision: Decision, outcome: CallOutcome) -> None:
        """Record what happened when an allowed call ran: trust change and an ``agent_action`` entry.

        A value redacted from the call's arguments is scrubbed from its output and error text too (a tool
        that echoes ``token=<the password argument>`` does not leak it), and the stored output is bounded
        (``max_stored_output``; the full value's size and SHA-256 are recorded beside it).
        """
        policy = self.policies.current
        facts = self._facts(policy, call.agent_id)
        error = outcome.error
        output = None if facts.metadata_only else outcome.output
        if call.args and (error is not None or output is not None):
            redactor = self.redactor.with_keys(facts.sensitive) if facts.sensitive else self.redactor
            secrets = redactor.secrets_in(call.args)  # (usually kept from the trail's walk of the same args)
            if secrets:
                error = redactor.scrub(error, secrets)
                output = redactor.scrub(output, secrets)
        delta = facts.settings.success if outcome.success else facts.settings.failure
        if delta:
            if self._lane_generation != self.pm.generation:
                self._refresh_lane()
            reason = "action succeeded" if outcome.success else f"action failed: {error}"
            try:
                if self._direct_trust:  # only the built-in trust plugin: the same call, no dispatch
                    self.trust.adjust(call.agent_id, delta, reason, facts.settings)
                else:
                    self._hook("claw_update_trust", call.agent_id, delta, reason, policy)
            except Exception as exc:
                self._fault("trust", str(exc if isinstance(exc, _Fault) else _Fault("claw_update_trust", exc)))
        details: dict[str, Any] = {"error": error}
        if not facts.metadata_only:
            if output is None or (type(output) is str and len(output) <= self.config.max_stored_output):
                details["output"] = output  # the common case, without a call
            else:
                output, truncated = self._bound_output(output)
                details["output"] = output
                if truncated is not None:
                    details["output_truncated"] = truncated
        try:
            # The arguments are in this call's policy_decision entry (same call_id), written before the tool
            # ran; repeating them here would redact and hash them twice.
            self._record_call(
                "agent_action", call,
                {"outcome": decision.outcome._value_, "allowed": decision.outcome is Outcome.ALLOW,
                 "escalation_id": decision.escalation_id},
                decision.policy_hash, None, details, facts,
                {"call_id": call.call_id, "framework": call.framework, "success": outcome.success,
                 "duration_ms": round(outcome.duration_ms, 3)})
        except Exception as exc:
            log.error("could not audit the outcome of %s %s: %s", call.agent_id, call.action,
                      redact_text(str(exc)))

    def _bound_output(self, output: Any) -> tuple[Any, dict[str, Any] | None]:
        """The part of a tool's output that is stored, and (when cut) the full value's size and SHA-256.

        A string is cut to ``max_stored_output`` characters. Any other value whose JSON form is longer is
        stored as the start of that JSON text (still redacted by the trail like any string).
        """
        limit = self.config.max_stored_output
        kind = type(output)
        if output is None or kind is bool or kind is int or kind is float:
            return output, None
        if kind is str:
            if len(output) <= limit:
                return output, None
            data = output.encode("utf-8", "surrogatepass")
            return bound_text(output, limit), {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                               "kept_chars": limit}
        if isinstance(output, bytes | bytearray | memoryview):
            return output, None  # stored as "[bytes:N]"
        try:
            data = orjson.dumps(output, default=repr, option=orjson.OPT_NON_STR_KEYS)
        except Exception:  # not serialisable as such: the trail's walk still bounds every part of it
            return output, None
        if len(data) <= limit:
            return output, None
        text = data[:limit].decode("utf-8", "ignore")
        return text, {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "kept_chars": limit,
                      "format": "json"}

    # ------------------------------------------------------------------------------------ the public API

    def execute(self, agent_id: str, action: str, args: Mapping[str, Any] | None,
                fn: Callable[[dict[str, Any]], Any], *, wait_for_approval: float | None = None,
                framework: str = "python") -> ExecutionResult:
        """Decide, then run ``fn(args)`` only on ALLOW, then record the outcome."""
        call = self.make_call(agent_id, action, args, framework=framework)
        decision = self.before_call(call)
        if decision.outcome is Outcome.ESCALATE and wait_for_approval:
            decision = self.wait_for_approval(decision, wait_for_approval)
        if decision.outcome is not Outcome.ALLOW:
            return ExecutionResult(False, decision, error=decision.reason)
        started = time.perf_counter()
        try:
            output = fn(dict(call.args))
            if inspect.isawaitable(output):
                if inspect.iscoroutine(output):
                    output.close()  # never started: closing it avoids a "never awaited" warning
                raise TypeError("fn returned an awaitable: use aexecute() for async functions")
        except Exception as exc:
            return self._finish(call, decision, started, error=exc)
        return self._finish(call, decision, started, output=output)

    async def aexecute(self, agent_id: str, action: str, args: Mapping[str, Any] | None,
                       fn: Callable[[dict[str, Any]], Any | Awaitable[Any]], *,
                       wait_for_approval: float | None = None, framework: str = "python") -> ExecutionResult:
        """``execute`` for async code: ``fn`` may be sync or async; waiting for approval does not block."""
        call = self.make_call(agent_id, action, args, framework=framework)
        decision = self.before_call(call)
        if decision.outcome is Outcome.ESCALATE and wait_for_approval:
            decision = await self.await_approval(decision, wait_for_approval)
        if decision.outcome is not Outcome.ALLOW:
            return ExecutionResult(False, decision, error=decision.reason)
        started = time.perf_counter()
        try:
            output = fn(dict(call.args))
            if inspect.isawaitable(output):
                output = await output
        except Exception as exc:
            return self._finish(call, decision, started, error=exc)
        return self._finish(call, decision, started, output=output)

    def _finish(self, call: ToolCall, decision: Decision, started: float, *, output: Any = None,
                error: Exception | None = None) -> ExecutionResult:
        """Record the outcome of a call that ran (``after_call``) and build the result."""
        elapsed_ms = (time.perf_counter() - started) * 1000
        if error is not None:
            message = f"{type(error).__name__}: {error}"
            self.after_call(call, decision, CallOutcome(False, None, message, elapsed_ms))
            return ExecutionResult(False, decision, error=message)
        self.after_call(call, decision, CallOutcome(True, output, None, elapsed_ms))
        return ExecutionResult(True, decision, output)

    def wait_for_approval(self, decision: Decision, seconds: float) -> Decision:
        """Block until a human resolves ``decision``'s escalation (or ``seconds`` pass); then decide again.

        Returns the new decision: ALLOW (the approval's one-shot grant consumed) or DENY (denied, expired,
        or no answer in time). Any other decision is returned unchanged.
        """
        if decision.outcome is not Outcome.ESCALATE or not decision.escalation_id:
            return decision
        return self._after_wait(decision.call, self.escalations.wait(decision.escalation_id, seconds), decision)

    async def await_approval(self, decision: Decision, seconds: float) -> Decision:
        """``wait_for_approval`` without blocking the event loop."""
        if decision.outcome is not Outcome.ESCALATE or not decision.escalation_id:
            return decision
        resolved = await asyncio.to_thread(self.escalations.wait, decision.escalation_id, seconds)
        return self._after_wait(decision.call, resolved, decision)

    def _after_wait(self, call: ToolCall, resolved: Escalation | None, pending: Decision) -> Decision:
        if resolved is not None and resolved.status is EscalationStatus.APPROVED:
            if self.config.require_signature:  # a fresh nonce and timestamp: the approval may come hours later
                call = self.make_call(call.agent_id, call.action, call.args, framework=call.framework,
                                      call_id=call.call_id, metadata=call.metadata)
            return self.before_call(call)  # consumes the grant the approval created
        status = "no answer in time" if resolved is None or resolved.status is EscalationStatus.PENDING \
            else resolved.status.value
        return Decision(Outcome.DENY, f"Escalation {pending.escalation_id} {status}: {pending.reason}", call,
                        pending.rule, pending.policy_hash, escalation_id=pending.escalation_id, stage="escalation")

    def resolve_escalation(self, escalation_id: str, decision: str, notes: str = "", resolver: str = "") -> Escalation:
        """Approve or deny a pending escalation. Raises EscalationError for unknown, resolved or expired ids."""
        statuses = {"approved": EscalationStatus.APPROVED, "approve": EscalationStatus.APPROVED,
                    "denied": EscalationStatus.DENIED, "deny": EscalationStatus.DENIED}
        status = statuses.get(str(decision).strip().lower())
        if status is None:
            raise EscalationError(f"decision must be 'approved' or 'denied', not {decision!r}")
        if not resolver.strip():
            raise EscalationError("a resolution needs the resolver's identity (resolver=...)")
        escalation = self.escalations.resolve(escalation_id, status, resolver, notes)
        self.record(AuditEvent("escalation_resolved", escalation.agent_id, escalation.action, details={
            "escalation_id": escalation.id, "status": escalation.status.value, "resolver": resolver,
            "notes": notes, "created": escalation.created, "resolved_at": escalation.resolved_at,
            "rule": escalation.rule, "args_hash": escalation.args_hash}))
        return escalation

    def trust_score(self, agent_id: str) -> int:
        """The agent's current trust score."""
        score = self._hooks["claw_trust_score"](agent_id)
        return int(score) if score is not None else 0

    def reload_policies(self) -> ReloadResult:
        """Re-read the policy files now; on error the last good policy stays in force (and it is audited)."""
        return self.policies.reload()

    def compliance_report(self, start: str | date | datetime, end: str | date | datetime) -> dict[str, Any]:
        """Totals by outcome, agent and action for ``start``..``end`` (both days included)."""
        return compliance_report(self.audit, start, end)

    def health_check(self) -> dict[str, Any]:
        """Status of every component, usable behind a /health endpoint."""
        components: dict[str, Any] = {
            "policy": {"status": "degraded" if self.policies.last_error else "ok", "hash": self.policy.hash,
                       "files": len(self.policy.files), "rules": self.policy.rule_count,
                       "last_reload_error": self.policies.last_error},
            "audit": self.audit.health(),
            "plugins": {"status": "degraded" if self.pm.load_failures else "ok",
                        "loaded": sorted(name for name, _ in self.pm.list_name_plugin()),
                        "failed": [f.__dict__ if hasattr(f, "__dict__") else {"name": f.name, "error": f.error}
                                   for f in self.pm.load_failures]},
        }
        for extra in self.pm.hook.claw_health(governor=self):
            if isinstance(extra, dict):
                components.update(extra)
        with self._health_lock:
            faults = dict(self._faults)
        if "audit" in faults and components["audit"].get("status") == "ok":
            components["audit"] = {**components["audit"], "status": "degraded", "last_error": faults["audit"]}
        statuses = [c.get("status", "ok") for c in components.values() if isinstance(c, dict)]
        overall = "down" if "down" in statuses else ("degraded" if "degraded" in statuses or faults else "ok")
        return {"status": overall, "components": components, "faults": faults,
                "escalations_pending": len(self.escalations.pending()), "closed": self._closed}

    def enable(self) -> None:
        """Switch on every installed adapter's framework-wide interception (``claw_enable``)."""
        self.pm.hook.claw_enable(governor=self)
        self._enabled = True

    def disable(self) -> None:
        """Undo ``enable()``."""
        if self._enabled:
            self.pm.hook.claw_disable(governor=self)
            self._enabled = False

    def close(self) -> None:
        """Stop reload, disable adapters, close the trail and the stores. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.disable()
            self.pm.hook.claw_shutdown(governor=self)
        finally:
            self.policies.close()
            self.escalations.close()
            self.trust.close()
            self.identities.close()
            self.audit.close()
            self.state.close()

    def __enter__(self) -> Governor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AgentHandle:
    """One agent's view of the governor: ``check`` (decide and audit) and ``execute`` (decide, run, record)."""

    __slots__ = ("agent_id", "framework", "governor")

    def __init__(self, governor: Governor, agent_id: str, framework: str = "python") -> None:
        self.governor = governor
        self.agent_id = agent_id
        self.framework = framework

    def check(self, action: str, args: Mapping[str, Any] | None = None) -> Decision:
        """Decide (and audit) one call without running anything. ESCALATE opens an escalation."""
        return self.governor.before_call(self.governor.make_call(self.agent_id, action, args,
                                                                 framework=self.framework))

    def evaluate(self, action: str, args: Mapping[str, Any] | None = None) -> Decision:
        """What the policy alone says, with no identity, trust, escalation or audit (a dry run)."""
        return self.governor.policy.decide(ToolCall(self.agent_id, action, dict(args or {}), self.framework))

    def execute(self, action: str, args: Mapping[str, Any] | None, fn: Callable[[dict[str, Any]], Any], *,
                wait_for_approval: float | None = None) -> ExecutionResult:
        """Run ``fn(args)`` if and only if the governor allows it."""
        return self.governor.execute(self.agent_id, action, args, fn, wait_for_approval=wait_for_approval,
                                     framework=self.framework)

    async def aexecute(self, action: str, args: Mapping[str, Any] | None,
                       fn: Callable[[dict[str, Any]], Any | Awaitable[Any]], *,
                       wait_for_approval: float | None = None) -> ExecutionResult:
        """Async ``execute``; ``fn`` may be a coroutine function."""
        return await self.governor.aexecute(self.agent_id, action, args, fn, wait_for_approval=wait_for_approval,
                                            framework=self.framework)

    @property
    def trust_score(self) -> int:
        """The agent's current trust score."""
        return self.governor.trust_score(self.agent_id)
