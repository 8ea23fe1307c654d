"""The Governor: the pipeline every adapter calls, and AgentHandle, its per-agent face.

``before_call`` runs identity -> trust gate -> policy -> escalation -> audit through the compiled pipeline
(``claw_governance.pipeline``: the plugin hooks as one table of bound callables) and returns a Decision;
nothing may run unless it is ALLOW. Any error on that path is a DENY. ``after_call`` records the outcome
(trust, ``agent_action`` audit entry).
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
from claw_governance.errors import ConfigError, EscalationInputError
from claw_governance.escalation import EscalationQueue
from claw_governance.escalation.plugin import EscalationPlugin, default_notifiers
from claw_governance.escalation.reviewers import Reviewer, ReviewerRegistry
from claw_governance.identity import IdentityRegistry, TrustLedger
from claw_governance.identity.plugin import IdentityPlugin, TrustPlugin
from claw_governance.identity.shared import SharedState
from claw_governance.jobs import Job, JobRegistry
from claw_governance.jobs.receipts import ModelCall
from claw_governance.metrics import DecisionCounters
from claw_governance.model import (
    AuditEvent,
    CallOutcome,
    Decision,
    Escalation,
    EscalationStatus,
    ExecutionResult,
    Outcome,
    Stage,
    ToolCall,
    new_call_id,
)
from claw_governance.pipeline import Pipeline, build_pipeline
from claw_governance.plugins import ClawPluginManager, plugins_from_env
from claw_governance.policy import PolicySet, PolicyStore, ReloadResult, TrustSettings
from claw_governance.policy.budgets import BudgetGate
from claw_governance.policy.labels import SessionLabels
from claw_governance.policy.plugin import PolicyPlugin
from claw_governance.state import StateStore, describe_store, open_state_store
from claw_governance.state.faults import StateStoreError
from claw_governance.tracing import CallTracer

log = logging.getLogger("claw_governance")

#: The reason of every decision a closed governor gives (its hooks and wrapped tools stay in place and deny).
CLOSED_REASON = "governor is closed"


@dataclass(frozen=True, slots=True)
class _AgentFacts:
    """Per-agent facts of one policy version that every call needs (cached: no lookups per call)."""

    settings: TrustSettings
    minimum: int
    sensitive: frozenset[str]
    metadata_only: bool
    require_token: bool = False  # the work contract demands a job token (token.require_scope)


_NO_FACTS = _AgentFacts(TrustSettings(), 0, frozenset(), False)
_NO_METADATA: Mapping[str, Any] = MappingProxyType({})  # shared, read-only: most calls carry no metadata


def _audit_form(decision: Decision) -> dict[str, Any]:
    """``decision.as_dict()`` sharing the rule's prebuilt dict (only serialised, never changed, on this path)."""
    rule = decision.rule
    return {
        "outcome": decision.outcome._value_,
        "allowed": decision.outcome is Outcome.ALLOW,
        "reason": decision.reason,
        "rule": None if rule is None else rule.audit_form,
        "stage": decision.stage._value_,  # a plain str in the entry, as before Stage
        "escalation_id": decision.escalation_id,
    }


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
        tracer_provider: Any = None,
        **settings: Any,
    ) -> None:
        if config is None:
            paths = {
                "policy_path": policy_path,
                "audit_path": audit_path,
                "identity_path": identity_path,
                "state_path": settings.pop("state_path", None),
            }
            try:
                given: dict[str, Any] = {k: Path(v) for k, v in paths.items() if v is not None}
                config = GovernorConfig(**given, **settings)
            except TypeError as exc:
                raise ConfigError(f"unknown Governor setting: {exc}") from None
        elif policy_path or audit_path or identity_path or settings:
            raise ConfigError("pass either config= or individual settings, not both")
        self.config = config
        env_plugins = plugins_from_env()  # before anything is opened: a bad $CLAW_PLUGINS fails here
        self._closed = False
        self._enabled = False
        self._health_lock = threading.Lock()
        self._faults: dict[str, str] = {}
        self.decision_counters = DecisionCounters()  # issue 17: what /metrics reports (cheap, see metrics.py)
        self._metrics_registry: Any = None
        self.tracer = CallTracer(tracer_provider)  # OpenTelemetry spans (the global provider unless given)
        # One redactor for every sink (trail, escalation context, faults); its bound is max_stored_output.
        self.redactor = (
            DEFAULT_REDACTOR
            if config.max_stored_output == MAX_TEXT
            else DEFAULT_REDACTOR.with_limits(max_text=config.max_stored_output)
        )
        self._facts_cache: dict[str, _AgentFacts] = {}
        self._facts_policy: PolicySet | None = None

        self.pm = ClawPluginManager()
        # The built-in plugins' implementations, by hook: the compiled pipeline calls them directly while
        # they are a step's only implementation (filled in before each built-in plugin is registered).
        self._builtins: dict[str, Callable[..., Any]] = {}
        self._pipeline: Pipeline = build_pipeline(self.pm, self._builtins)
        self.pm.add_listener(self._rebuild_pipeline)  # any register/unregister/monitoring: a new table
        self.state: StateStore = open_state_store(config)
        try:
            self.audit: AuditTrail = open_trail(config, self.state)
        except BaseException:
            self.state.close()
            raise
        self.audit.redactor = self.redactor
        self.audit_sink: Any = None
        self._audit_plugin = AuditPlugin(self.audit)
        self._builtins["claw_record_audit"] = self._audit_plugin.claw_record_audit
        self.pm.register(self._audit_plugin, name="audit")
        try:
            self.policies = PolicyStore(
                config.policy_path, on_reload=self._policy_reloaded, limits=config.argument_limits
            )
            self.identities = IdentityRegistry(config, self.state, self.record)
            self.trust = TrustLedger(config, self.state, self.record, on_zero=self._revoke_at_zero)
            self.escalations = EscalationQueue(config, self.state, self.record)
            self.jobs = JobRegistry(self.state, self.audit.key.private_key(), self.record)
            SharedState.for_store(self.state, config.state_sync_interval).flushers.append(self.jobs.refresh)
            self.reviewers = ReviewerRegistry(self.state, self._is_agent)
            self.audit_sink = self._start_audit_sink(config)
        except BaseException:
            self.audit.close()
            self.state.close()
            raise
        self._policy_plugin = PolicyPlugin()
        if config.fleet_rate_limits:
            self._policy_plugin.store = self.state
        self.budget_gate = BudgetGate(self.state)  # `budgets:` in the policy, counted in the state store
        self.session_labels = SessionLabels(
            self.state, config.state_sync_interval, lambda message: self._fault("labels", message)
        )
        self._identity_plugin = IdentityPlugin(self.identities)
        self._trust_plugin = TrustPlugin(self.trust)
        escalation_plugin = EscalationPlugin(self.escalations, self.redact)
        self._builtins.update(
            claw_decide=self._policy_plugin.claw_decide,
            claw_verify_identity=self._identity_plugin.claw_verify_identity,
            claw_trust_score=self._trust_plugin.claw_trust_score,
            claw_update_trust=self._trust_plugin.claw_update_trust,
            claw_consume_grant=escalation_plugin.claw_consume_grant,
            claw_open_escalation=escalation_plugin.claw_open_escalation,
        )
        self.pm.register(self._policy_plugin, name="policy")
        self.pm.register(self._identity_plugin, name="identity")
        self.pm.register(self._trust_plugin, name="trust")
        self.pm.register(escalation_plugin, name="escalation")
        for index, notifier in enumerate(default_notifiers(config)):
            self.pm.register(notifier, name=f"notifier-{index}")
        for plugin in plugins:
            self.pm.register(plugin)
        for name, plugin in env_plugins:
            self.pm.register(plugin, name=name)
        if config.load_entry_points:
            self.pm.load_entry_points()
        self.pm.hook.claw_startup(governor=self)
        self._archive_policy(self.policy)
        if config.policy_reload_interval:
            self.policies.watch(config.policy_reload_interval)
        if config.enable_adapters:
            self.enable()

    # ------------------------------------------------------------------------------------ construction

    @classmethod
    def from_env(cls, **overrides: Any) -> Governor:
        """A governor configured from POLICY_PATH, AUDIT_PATH, IDENTITY_PATH ... (the seed's variables)."""
        return cls(config=config_from_env(**overrides))

    def agent(
        self, agent_id: str, *, framework: str = "python", job_token: str | None = None, job_id: str | None = None
    ) -> AgentHandle:
        """The handle through which one agent's calls are governed; creates its identity if allowed.

        With ``job_token`` every call carries that token and is checked against it before the policy
        (see :meth:`start_job`); ``job_id`` additionally binds the handle to that job (a token minted for
        another job is then refused).
        """
        if not isinstance(agent_id, str) or not agent_id.strip():
            raise ConfigError(f"agent id must be a non-empty string, not {agent_id!r}")
        if not self._closed:  # closed: the stores are gone; every call of the handle is denied anyway
            self.identities.ensure(agent_id)
        return AgentHandle(self, agent_id, framework, job_token, job_id)

    # ------------------------------------------------------------------------------ work contracts

    def start_job(
        self,
        job_id: str,
        agent_id: str,
        scope: list[str] | tuple[str, ...] | str,
        ttl: float = 1800,
        pin_policy: bool = True,
    ) -> Job:
        """Start a job (or retry one: a new token, the old one refused) and return it with its ``.token``.

        The token is a JWT (EdDSA) naming the job, the agent, the scope (action patterns), the policy hash
        in force when ``pin_policy`` (a call after a policy change is then denied as policy drift), and an
        expiry ``ttl`` seconds from now (bounded by the contract's ``token.max_ttl``).
        """
        job, _ = self.jobs.start(job_id, agent_id, scope, ttl, policy=self.policy, pin_policy=pin_policy)
        return job

    def revoke_job(self, job_id: str, reason: str = "revoked", *, by: str | None = None) -> None:
        """Revoke a job: its tokens are refused at once here and within ``state_sync_interval`` elsewhere."""
        self.jobs.revoke(job_id, reason, by=by)

    def check_model(
        self, agent_id: str, model: str, provider: str | None = None, *, job_token: str | None = None
    ) -> Decision:
        """May ``agent_id`` call this model route (``provider/model``)? Checked against the work contract's
        ``models`` and, with a job token, the token's validity. Call it before sending the request; a DENY is
        also written to the trail as a ``model_call`` violation (the adapter must not send the request)."""
        from claw_governance.jobs.receipts import model_route, route_violation

        policy = self.policy
        route = model_route(model, provider)
        call = ToolCall(agent_id, f"model:{route}", {}, "model", job_token=job_token)
        if self._closed:  # a closed governor allows nothing (the trail is closed: nothing is recorded)
            return self._closed_decision(call)
        try:
            reason = route_violation(policy.contract(agent_id), route)
            if reason is None and (job_token is not None or self._facts(policy, agent_id).require_token):
                reason = self.jobs.check(call, policy, check_scope=False)  # scope is about actions, not models
        except Exception as exc:  # fail closed
            reason = f"Governance error in the model check ({type(exc).__name__})"
        if reason is None:
            return Decision(
                Outcome.ALLOW, f'Model route "{route}" is allowed', call, policy_hash=policy.hash, stage=Stage.MODEL
            )
        decision = Decision(
            Outcome.DENY, reason[0].upper() + reason[1:], call, policy_hash=policy.hash, stage=Stage.MODEL
        )
        with contextlib.suppress(Exception):  # the caller blocks the call anyway; an audit fault shows in health
            self.record(
                AuditEvent(
                    "model_call",
                    agent_id,
                    call.action,
                    policy_hash=policy.hash,
                    details={"violation": decision.reason},
                    meta={"route": route, "blocked": True, **self.jobs.audit_fields(call)},
                )
            )
        return decision

    def record_model_call(self, receipt: ModelCall, *, job_token: str | None = None) -> None:
        """Write a ``model_call`` receipt: route, hashes of request and response, usage, duration, the tool
        call ids the model asked for, and the job it ran under. A route outside the contract's ``models`` is
        recorded as a violation (for frameworks that cannot block before sending). Never raises."""
        from claw_governance.jobs.receipts import content_hash, route_violation

        if self._closed:
            log.warning("model call of %s not recorded: %s", receipt.agent_id, CLOSED_REASON)
            return
        policy = self.policy
        route = receipt.route
        violation = route_violation(policy.contract(receipt.agent_id), route)
        call = ToolCall(receipt.agent_id, f"model:{route}", {}, receipt.framework, job_token=job_token)
        usage = {
            str(k): v
            for k, v in (receipt.usage or {}).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        try:
            self.record(
                AuditEvent(
                    "model_call",
                    receipt.agent_id,
                    call.action,
                    policy_hash=policy.hash,
                    details={
                        "usage": usage,
                        "tool_call_ids": [str(t) for t in receipt.tool_call_ids],
                        "violation": violation,
                    },
                    meta={
                        "route": route,
                        "model": str(receipt.model),
                        "provider": receipt.provider,
                        "request_hash": content_hash(receipt.request),
                        "response_hash": content_hash(receipt.response),
                        "duration_ms": None if receipt.duration_ms is None else round(receipt.duration_ms, 3),
                        "framework": receipt.framework,
                        "run_id": receipt.run_id,
                        "blocked": False,
                        **self.jobs.audit_fields(call),
                    },
                )
            )
        except Exception as exc:
            log.error("could not record the model call of %s: %s", receipt.agent_id, exc)

    def _archive_policy(self, policy: PolicySet) -> None:
        """Keep the policy set in force in the state store's archive, by its hash (``claw-gov policy show``)."""
        if not policy.sources:
            return
        try:
            self.state.archive_policy(policy.hash, dict(policy.sources), time.time())
        except Exception as exc:  # the archive is evidence, not a gate: report it, never block
            self._fault("policy-archive", f"{type(exc).__name__}: {exc}")

    def register_plugin(self, plugin: object, name: str | None = None) -> None:
        """Add a plugin at run time: the pipeline table is rebuilt, so it takes part in the very next call."""
        self.pm.register(plugin, name=name)

    @staticmethod
    def _start_audit_sink(config: GovernorConfig) -> Any:
        """The background copy of the local trail to ``config.audit_sink`` (None without one)."""
        if config.audit_sink is None or config.audit_path is None:
            return None
        from claw_governance.audit.sink import AuditReplicator  # psycopg only when asked for

        return AuditReplicator(config.audit_path, config.audit_sink, interval=config.audit_sink_interval).start()

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
        """Write an event through the pipeline's ``claw_record_audit`` step; raises if any implementation fails."""
        try:
            self._pipeline.record_audit(event)
        except Exception as exc:
            self._fault("audit", f"{exc.__class__.__name__}: {exc}")
            raise

    @property
    def pipeline(self) -> Pipeline:
        """The compiled pipeline in force (rebuilt whenever plugins or hook-call monitoring change)."""
        return self._pipeline

    def _rebuild_pipeline(self) -> None:
        self._pipeline = build_pipeline(self.pm, self._builtins)

    def _fault(self, component: str, message: str) -> None:
        from claw_governance.timeparse import iso_utc

        message = redact_text(message)  # faults reach health_check() (often behind /health) and the log
        with self._health_lock:
            self._faults[component] = f"{iso_utc()} {message}"
        self.decision_counters.fault(component)
        log.error("claw-governance %s fault: %s", component, message)

    def _clear_fault(self, component: str) -> None:
        if component in self._faults:
            with self._health_lock:
                self._faults.pop(component, None)

    def _is_agent(self, name: str) -> bool:
        """Whether ``name`` is a registered agent identity (such a name can never review)."""
        return self.state.get_identity(name) is not None or (
            name != name.lower() and self.state.get_identity(name.lower()) is not None
        )

    def _revoke_at_zero(self, agent_id: str) -> None:
        self.identities.revoke(agent_id, "trust score reached 0")

    def _policy_reloaded(self, result: ReloadResult) -> None:
        if result.error:
            self.decision_counters.reload_failed()
            self._fault("policy", f"reload failed, previous policy {result.previous_hash[:12]} stays: {result.error}")
        else:
            self._clear_fault("policy")
            if result.changed:
                self._archive_policy(self.policy)
        with contextlib.suppress(Exception):  # a failed write is already reported as an audit fault
            self.record(
                AuditEvent(
                    "policy_reload",
                    policy_hash=result.policy_hash,
                    details={
                        "ok": result.error is None,
                        "changed": result.changed,
                        "previous_hash": result.previous_hash,
                        "error": result.error,
                        "files": list(self.policy.files),
                        "removed_deny_files": list(result.removed_deny),
                        "explicit": result.explicit,
                    },
                )
            )

    def make_call(
        self,
        agent_id: str,
        action: str,
        args: Mapping[str, Any] | None = None,
        *,
        framework: str = "python",
        call_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        job_token: str | None = None,
    ) -> ToolCall:
        """Build a ToolCall; signs it on the agent's behalf when signatures are required."""
        call = ToolCall(
            agent_id,
            action,
            dict(args) if args else {},
            framework,
            call_id or new_call_id(),
            metadata=dict(metadata) if metadata else _NO_METADATA,
            job_token=job_token,
        )
        if self.config.require_signature and not self._closed:
            sign = getattr(self.identities, "sign_call", None)
            if sign is not None:
                try:
                    call = sign(call)
                except Exception as exc:  # an unsigned call is then denied by the identity step
                    log.warning("could not sign call for %s: %s", agent_id, redact_text(str(exc)))
        return call

    # --------------------------------------------------------------------------------------- the pipeline

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
                agent_policy is not None and agent_policy.audit_level == "metadata",
                agent_policy is not None
                and agent_policy.contract is not None
                and agent_policy.contract.token_require_scope,
            )
            if len(self._facts_cache) >= 65536:
                self._facts_cache = {}  # bounded: a flood of invented agent ids cannot grow it
            self._facts_cache[agent_id] = facts
        return facts

    def _decide(self, call: ToolCall, policy: PolicySet, facts: _AgentFacts) -> Decision:
        """Identity, trust gate, job token and policy through the pipeline table; then an ESCALATE's step.

        One path whichever entry a step holds (a built-in plugin's method or the real hook call): ``None``
        from a step means that no plugin answered, and denies.
        """
        steps = self._pipeline
        hook = "claw_verify_identity"
        try:
            verdict = steps.verify_identity(call, policy)
            if verdict is None or not verdict.ok:
                if verdict is not None and verdict.trust_penalty:
                    hook = "claw_update_trust"
                    steps.update_trust(
                        call.agent_id, facts.settings.bad_signature, f"bad signature: {verdict.reason}", policy
                    )
                reason = verdict.reason if verdict is not None else f'No identity plugin vouches for "{call.agent_id}"'
                return Decision(Outcome.DENY, reason, call, policy_hash=policy.hash, stage=Stage.IDENTITY)
            hook = "claw_trust_score"
            score = steps.trust_score(call.agent_id, policy)
            if score is None or score < facts.minimum:
                return Decision(
                    Outcome.DENY,
                    f'Trust score of "{call.agent_id}" is {score}, below the minimum {facts.minimum}',
                    call,
                    policy_hash=policy.hash,
                    stage=Stage.TRUST,
                )
            if call.job_token is not None or facts.require_token:
                hook = "job token check"
                refused = self.jobs.check(call, policy)
                if refused is not None:
                    return Decision(Outcome.DENY, refused, call, policy_hash=policy.hash, stage=Stage.JOB)
            hook = "claw_decide"
            decision = steps.decide(call, policy)
        except Exception as exc:
            raise _Fault(hook, exc) from exc
        if decision is None:
            return Decision(
                Outcome.DENY, "No policy plugin gave a decision (default deny)", call, policy_hash=policy.hash
            )
        if decision.outcome is not Outcome.ESCALATE:
            return decision
        return self._escalate(call, policy, decision)

    def _escalate(self, call: ToolCall, policy: PolicySet, decision: Decision) -> Decision:
        """An ESCALATE: consume a matching approved grant (ALLOW) or open an escalation (pipeline steps)."""
        steps = self._pipeline
        try:
            granted = steps.consume_grant(call, decision)
        except Exception as exc:
            raise _Fault("claw_consume_grant", exc) from exc
        if granted:
            return Decision(
                Outcome.ALLOW,
                f"Approved by a human (escalation {granted}); {decision.reason}",
                call,
                decision.rule,
                policy.hash,
                escalation_id=granted,
                stage=Stage.ESCALATION,
            )
        limited = self._policy_plugin.escalation_limited(call, decision, policy)  # escalations_per_hour
        if limited is not None:
            return limited
        timeout = (
            decision.rule.timeout_seconds
            if decision.rule and decision.rule.timeout_seconds
            else self.config.escalation_timeout_hours * 3600.0
        )
        try:
            escalation = steps.open_escalation(call, decision, timeout)
        except Exception as exc:
            raise _Fault("claw_open_escalation", exc) from exc
        if escalation is None:
            return Decision(
                Outcome.DENY,
                f"Needs human approval but no escalation store accepted it; denied. ({decision.reason})",
                call,
                decision.rule,
                policy.hash,
                stage=Stage.ESCALATION,
            )
        self._notify(escalation)
        return Decision(
            Outcome.ESCALATE,
            decision.reason,
            call,
            decision.rule,
            policy.hash,
            escalation_id=escalation.id,
            stage=decision.stage,
        )

    def _notify(self, escalation: Escalation) -> None:
        try:
            self._pipeline.notify_escalation(escalation)
        except Exception as exc:  # notifications never change a decision; they do show in health
            self._fault("notify", f"{type(exc).__name__}: {exc}")

    def before_call(self, call: ToolCall) -> Decision:
        """Decide one call and audit the decision. Only an ALLOW lets the tool run. Never raises."""
        if self._closed:
            return self._closed_decision(call)
        traced = time.time_ns() if self.tracer.enabled() else 0
        policy = self.policies.current
        try:
            if policy.uses_session:  # conditions name session.labels: give them this session's state
                call = self.session_labels.attach(call)
            facts = self._facts(policy, call.agent_id)
            decision = self._decide(call, policy, facts)
            if policy.has_budgets and decision.outcome is Outcome.ALLOW:
                decision = self._budget(call, policy, decision)
        except _Fault as fault:
            # The reason names the hook and the error's type only: an exception's text can quote the call's
            # arguments (pydantic does), and the reason is audited as is and shown to the model. The full
            # text goes to health_check()["faults"] (after the value detectors) for the operator.
            self._fault("plugin", redact_text(str(fault)))
            if isinstance(fault.error, StateStoreError):  # its text is ours (no arguments): say what to fix
                self._fault("state", str(fault.error))
                reason = f"{fault.error}: denied"
            else:
                reason = (
                    f"Governance error in {fault.hook} ({type(fault.error).__name__}); denied to fail "
                    "closed (details in health_check)"
                )
            decision = Decision(Outcome.DENY, reason, call, policy_hash=policy.hash, stage=Stage.PLUGIN)
            facts = _NO_FACTS
        except Exception as exc:  # a bug of ours is still a DENY, never an ALLOW
            self._fault("governor", redact_text(f"{type(exc).__name__}: {exc}"))
            decision = Decision(
                Outcome.DENY,
                f"Governance error ({type(exc).__name__}); denied to fail closed (details in health_check)",
                call,
                policy_hash=policy.hash,
                stage=Stage.GOVERNOR,
            )
            facts = _NO_FACTS
        meta: dict[str, Any] = {"call_id": call.call_id, "framework": call.framework}
        if facts.metadata_only:
            meta["args_hash"] = call.args_hash
        if call.job_token is not None:
            meta.update(self.jobs.audit_fields(call))
        form = _audit_form(decision)
        if policy.has_shadow:  # `mode: shadow` rules: audit what they would change; they never decide
            shadow = self._shadow(call, policy, decision)
            if shadow is not None:
                form["shadow"] = shadow
        started = time.perf_counter()
        try:
            # The pipeline's audit step itself (``record`` minus its wrapper: this is every call's path).
            self._pipeline.record_audit(
                AuditEvent(
                    "policy_decision",
                    call.agent_id,
                    call.action,
                    None if facts.metadata_only else call.args,
                    form,
                    policy.hash,
                    None,
                    facts.sensitive,
                    True,
                    meta,
                )
            )
        except Exception as exc:
            audit_seconds = time.perf_counter() - started
            self._fault("audit", f"{exc.__class__.__name__}: {exc}")
            self.decision_counters.decided(call.agent_id, "deny", audit_seconds)
            denied = Decision(
                Outcome.DENY,
                f"Audit trail cannot be written ({type(exc).__name__}: {exc}); denied",
                call,
                decision.rule,
                policy.hash,
                stage=Stage.AUDIT,
            )
            if traced:
                self.tracer.decided(call, denied, traced, audit_seconds)
            return denied
        audit_seconds = time.perf_counter() - started
        self.decision_counters.decided(call.agent_id, decision.outcome._value_, audit_seconds)
        if traced:
            self.tracer.decided(call, decision, traced, audit_seconds)
        return decision

    def _closed_decision(self, call: ToolCall) -> Decision:
        """The DENY of a closed governor: nothing is consulted (the stores and the trail are closed)."""
        return Decision(Outcome.DENY, CLOSED_REASON, call, policy_hash=self.policies.current.hash, stage=Stage.CLOSED)

    def _budget(self, call: ToolCall, policy: PolicySet, decision: Decision) -> Decision:
        """``budgets:`` on an ALLOW (atomic in the state store); ``then: escalate`` goes through the escalation
        step, whose approved grant (a human let this call pass the budget) is recorded without the limit."""
        try:
            decision = self.budget_gate.apply(call, policy, decision)
            if decision.outcome is Outcome.ESCALATE:
                decision = self._escalate(call, policy, decision)
                if decision.outcome is Outcome.ALLOW:
                    decision = self.budget_gate.apply(call, policy, decision)
        except _Fault:
            raise
        except Exception as exc:
            raise _Fault("budgets", exc) from exc
        return decision

    def _shadow(self, call: ToolCall, policy: PolicySet, decision: Decision) -> dict[str, Any] | None:
        """The shadow comparison for a call's audit entry; an error here is reported, never decides."""
        try:
            return policy.shadow_decision(call, decision if decision.stage in (Stage.POLICY, Stage.DEFAULT) else None)
        except Exception as exc:
            self._fault("shadow", redact_text(f"{type(exc).__name__}: {exc}"))
            return {"error": type(exc).__name__}

    def after_call(self, call: ToolCall, decision: Decision, outcome: CallOutcome) -> None:
        """Record what happened when an allowed call ran: trust change and an ``agent_action`` entry.

        A value redacted from the call's arguments is scrubbed from its output and error text too (a tool
        that echoes ``token=<the password argument>`` does not leak it), and the stored output is bounded
        (``max_stored_output``; the full value's size and SHA-256 are recorded beside it).
        """
        if self._closed:  # a call allowed before close() that finished after it: the trail is closed
            log.warning("outcome of %s %s not recorded: %s", call.agent_id, call.action, CLOSED_REASON)
            return
        self.tracer.finished(call, outcome)
        policy = self.policies.current
        if outcome.success and policy.has_labels:  # its output is in the agent's context now: label the session
            try:
                self.session_labels.record(call, policy)
            except Exception as exc:  # reported; SessionLabels already keeps the labels in this process
                self._fault("labels", redact_text(f"{type(exc).__name__}: {exc}"))
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
            reason = "action succeeded" if outcome.success else f"action failed: {error}"
            try:
                self._pipeline.update_trust(call.agent_id, delta, reason, policy)
            except Exception as exc:
                self._fault("trust", str(_Fault("claw_update_trust", exc)))
        details: dict[str, Any] = {"error": error}
        if not facts.metadata_only:
            if output is None or (type(output) is str and len(output) <= self.config.max_stored_output):
                details["output"] = output  # the common case, without a call
            else:
                output, truncated = self._bound_output(output)
                details["output"] = output
                if truncated is not None:
                    details["output_truncated"] = truncated
        meta: dict[str, Any] = {
            "call_id": call.call_id,
            "framework": call.framework,
            "success": outcome.success,
            "duration_ms": round(outcome.duration_ms, 3),
        }
        if call.job_token is not None:
            meta.update(self.jobs.audit_fields(call))
        try:
            # The arguments are in this call's policy_decision entry (same call_id), written before the tool
            # ran; repeating them here would redact and hash them twice.
            self._pipeline.record_audit(
                AuditEvent(
                    "agent_action",
                    call.agent_id,
                    call.action,
                    None,
                    {
                        "outcome": decision.outcome._value_,
                        "allowed": decision.outcome is Outcome.ALLOW,
                        "escalation_id": decision.escalation_id,
                    },
                    decision.policy_hash,
                    details,
                    facts.sensitive,
                    True,
                    meta,
                )
            )
        except Exception as exc:
            self._fault("audit", f"{exc.__class__.__name__}: {exc}")
            log.error("could not audit the outcome of %s %s: %s", call.agent_id, call.action, redact_text(str(exc)))

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
            return bound_text(output, limit), {
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "kept_chars": limit,
            }
        if isinstance(output, bytes | bytearray | memoryview):
            return output, None  # stored as "[bytes:N]"
        try:
            data = orjson.dumps(output, default=repr, option=orjson.OPT_NON_STR_KEYS)
        except Exception:  # not serialisable as such: the trail's walk still bounds every part of it
            return output, None
        if len(data) <= limit:
            return output, None
        text = data[:limit].decode("utf-8", "ignore")
        return text, {
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "kept_chars": limit,
            "format": "json",
        }

    # ------------------------------------------------------------------------------------ the public API

    def execute(
        self,
        agent_id: str,
        action: str,
        args: Mapping[str, Any] | None,
        fn: Callable[[dict[str, Any]], Any],
        *,
        wait_for_approval: float | None = None,
        framework: str = "python",
        job_token: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ExecutionResult:
        """Decide, then run ``fn(args)`` only on ALLOW, then record the outcome."""
        call = self.make_call(agent_id, action, args, framework=framework, job_token=job_token, metadata=metadata)
        decision = self.before_call(call)
        if decision.outcome is Outcome.ESCALATE and wait_for_approval:
            decision = self.wait_for_approval(decision, wait_for_approval)
            call = decision.call  # a reviewer may have approved edited arguments
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

    async def aexecute(
        self,
        agent_id: str,
        action: str,
        args: Mapping[str, Any] | None,
        fn: Callable[[dict[str, Any]], Any | Awaitable[Any]],
        *,
        wait_for_approval: float | None = None,
        framework: str = "python",
        job_token: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ExecutionResult:
        """``execute`` for async code: ``fn`` may be sync or async; waiting for approval does not block."""
        call = self.make_call(agent_id, action, args, framework=framework, job_token=job_token, metadata=metadata)
        decision = self.before_call(call)
        if decision.outcome is Outcome.ESCALATE and wait_for_approval:
            decision = await self.await_approval(decision, wait_for_approval)
            call = decision.call  # a reviewer may have approved edited arguments
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

    def _finish(
        self, call: ToolCall, decision: Decision, started: float, *, output: Any = None, error: Exception | None = None
    ) -> ExecutionResult:
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
        if self._closed:
            return self._closed_decision(decision.call)
        return self._after_wait(decision.call, self.escalations.wait(decision.escalation_id, seconds), decision)

    async def await_approval(self, decision: Decision, seconds: float) -> Decision:
        """``wait_for_approval`` without blocking the event loop."""
        if decision.outcome is not Outcome.ESCALATE or not decision.escalation_id:
            return decision
        if self._closed:
            return self._closed_decision(decision.call)
        resolved = await asyncio.to_thread(self.escalations.wait, decision.escalation_id, seconds)
        return self._after_wait(decision.call, resolved, decision)

    def _after_wait(self, call: ToolCall, resolved: Escalation | None, pending: Decision) -> Decision:
        if resolved is not None and resolved.status is EscalationStatus.APPROVED:
            args = call.args if resolved.edited_args is None else dict(resolved.edited_args)
            if self.config.require_signature or resolved.edited_args is not None:
                # a fresh nonce and timestamp (the approval may come hours later), and the reviewer's edit
                call = self.make_call(
                    call.agent_id,
                    call.action,
                    args,
                    framework=call.framework,
                    call_id=call.call_id,
                    metadata=call.metadata,
                    job_token=call.job_token,
                )
            return self.before_call(call)  # decided again (deny still wins); consumes the approval's grant
        status = (
            "no answer in time"
            if resolved is None or resolved.status is EscalationStatus.PENDING
            else resolved.status.value
        )
        if resolved is not None and resolved.status is EscalationStatus.DENIED and resolved.message:
            return Decision(
                Outcome.DENY,
                f"Escalation {pending.escalation_id} denied by a reviewer: {resolved.message}",
                call,
                pending.rule,
                pending.policy_hash,
                escalation_id=pending.escalation_id,
                stage=Stage.ESCALATION,
            )
        return Decision(
            Outcome.DENY,
            f"Escalation {pending.escalation_id} {status}: {pending.reason}",
            call,
            pending.rule,
            pending.policy_hash,
            escalation_id=pending.escalation_id,
            stage=Stage.ESCALATION,
        )

    def resolve_escalation(
        self,
        escalation_id: str,
        decision: str,
        notes: str = "",
        resolver: str | Reviewer = "",
        *,
        args: Mapping[str, Any] | None = None,
        for_seconds: float | None = None,
        message: str | None = None,
    ) -> Escalation:
        """Approve or deny a pending escalation as a reviewer principal; audited with the reviewer's name and
        credential id.

        ``resolver`` is a :class:`Reviewer` (``gov.reviewers.authenticate(token)`` or, for in-process code,
        ``gov.reviewers.principal("alice")``) or the name of a registered reviewer. Never an agent. ``notes``
        are required. ``args``: approve these edited arguments instead (decided by the policy again; deny
        wins); ``for_seconds``: a standing grant for the same agent and action, bounded by the rule's
        ``max_grant``; ``message``: with a denial, what the model is told. Raises EscalationNotFound,
        EscalationClosed, ReviewerForbidden, EscalationInputError (all EscalationError).
        """
        statuses = {
            "approved": EscalationStatus.APPROVED,
            "approve": EscalationStatus.APPROVED,
            "denied": EscalationStatus.DENIED,
            "deny": EscalationStatus.DENIED,
        }
        status = statuses.get(str(decision).strip().lower())
        if status is None:
            raise EscalationInputError(f"decision must be 'approved' or 'denied', not {decision!r}")
        reviewer = resolver if isinstance(resolver, Reviewer) else self.reviewers.principal(resolver)
        return self.escalations.settle(
            escalation_id,
            status,
            reviewer,
            notes,
            self.reviewers,
            args=args,
            for_seconds=for_seconds,
            message=message,
            decide=self.policy.decide,
            redact=self.redact,
        )

    def trust_score(self, agent_id: str) -> int:
        """The agent's current trust score."""
        score = self._pipeline.trust_score(agent_id, self.policy)
        return int(score) if score is not None else 0

    def minimum_trust(self, agent_id: str) -> int:
        """The trust score below which every call of ``agent_id`` is denied (policy ``trust.min_score``, the
        seed's ``minimum_score``, or the governor's ``min_trust_score``)."""
        return self._facts(self.policy, agent_id).minimum

    def reload_policies(self) -> ReloadResult:
        """Re-read the policy files now; on error the last good policy stays in force (and it is audited)."""
        return self.policies.reload()

    def compliance_report(self, start: str | date | datetime, end: str | date | datetime) -> dict[str, Any]:
        """Totals by outcome, agent and action for ``start``..``end`` (both days included)."""
        return compliance_report(self.audit, start, end, self.policy.metadata_by_agent)

    def health_check(self) -> dict[str, Any]:
        """Status of every component, usable behind a /health endpoint. Never raises: a component that
        cannot even report (a corrupt state database, say) is reported ``"down"`` with the reason."""

        def probe(build: Callable[[], Any]) -> Any:
            try:
                return build()
            except Exception as exc:  # a failing probe is a finding, never an exception for the caller
                text = str(exc) if isinstance(exc, StateStoreError) else f"{type(exc).__name__}: {exc}"
                return {"status": "down", "error": redact_text(text)}

        components: dict[str, Any] = {
            "policy": probe(
                lambda: {
                    "status": "degraded" if self.policies.last_error or self.policies.degraded else "ok",
                    "hash": self.policy.hash,
                    "files": len(self.policy.files),
                    "rules": self.policy.rule_count,
                    "last_reload_error": self.policies.last_error,
                    "deny_rules_lost": self.policies.degraded,
                }
            ),
            "audit": probe(self.audit.health),
            "state": probe(self._state_health),
            "keys": probe(self._keys_health),
            **({"audit_sink": probe(self.audit_sink.health)} if self.audit_sink is not None else {}),
            "plugins": probe(
                lambda: {
                    "status": "degraded" if self.pm.load_failures else "ok",
                    "loaded": sorted(name for name, _ in self.pm.list_name_plugin()),
                    "failed": [
                        f.__dict__ if hasattr(f, "__dict__") else {"name": f.name, "error": f.error}
                        for f in self.pm.load_failures
                    ],
                }
            ),
        }
        try:
            extras = self.pm.hook.claw_health(governor=self)
        except Exception as exc:
            extras = [{"health_plugins": {"status": "degraded", "error": f"{type(exc).__name__}: {exc}"}}]
        for extra in extras:
            if isinstance(extra, dict):
                components.update(extra)
        with self._health_lock:
            faults = dict(self._faults)
        audit = components["audit"]
        if "audit" in faults and isinstance(audit, dict) and audit.get("status") == "ok":
            components["audit"] = {**audit, "status": "degraded", "last_error": faults["audit"]}
        statuses = [c.get("status", "ok") for c in components.values() if isinstance(c, dict)]
        overall = "down" if "down" in statuses else ("degraded" if "degraded" in statuses or faults else "ok")
        pending = probe(lambda: len(self.escalations.pending())) if not self._closed else 0
        warnings = [w for c in components.values() if isinstance(c, dict) for w in c.get("warnings", ())]
        return {
            "status": overall,
            "components": components,
            "faults": faults,
            "escalations_pending": pending if isinstance(pending, int) else None,
            "warnings": warnings,
            "closed": self._closed,
        }

    def _state_health(self) -> dict[str, Any]:
        """The state store: which one, its own probe, and whether the last sync with it worked."""
        if self._closed:
            return {"status": "ok", "closed": True}
        probe = getattr(self.state, "health", None)
        report: dict[str, Any] = {**describe_store(self.state), **(probe() if callable(probe) else {"status": "ok"})}
        sync = self.identities.health()
        report["last_sync"] = sync.get("last_sync")
        if sync.get("last_error") and report.get("status") == "ok":
            report = {**report, "status": "degraded", "last_error": sync.get("last_error")}
        with self._health_lock:
            last = self._faults.get("state")
        if report.get("status") == "ok" and last is not None:
            report = {**report, "last_error": last}
        return report

    def _keys_health(self) -> dict[str, Any]:
        """Whether the private keys this governor writes (agent keys, the audit-signing key) are encrypted."""
        on_disk = self.config.resolved_state_path is not None or self.config.identity_path is not None
        encrypted = bool(self.config.identity_passphrase)
        report: dict[str, Any] = {"status": "ok", "encrypted": encrypted, "on_disk": on_disk}
        if on_disk and not encrypted:
            report["warnings"] = [
                "private keys (agent keys and the governor's audit-signing key) are stored "
                "unencrypted: set CLAW_IDENTITY_PASSPHRASE to encrypt them"
            ]
        return report

    @property
    def metrics_registry(self) -> Any:
        """A ``prometheus_client.CollectorRegistry`` with this governor's metrics (see ``claw_governance.metrics``)."""
        if self._metrics_registry is None:
            from claw_governance.metrics import registry_for

            self._metrics_registry = registry_for(self)
        return self._metrics_registry

    def metrics(self) -> str:
        """This governor's metrics in the Prometheus text format (what ``/metrics`` serves)."""
        from claw_governance.metrics import render

        return render(self.metrics_registry)

    def enable(self) -> None:
        """Switch on every installed adapter's framework-wide interception (``claw_enable``)."""
        if self._closed:
            raise ConfigError(f"cannot enable adapters: {CLOSED_REASON}")
        self.pm.hook.claw_enable(governor=self)
        self._enabled = True

    def disable(self) -> None:
        """Undo ``enable()``: the only way to remove the framework-wide hooks (``close()`` leaves them in
        place, denying every call with "governor is closed", so closing never opens a door)."""
        if self._enabled:
            self.pm.hook.claw_disable(governor=self)
            self._enabled = False

    def close(self) -> None:
        """Stop reload, close the trail and the stores. Idempotent.

        Adapters enabled with ``enable()`` stay installed: from now on every process-wide hook and every
        wrapped tool holding this governor is denied with "governor is closed" (fail closed). Call
        ``disable()`` (before or after ``close()``) to remove them deliberately.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self.pm.hook.claw_shutdown(governor=self)
        finally:
            self.tracer.close()
            self.policies.close()
            self.escalations.close()
            self.trust.close()
            self.identities.close()
            self.audit.close()
            if self.audit_sink is not None:
                self.audit_sink.close()  # after the trail's last entries (bounded: a dead database never hangs)
            self.state.close()

    def __enter__(self) -> Governor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AgentHandle:
    """One agent's view of the governor: ``check`` (decide and audit) and ``execute`` (decide, run, record)."""

    __slots__ = ("_metadata", "agent_id", "framework", "governor", "job_token")

    def __init__(
        self,
        governor: Governor,
        agent_id: str,
        framework: str = "python",
        job_token: str | None = None,
        job_id: str | None = None,
    ) -> None:
        self.governor = governor
        self.agent_id = agent_id
        self.framework = framework
        self.job_token = job_token
        self._metadata: Mapping[str, Any] | None = {"job_id": job_id} if job_id is not None else None

    def check(self, action: str, args: Mapping[str, Any] | None = None) -> Decision:
        """Decide (and audit) one call without running anything. ESCALATE opens an escalation."""
        call = self.governor.make_call(
            self.agent_id, action, args, framework=self.framework, job_token=self.job_token, metadata=self._metadata
        )
        decision = self.governor.before_call(call)
        self.governor.tracer.decided_only(call)  # nothing will run: the call's span ends now
        return decision

    def evaluate(self, action: str, args: Mapping[str, Any] | None = None) -> Decision:
        """What the policy alone says, with no identity, trust, escalation or audit (a dry run)."""
        return self.governor.policy.decide(ToolCall(self.agent_id, action, dict(args or {}), self.framework))

    def execute(
        self,
        action: str,
        args: Mapping[str, Any] | None,
        fn: Callable[[dict[str, Any]], Any],
        *,
        wait_for_approval: float | None = None,
    ) -> ExecutionResult:
        """Run ``fn(args)`` if and only if the governor allows it."""
        return self.governor.execute(
            self.agent_id,
            action,
            args,
            fn,
            wait_for_approval=wait_for_approval,
            framework=self.framework,
            job_token=self.job_token,
            metadata=self._metadata,
        )

    async def aexecute(
        self,
        action: str,
        args: Mapping[str, Any] | None,
        fn: Callable[[dict[str, Any]], Any | Awaitable[Any]],
        *,
        wait_for_approval: float | None = None,
    ) -> ExecutionResult:
        """Async ``execute``; ``fn`` may be a coroutine function."""
        return await self.governor.aexecute(
            self.agent_id,
            action,
            args,
            fn,
            wait_for_approval=wait_for_approval,
            framework=self.framework,
            job_token=self.job_token,
            metadata=self._metadata,
        )

    @property
    def trust_score(self) -> int:
        """The agent's current trust score."""
        return self.governor.trust_score(self.agent_id)
