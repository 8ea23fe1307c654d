"""The compiled policy set: what the governor consults on every call. Built once per (re)load, then read-only.

Semantics (DESIGN.md): a matching deny wins; then escalate; then allow; nothing matched -> deny. An agent's
own rules and the ``agent: "*"`` rules are merged. A condition that cannot be evaluated counts as TRUE for
deny/escalate rules and FALSE for allow rules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from claw_governance.errors import PolicyError
from claw_governance.model import Decision, Outcome, RuleRef, ToolCall
from claw_governance.policy.conditions import Condition
from claw_governance.policy.patterns import PatternIndex, normalize
from claw_governance.policy.schema import Budget, EscalationLimit, PolicyDocument, RateLimit, Rule, TrustSettings

_NAME_CACHE_LIMIT = 16384
_UNKNOWN = " (its condition could not be evaluated for this call, which counts as a match)"


def _order(rules: Iterable[Rule]) -> tuple[Rule, ...]:
    # The decision names the most specific matching rule; ties broken by text so that reordering rules in a
    # file never changes which rule a decision names.
    return tuple(sorted(rules, key=lambda r: (-r.specificity[0], -r.specificity[1], r.pattern, r.file, r.line)))


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A rule with everything a decision needs prepared at load time (no string building per call)."""

    condition: Condition | None
    ref: RuleRef
    reason: str
    unknown_reason: str  # the same, noting that the condition could not be evaluated


@dataclass(frozen=True, slots=True)
class _Matches:
    deny: tuple[_Compiled, ...]
    escalate: tuple[_Compiled, ...]
    allow: tuple[_Compiled, ...]


def _compile(rule: Rule) -> _Compiled:
    ref = _ref(rule)
    if rule.effect is Outcome.DENY:
        reason = f"Denied by {ref.describe()}"
        return _Compiled(rule.condition, ref, reason, reason + _UNKNOWN)
    if rule.effect is Outcome.ESCALATE:
        why = f": {rule.reason}" if rule.reason else ""
        head = f"Needs human approval under {ref.describe()}"
        return _Compiled(rule.condition, ref, head + why, head + _UNKNOWN + why)
    reason = f"Allowed by {ref.describe()}"
    return _Compiled(rule.condition, ref, reason, reason)


class AgentPolicy:
    """Every rule and setting that applies to one agent (its own documents merged with ``*``)."""

    def __init__(self, agent: str, docs: Sequence[PolicyDocument], *, include_shadow: bool = False) -> None:
        self.agent = agent
        self.documents = tuple(docs)
        rules = [r for d in docs for r in d.rules if include_shadow or not r.shadow]
        self.rule_count = len(rules)
        self._deny = PatternIndex((r.pattern, r) for r in rules if r.effect is Outcome.DENY)
        self._escalate = PatternIndex((r.pattern, r) for r in rules if r.effect is Outcome.ESCALATE)
        self._allow = PatternIndex((r.pattern, r) for r in rules if r.effect is Outcome.ALLOW)
        self._memo: dict[str, _Matches] = {}
        self._prepared: dict[int, _Compiled] = {}
        own = [d for d in docs if d.agent == agent]
        shared = [d for d in docs if d.agent != agent]
        explicit = _single(own, "trust") or _single(shared, "trust")
        self.trust_configured = explicit is not None
        self.trust: TrustSettings = explicit if isinstance(explicit, TrustSettings) else TrustSettings()
        self.sensitive_fields = frozenset(f for d in docs for f in d.sensitive_fields)
        level = _single(own, "audit_level") or _single(shared, "audit_level")
        self.audit_level: str = level if isinstance(level, str) else "full"
        days = _single(own, "audit_retention_days") or _single(shared, "audit_retention_days")
        self.audit_retention_days: int | None = days if isinstance(days, int) else None
        self.rate_limits: PatternIndex[RateLimit] = PatternIndex(
            (rl.pattern, rl) for d in docs for rl in d.rate_limits)
        self.escalation_limits: tuple[EscalationLimit, ...] = tuple(el for d in docs for el in d.escalation_limits)
        self.budgets: PatternIndex[Budget] = PatternIndex((b.pattern, b) for d in docs for b in d.budgets)
        self.labels: PatternIndex[frozenset[str]] = PatternIndex((p, names) for d in docs for p, names, _ in d.labels)
        meta = _single(own, "metadata") if own else _single(shared, "metadata")
        self.metadata: dict[str, Any] = dict(meta) if isinstance(meta, dict) else {}

    def _compiled(self, rule: Rule) -> _Compiled:
        hit = self._prepared.get(id(rule))
        if hit is None:
            hit = self._prepared[id(rule)] = _compile(rule)
        return hit

    def matches(self, name: str) -> _Matches:
        """The rules whose patterns match ``name`` (normalised), per effect, most specific first."""
        hit = self._memo.get(name)
        if hit is None:
            hit = _Matches(*(tuple(self._compiled(r) for r in _order(index.lookup(name)))
                             for index in (self._deny, self._escalate, self._allow)))
            if len(self._memo) >= _NAME_CACHE_LIMIT:
                self._memo.clear()
            self._memo[name] = hit
        return hit


SESSION_METADATA_KEY = "claw_session"  # set by the governor (never trusted from the caller): {"labels": [...]}


def session_arguments(call: ToolCall) -> dict[str, Any]:
    """The call's arguments with ``session`` bound to the session state the governor attached, replacing any
    argument of that name (a tool argument cannot pose as session state); without one, ``session`` is
    absent, so a condition naming it cannot be evaluated: deny and escalate rules match, allow rules do not."""
    args = dict(call.args)
    args.pop("session", None)
    state = call.metadata.get(SESSION_METADATA_KEY) if call.metadata else None
    if isinstance(state, dict):
        args["session"] = state
    return args


def _single(docs: Sequence[PolicyDocument], attr: str) -> object:
    values = [(d, getattr(d, attr)) for d in docs if getattr(d, attr) is not None]
    if len(values) > 1:
        first, second = values[0][0], values[1][0]
        raise PolicyError(f"'{attr.split('_')[0]}' for agent {first.agent!r} is set twice: here and at "
                          f"{second.file}:{second.line}", file=first.file, line=first.line)
    return values[0][1] if values else None


def _ref(rule: Rule) -> RuleRef:
    return RuleRef(rule.effect, rule.raw_pattern, rule.agent, rule.source,
                   rule.condition.source if rule.condition else None, rule.reason, rule.timeout_seconds)


class PolicySet:
    """All loaded policies, compiled. ``decide(call)`` is pure: no I/O, no mutation but memo caches."""

    def __init__(self, documents: Sequence[PolicyDocument], content_hash: str, files: Sequence[str] = (),
                 warnings: Sequence[str] = (), *, include_shadow: bool = False) -> None:
        self.documents = tuple(documents)
        self.hash = content_hash
        self.files = tuple(files)
        self.warnings = tuple(warnings)
        self.include_shadow = include_shadow
        by_agent: dict[str, list[PolicyDocument]] = {}
        for doc in self.documents:
            if doc.shadow and not include_shadow:  # a shadow document is no part of what is enforced
                continue
            by_agent.setdefault(doc.agent, []).append(doc)
        self._shared = by_agent.pop("*", [])
        self._agents: dict[str, AgentPolicy] = {a: AgentPolicy(a, docs + self._shared, include_shadow=include_shadow)
                                                for a, docs in by_agent.items()}
        self._wildcard = AgentPolicy("*", self._shared, include_shadow=include_shadow) if self._shared else None
        self.has_shadow = any(r.shadow for d in self.documents for r in d.rules)
        self.has_budgets = any(doc.budgets for doc in self.documents)
        # Data-flow labels: a policy that names `session.labels` in a condition gets the call's session labels
        # bound as `session` (see session_arguments); one that attaches labels has them recorded after calls.
        self.uses_session = any(r.condition is not None and "session" in r.condition.source
                                for d in self.documents for r in d.rules)
        self.has_labels = any(doc.labels for doc in self.documents)
        self._shadow_view: PolicySet | None = None
        self._names: dict[str, str] = {}
        self.has_rate_limits = any(doc.rate_limits for doc in self.documents)

    @property
    def shadow_view(self) -> PolicySet:
        """The policy with every ``mode: shadow`` rule and document enforced: what shadow mode compares the
        enforcing decision with (built once, on first use)."""
        if self.include_shadow or not self.has_shadow:
            return self
        view = self._shadow_view
        if view is None:
            view = self._shadow_view = PolicySet(self.documents, self.hash, self.files, self.warnings,
                                                 include_shadow=True)
        return view

    def shadow_decision(self, call: ToolCall, enforced: Decision | None = None) -> dict[str, Any] | None:
        """What the shadow rules would change for ``call``, for its audit entry, or None when nothing.

        ``{"would": "would_deny" | "would_escalate" | "would_allow", "outcome", "reason", "rule", "enforced"}``,
        comparing the shadow view's decision with the enforcing policy's (``enforced``, else decided here)."""
        if not self.has_shadow or self.include_shadow:
            return None
        enforced = enforced if enforced is not None else self.decide(call)
        candidate = self.shadow_view.decide(call)
        if candidate.outcome is enforced.outcome:
            return None
        rule = candidate.rule
        return {"would": f"would_{candidate.outcome.value}", "outcome": candidate.outcome.value,
                "reason": candidate.reason, "rule": None if rule is None else dict(rule.audit_form),
                "enforced": enforced.outcome.value}

    @classmethod
    def empty(cls) -> PolicySet:
        """No policies at all: every call is denied."""
        return cls((), hashlib.sha256(b"").hexdigest())

    @property
    def agents(self) -> tuple[str, ...]:
        """Agent ids that have their own policy (normalised)."""
        return tuple(sorted(self._agents))

    @property
    def rule_count(self) -> int:
        """Number of rules over all documents."""
        return sum(len(d.rules) for d in self.documents)

    def _norm(self, text: str) -> str:
        hit = self._names.get(text)
        if hit is None:
            hit = normalize(text)
            if len(self._names) >= _NAME_CACHE_LIMIT:
                self._names.clear()
            self._names[text] = hit
        return hit

    def for_agent(self, agent_id: str) -> AgentPolicy | None:
        """The merged policy for an agent, the ``*`` policy if it has none, or None (deny everything)."""
        return self._agents.get(self._norm(agent_id), self._wildcard)

    def trust_settings(self, agent_id: str) -> TrustSettings:
        """Trust tuning for an agent (defaults when its policy says nothing)."""
        policy = self.for_agent(agent_id)
        return policy.trust if policy is not None else TrustSettings()

    def trust_configured(self, agent_id: str) -> bool:
        """Whether a policy for this agent sets ``trust:`` (else the governor's minimum applies)."""
        policy = self.for_agent(agent_id)
        return policy is not None and policy.trust_configured

    def metadata(self, agent_id: str) -> dict[str, Any]:
        """The ``metadata:`` of the agent's own policy (name, description, version, owner ...), or {}."""
        policy = self.for_agent(agent_id)
        return dict(policy.metadata) if policy is not None else {}

    @property
    def metadata_by_agent(self) -> dict[str, dict[str, Any]]:
        """``metadata:`` of every agent whose policy has one (``"*"`` for the shared one), for reports."""
        out = {agent: dict(p.metadata) for agent, p in sorted(self._agents.items()) if p.metadata}
        if self._wildcard is not None and self._wildcard.metadata:
            out["*"] = dict(self._wildcard.metadata)
        return out

    def labels_for(self, agent_id: str, action: str) -> frozenset[str]:
        """The labels a successful call of ``action`` attaches to its session (``labels:``)."""
        policy = self.for_agent(agent_id)
        if policy is None or not len(policy.labels):
            return frozenset()
        return frozenset().union(*policy.labels.lookup(self._norm(action)))

    def sensitive_fields(self, agent_id: str) -> frozenset[str]:
        """Extra field names to redact for this agent."""
        policy = self.for_agent(agent_id)
        return policy.sensitive_fields if policy is not None else frozenset()

    def decide(self, call: ToolCall) -> Decision:
        """Evaluate the policy for one call. Never raises for any call data; may raise only on bugs."""
        policy = self.for_agent(call.agent_id)
        if policy is None:
            return Decision(Outcome.DENY, f'No policy for agent "{call.agent_id}" (default deny)', call,
                            policy_hash=self.hash, stage="default")
        found = policy.matches(self._norm(call.action))
        args = call.args if not self.uses_session else session_arguments(call)
        for rule in found.deny:
            verdict = True if rule.condition is None else rule.condition.evaluate(args)
            if verdict is not False:
                return Decision(Outcome.DENY, rule.reason if verdict else rule.unknown_reason, call, rule.ref,
                                self.hash)
        for rule in found.escalate:
            verdict = True if rule.condition is None else rule.condition.evaluate(args)
            if verdict is not False:
                return Decision(Outcome.ESCALATE, rule.reason if verdict else rule.unknown_reason, call, rule.ref,
                                self.hash)
        for rule in found.allow:
            if rule.condition is None or rule.condition.evaluate(args) is True:
                return Decision(Outcome.ALLOW, rule.reason, call, rule.ref, self.hash)
        return Decision(Outcome.DENY, f'No rule allows "{call.action}" for agent "{call.agent_id}" (default deny)',
                        call, policy_hash=self.hash, stage="default")
