"""The compiled policy set: what the governor consults on every call. Built once per (re)load, then read-only.

Semantics (DESIGN.md): a matching deny wins; then escalate; then allow; nothing matched -> deny. An agent's
own rules and the ``agent: "*"`` rules are merged. A condition that cannot be evaluated counts as TRUE for
deny/escalate rules and FALSE for allow rules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from claw_governance.errors import PolicyError
from claw_governance.model import Decision, Outcome, RuleRef, ToolCall
from claw_governance.policy.conditions import Condition
from claw_governance.policy.patterns import PatternIndex, normalize
from claw_governance.policy.schema import PolicyDocument, RateLimit, Rule, TrustSettings

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

    def __init__(self, agent: str, docs: Sequence[PolicyDocument]) -> None:
        self.agent = agent
        self.documents = tuple(docs)
        rules = [r for d in docs for r in d.rules]
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


def _single(docs: Sequence[PolicyDocument], attr: str) -> object:
    values = [(d, getattr(d, attr)) for d in docs if getattr(d, attr) is not None]
    if len(values) > 1:
        first, second = values[0][0], values[1][0]
        raise PolicyError(f"'{attr.split('_')[0]}' for agent {first.agent!r} is set twice: here and at "
                          f"{second.file}:{second.line}", file=first.file, line=first.line)
    return values[0][1] if values else None


def _ref(rule: Rule) -> RuleRef:
    return RuleRef(rule.effect, rule.raw_pattern, rule.agent, rule.source,
                   rule.condition.source if rule.condition else None, rule.reason, rule.timeout_seconds,
                   rule.approvers, rule.max_grant_seconds)


class PolicySet:
    """All loaded policies, compiled. ``decide(call)`` is pure: no I/O, no mutation but memo caches."""

    def __init__(self, documents: Sequence[PolicyDocument], content_hash: str, files: Sequence[str] = (),
                 warnings: Sequence[str] = ()) -> None:
        self.documents = tuple(documents)
        self.hash = content_hash
        self.files = tuple(files)
        self.warnings = tuple(warnings)
        by_agent: dict[str, list[PolicyDocument]] = {}
        for doc in self.documents:
            by_agent.setdefault(doc.agent, []).append(doc)
        self._shared = by_agent.pop("*", [])
        self._agents: dict[str, AgentPolicy] = {a: AgentPolicy(a, docs + self._shared)
                                                for a, docs in by_agent.items()}
        self._wildcard = AgentPolicy("*", self._shared) if self._shared else None
        self._names: dict[str, str] = {}
        self.has_rate_limits = any(doc.rate_limits for doc in self.documents)

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
        args = call.args
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
