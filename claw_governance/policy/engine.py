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
from claw_governance.model import Decision, Outcome, RuleRef, Stage, ToolCall
from claw_governance.policy.conditions import DEFAULT_LIMITS, ArgumentLimits, Condition, OverBound, bound_value
from claw_governance.policy.names import forbidden_character, is_mixed_script, scripts, skeleton_key, skeleton_keys
from claw_governance.policy.patterns import PatternIndex, normalize
from claw_governance.policy.schema import (
    Budget,
    Contract,
    EscalationLimit,
    PolicyDocument,
    RateLimit,
    Rule,
    TrustSettings,
)

_NAME_CACHE_LIMIT = 16384
_UNKNOWN = " (its condition could not be evaluated for this call, which counts as a match)"
_LOOKALIKE = " (the action name is a look-alike of a name this rule matches)"


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
    note: str = ""  # why a wildcard allow rule did not apply (mixed scripts), for the default deny's reason


def _lookalike(rule: _Compiled) -> _Compiled:
    return _Compiled(rule.condition, rule.ref, rule.reason + _LOOKALIKE, rule.unknown_reason + _LOOKALIKE)


def _wildcard_may_allow(pattern: str, name_scripts: frozenset[str]) -> bool:
    """A mixed-script name is allowed through ``*`` only by a rule whose literal text uses every one of its
    scripts: ``allow: ["*"]`` does not allow ``dеlete:users`` (Cyrillic е), ``allow: ["dеlete:*"]`` may."""
    return "*" not in pattern or name_scripts <= scripts(pattern.replace("*", ""))


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
        # Deny and escalate rules also match by UTS #39 skeleton: a look-alike of a denied name is denied.
        self._deny_skeleton = PatternIndex((skeleton_key(r.pattern), r) for r in rules if r.effect is Outcome.DENY)
        self._escalate_skeleton = PatternIndex(
            (skeleton_key(r.pattern), r) for r in rules if r.effect is Outcome.ESCALATE
        )
        self._memo: dict[str, _Matches] = {}
        self._prepared: dict[int, _Compiled] = {}
        self._prepared_lookalike: dict[int, _Compiled] = {}
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
        self.rate_limits: PatternIndex[RateLimit] = PatternIndex((rl.pattern, rl) for d in docs for rl in d.rate_limits)
        contract = _single(own, "contract") or _single(shared, "contract")
        self.contract: Contract | None = contract if isinstance(contract, Contract) else None
        self.escalation_limits: tuple[EscalationLimit, ...] = tuple(el for d in docs for el in d.escalation_limits)
        self.budgets: PatternIndex[Budget] = PatternIndex((b.pattern, b) for d in docs for b in d.budgets)
        self.budget_memo: dict[str, tuple[Budget, ...]] = {}  # normalised action -> its budgets (budgets_for)
        self.labels: PatternIndex[frozenset[str]] = PatternIndex((p, names) for d in docs for p, names, _ in d.labels)
        meta = _single(own, "metadata") if own else _single(shared, "metadata")
        self.metadata: dict[str, Any] = dict(meta) if isinstance(meta, dict) else {}

    def _compiled(self, rule: Rule) -> _Compiled:
        hit = self._prepared.get(id(rule))
        if hit is None:
            hit = self._prepared[id(rule)] = _compile(rule)
        return hit

    def _lookalike(self, rule: Rule) -> _Compiled:
        hit = self._prepared_lookalike.get(id(rule))
        if hit is None:
            hit = self._prepared_lookalike[id(rule)] = _lookalike(self._compiled(rule))
        return hit

    def _restrictive(
        self, index: PatternIndex[Rule], by_skeleton: PatternIndex[Rule], name: str, skeletons: frozenset[str]
    ) -> tuple[_Compiled, ...]:
        direct = index.lookup(name)
        seen = {id(r) for r in direct}
        lookalikes: list[Rule] = []
        for skeleton in sorted(skeletons):
            for r in by_skeleton.lookup(skeleton):
                if id(r) not in seen:
                    seen.add(id(r))
                    lookalikes.append(r)
        return tuple(self._compiled(r) for r in _order(direct)) + tuple(self._lookalike(r) for r in _order(lookalikes))

    def matches(self, name: str, raw: str | None = None) -> _Matches:
        """The rules whose patterns match ``name`` (normalised), per effect, most specific first.

        Deny and escalate rules whose pattern matches only a confusable skeleton of the name (or of ``raw``, the
        name as the caller wrote it) come after the direct matches. Allow rules that reach a mixed-script name
        only through ``*`` are left out."""
        key = name if raw is None else raw
        hit = self._memo.get(key)
        if hit is None:
            skeleton = skeleton_keys(name) | skeleton_keys(raw) if raw is not None else skeleton_keys(name)
            allow = _order(self._allow.lookup(name))
            note = ""
            if is_mixed_script(name):
                used = scripts(name)
                kept = tuple(r for r in allow if _wildcard_may_allow(r.pattern, used))
                if len(kept) != len(allow):
                    note = (
                        f" (the name mixes scripts {', '.join(sorted(used))}; a rule that matches it only "
                        "through '*' does not allow it)"
                    )
                allow = kept
            hit = _Matches(
                self._restrictive(self._deny, self._deny_skeleton, name, skeleton),
                self._restrictive(self._escalate, self._escalate_skeleton, name, skeleton),
                tuple(self._compiled(r) for r in allow),
                note,
            )
            if len(self._memo) >= _NAME_CACHE_LIMIT:
                self._memo.clear()
            self._memo[key] = hit
        return hit


SESSION_METADATA_KEY = "claw_session"  # set by the governor (never trusted from the caller): {"labels": [...]}


class SessionState(dict[str, Any]):
    """The session state a governor binds to a call (``{"labels": (sorted label, ...)}``), built by
    ``SessionLabels`` from the state store and shared by every call of the session while it is cached.

    Its values are plain and bounded by construction (label names), so the engine hands it to CEL as it is;
    any other value found under ``SESSION_METADATA_KEY`` (a caller's own dict) is bounded like an argument.
    Read-only: one call, plugin or condition cannot change what the next call of the session sees."""

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("session state is read-only")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __reduce__(self) -> tuple[Any, ...]:
        # copy, deepcopy and pickle rebuild it through the constructor (the default would use __setitem__).
        return (SessionState, (dict(self),))

    def __copy__(self) -> SessionState:
        return self  # read-only: a copy would be the same value

    def __deepcopy__(self, memo: dict[int, Any]) -> SessionState:
        return self


def session_state(call: ToolCall, limits: ArgumentLimits = DEFAULT_LIMITS) -> Any:
    """What ``session`` means in the conditions of ``call``: the state the governor bound to it, or None
    (absent: a condition naming ``session`` cannot be evaluated, so deny and escalate rules match and allow
    rules do not). An argument named ``session`` never counts (a tool argument cannot pose as session state)."""
    state = call.metadata.get(SESSION_METADATA_KEY) if call.metadata else None
    if type(state) is SessionState:
        return state
    if not isinstance(state, dict):
        return None
    try:  # not built by the governor (a caller's metadata): bounded and copied like an argument
        return bound_value(state, limits, [limits.max_items, limits.max_string_chars])
    except OverBound:
        return None


def session_arguments(call: ToolCall) -> dict[str, Any]:
    """The call's arguments with ``session`` bound to ``session_state(call)`` (or absent), replacing any
    argument of that name: what the conditions of a policy that uses session state see."""
    args = dict(call.args)
    args.pop("session", None)
    state = session_state(call)
    if state is not None:
        args["session"] = state
    return args


def _single(docs: Sequence[PolicyDocument], attr: str) -> object:
    values = [(d, getattr(d, attr)) for d in docs if getattr(d, attr) is not None]
    if len(values) > 1:
        first, second = values[0][0], values[1][0]
        raise PolicyError(
            f"'{attr.split('_')[0]}' for agent {first.agent!r} is set twice: here and at {second.file}:{second.line}",
            file=first.file,
            line=first.line,
        )
    return values[0][1] if values else None


def _ref(rule: Rule) -> RuleRef:
    return RuleRef(
        rule.effect,
        rule.raw_pattern,
        rule.agent,
        rule.source,
        rule.condition.source if rule.condition else None,
        rule.reason,
        rule.timeout_seconds,
        rule.approvers,
        rule.max_grant_seconds,
    )


class PolicySet:
    """All loaded policies, compiled. ``decide(call)`` is pure: no I/O, no mutation but memo caches."""

    def __init__(
        self,
        documents: Sequence[PolicyDocument],
        content_hash: str,
        files: Sequence[str] = (),
        warnings: Sequence[str] = (),
        limits: ArgumentLimits = DEFAULT_LIMITS,
        *,
        include_shadow: bool = False,
    ) -> None:
        self.documents = tuple(documents)
        self.limits = limits  # what of a call's arguments conditions may see
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
        self._agents: dict[str, AgentPolicy] = {
            a: AgentPolicy(a, docs + self._shared, include_shadow=include_shadow) for a, docs in by_agent.items()
        }
        self._wildcard = AgentPolicy("*", self._shared, include_shadow=include_shadow) if self._shared else None
        self.has_shadow = any(r.shadow for d in self.documents for r in d.rules)
        self.has_budgets = any(doc.budgets for doc in self.documents)
        # Data-flow labels: a policy that names `session.labels` in a condition gets the call's session labels
        # bound as `session` (see session_arguments); one that attaches labels has them recorded after calls.
        self.uses_session = any(
            r.condition is not None and "session" in r.condition.source for d in self.documents for r in d.rules
        )
        self.has_labels = any(doc.labels for doc in self.documents)
        self._shadow_view: PolicySet | None = None
        self._names: dict[str, tuple[str, str | None]] = {}  # raw name -> (normalised, forbidden character)
        # raw agent id -> its trust settings: the trust step asks for them on every call (bounded like _names)
        self._trust_settings: dict[str, TrustSettings] = {}
        self.has_rate_limits = any(doc.rate_limits for doc in self.documents)
        #: ``(name, exact text)`` of every file, for the policy archive (set by the loader).
        self.sources: tuple[tuple[str, str], ...] = ()

    @property
    def shadow_view(self) -> PolicySet:
        """The policy with every ``mode: shadow`` rule and document enforced: what shadow mode compares the
        enforcing decision with (built once, on first use)."""
        if self.include_shadow or not self.has_shadow:
            return self
        view = self._shadow_view
        if view is None:
            view = self._shadow_view = PolicySet(
                self.documents, self.hash, self.files, self.warnings, self.limits, include_shadow=True
            )
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
        return {
            "would": f"would_{candidate.outcome.value}",
            "outcome": candidate.outcome.value,
            "reason": candidate.reason,
            "rule": None if rule is None else dict(rule.audit_form),
            "enforced": enforced.outcome.value,
        }

    @classmethod
    def empty(cls, limits: ArgumentLimits = DEFAULT_LIMITS) -> PolicySet:
        """No policies at all: every call is denied."""
        return cls((), hashlib.sha256(b"").hexdigest(), limits=limits)

    @property
    def agents(self) -> tuple[str, ...]:
        """Agent ids that have their own policy (normalised)."""
        return tuple(sorted(self._agents))

    @property
    def rule_count(self) -> int:
        """Number of rules over all documents."""
        return sum(len(d.rules) for d in self.documents)

    def _learn(self, text: str) -> tuple[str, str | None]:
        hit = (normalize(text), forbidden_character(text))
        if len(self._names) >= _NAME_CACHE_LIMIT:
            self._names.clear()
        self._names[text] = hit
        return hit

    def _norm(self, text: str) -> str:
        return (self._names.get(text) or self._learn(text))[0]

    def for_agent(self, agent_id: str) -> AgentPolicy | None:
        """The merged policy for an agent, the ``*`` policy if it has none, or None (deny everything)."""
        return self._agents.get(self._norm(agent_id), self._wildcard)

    def trust_settings(self, agent_id: str) -> TrustSettings:
        """Trust tuning for an agent (defaults when its policy says nothing)."""
        settings = self._trust_settings.get(agent_id)
        if settings is None:
            policy = self.for_agent(agent_id)
            settings = policy.trust if policy is not None else TrustSettings()
            if len(self._trust_settings) >= _NAME_CACHE_LIMIT:
                self._trust_settings.clear()  # bounded: a flood of invented agent ids cannot grow it
            self._trust_settings[agent_id] = settings
        return settings

    def trust_configured(self, agent_id: str) -> bool:
        """Whether a policy for this agent sets ``trust:`` (else the governor's minimum applies)."""
        policy = self.for_agent(agent_id)
        return policy is not None and policy.trust_configured

    def contract(self, agent_id: str) -> Contract | None:
        """The work-contract fields that apply to an agent (its own document's, else ``*``'s), or None."""
        policy = self.for_agent(agent_id)
        return policy.contract if policy is not None else None

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

    def normal_name(self, text: str) -> str:
        """``patterns.normalize(text)``, memoised (an agent id or action name is normalised once per policy)."""
        return self._norm(text)

    def budgets_for(self, agent_id: str, action: str) -> tuple[Budget, ...]:
        """The budgets that apply to a call of ``action`` by ``agent_id``, in the order of their ``file:line``
        (memoised per action name: the pattern lookup and the sort run once)."""
        policy = self.for_agent(agent_id)
        if policy is None or not len(policy.budgets):
            return ()
        name = self._norm(action)
        hit = policy.budget_memo.get(name)
        if hit is None:
            hit = tuple(sorted(policy.budgets.lookup(name), key=lambda b: b.source))
            if len(policy.budget_memo) >= _NAME_CACHE_LIMIT:
                policy.budget_memo.clear()
            policy.budget_memo[name] = hit
        return hit

    def sensitive_fields(self, agent_id: str) -> frozenset[str]:
        """Extra field names to redact for this agent."""
        policy = self.for_agent(agent_id)
        return policy.sensitive_fields if policy is not None else frozenset()

    def decide(self, call: ToolCall) -> Decision:
        """Evaluate the policy for one call. Never raises for any call data; may raise only on bugs."""
        names = self._names
        action, bad_action = names.get(call.action) or self._learn(call.action)
        agent, bad_agent = names.get(call.agent_id) or self._learn(call.agent_id)
        if bad_action is not None or bad_agent is not None:
            what, bad = ("action name", bad_action) if bad_action is not None else ("agent id", bad_agent)
            return Decision(
                Outcome.DENY,
                f"The {what} contains {bad}: denied (such characters are never stripped or ignored)",
                call,
                policy_hash=self.hash,
                stage=Stage.POLICY,
            )
        policy = self._agents.get(agent, self._wildcard)
        if policy is None:
            return Decision(
                Outcome.DENY,
                f'No policy for agent "{call.agent_id}" (default deny)',
                call,
                policy_hash=self.hash,
                stage=Stage.DEFAULT,
            )
        found = policy.matches(action, call.action)
        args = call.args
        limits = self.limits
        if self.uses_session:  # `session` is the bound state (or absent), never an argument of that name
            session = session_state(call, limits)
            for rule in found.deny:
                verdict = True if rule.condition is None else rule.condition.evaluate(args, limits, session)
                if verdict is not False:
                    return Decision(
                        Outcome.DENY, rule.reason if verdict else rule.unknown_reason, call, rule.ref, self.hash
                    )
            for rule in found.escalate:
                verdict = True if rule.condition is None else rule.condition.evaluate(args, limits, session)
                if verdict is not False:
                    return Decision(
                        Outcome.ESCALATE, rule.reason if verdict else rule.unknown_reason, call, rule.ref, self.hash
                    )
            for rule in found.allow:
                if rule.condition is None or rule.condition.evaluate(args, limits, session) is True:
                    return Decision(Outcome.ALLOW, rule.reason, call, rule.ref, self.hash)
            return self._default_deny(call, found)
        for rule in found.deny:
            verdict = True if rule.condition is None else rule.condition.evaluate(args, limits)
            if verdict is not False:
                return Decision(
                    Outcome.DENY, rule.reason if verdict else rule.unknown_reason, call, rule.ref, self.hash
                )
        for rule in found.escalate:
            verdict = True if rule.condition is None else rule.condition.evaluate(args, limits)
            if verdict is not False:
                return Decision(
                    Outcome.ESCALATE, rule.reason if verdict else rule.unknown_reason, call, rule.ref, self.hash
                )
        for rule in found.allow:
            if rule.condition is None or rule.condition.evaluate(args, limits) is True:
                return Decision(Outcome.ALLOW, rule.reason, call, rule.ref, self.hash)
        return self._default_deny(call, found)

    def _default_deny(self, call: ToolCall, found: _Matches) -> Decision:
        return Decision(
            Outcome.DENY,
            f'No rule allows "{call.action}" for agent "{call.agent_id}" (default deny)' + found.note,
            call,
            policy_hash=self.hash,
            stage=Stage.DEFAULT,
        )
