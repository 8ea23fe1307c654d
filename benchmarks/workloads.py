"""The benchmark workloads: one abstract policy of N rules and one query stream, rendered for every system.

A rule is kept abstract (effect, how it matches, optional ``amount > 500`` condition) so that the very same
policy can be written in each system's own language:

* claw-governance: YAML ``permissions`` lists, ``*`` globs, a CEL condition.
* AGT ``govern()``: YAML rules whose ``condition`` is AGT's expression language. The action is passed as a dict
  (``type``, ``verb``, ``resource``) because AGT's Python conditions have no glob: ``read:*`` is written
  ``action.verb == 'read'`` and ``*:orders`` ``action.resource == 'orders'``. Scalar keyword arguments reach AGT
  wrapped as ``{"value": x}``, so the conditional rule reads ``amount.value > 500`` (``amount > 500`` would
  silently never match; see reference/landscape.md).
* Cedar: ``permit``/``forbid`` policies; exact rules on the ``action`` entity, globs with ``like`` on
  ``context.name``. Cedar has no "escalate": the conditional rule is a ``forbid``, and for Cedar the
  cross-check compares the allowed bit only.

Every policy has the conditional rule (escalate ``payments:refund`` when ``amount > 500``) and an allow for
small refunds; that is the 2-rule policy (everything else, ``delete:*`` too, is default-denied, so
``execute`` has allowed calls to time at 2 rules). From 3 rules up it also has a deny on destructive verbs
(``delete:*``, and ``drop/destroy/truncate/wipe:*`` from 10 rules up), then filler: exact allows,
``prefix:*`` and ``*:suffix`` allows and exact denies. ``expected()`` is a plain reference evaluator of the
same semantics (deny > escalate > allow > default deny) that every system must agree with.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

Effect = Literal["deny", "escalate", "allow"]
Kind = Literal["exact", "prefix", "suffix"]

AGENT_ID = "bench-agent"
RULE_COUNTS: tuple[int, ...] = (2, 10, 100, 1_000, 10_000)
DESTRUCTIVE_VERBS: tuple[str, ...] = ("delete", "drop", "destroy", "truncate", "wipe")
REFUND = "payments:refund"
THRESHOLD = 500


@dataclass(frozen=True, slots=True)
class AbstractRule:
    """One rule: ``effect`` when the action matches ``value`` (exactly, as ``value:*`` or ``*:value``)."""

    effect: Effect
    kind: Kind
    value: str
    conditional: bool = False  # ``amount > THRESHOLD``

    @property
    def glob(self) -> str:
        """The rule as a claw-governance pattern."""
        return {"exact": self.value, "prefix": f"{self.value}:*", "suffix": f"*:{self.value}"}[self.kind]

    def matches(self, action: str, args: dict[str, Any]) -> bool:
        """Reference semantics: pattern match, then the condition (missing amount counts as a match)."""
        verb, _, _ = action.partition(":")
        resource = action.rpartition(":")[2]
        hit = {
            "exact": action == self.value,
            "prefix": ":" in action and verb == self.value,
            "suffix": ":" in action and resource == self.value,
        }[self.kind]
        if not hit or not self.conditional:
            return hit
        amount = args.get("amount")
        return not isinstance(amount, int | float) or amount > THRESHOLD


@dataclass(frozen=True, slots=True)
class Query:
    """One tool call of the workload and the outcome every system must give."""

    action: str
    args: dict[str, Any]
    expected: Effect  # "deny" also for the default deny
    label: str

    @property
    def verb(self) -> str:
        """The part before the first colon."""
        return self.action.partition(":")[0]

    @property
    def resource(self) -> str:
        """The part after the last colon."""
        return self.action.rpartition(":")[2]


@dataclass(slots=True)
class Workload:
    """An N-rule policy, the query stream timed on it, and the queries only cross-checked."""

    rule_count: int
    rules: list[AbstractRule]
    timed: list[Query] = field(default_factory=list)  # mixed allow/deny, never escalates
    checked: list[Query] = field(default_factory=list)  # timed + escalations: every system must agree

    @property
    def allowed(self) -> list[Query]:
        """The timed queries that are allowed (what ``execute`` runs)."""
        return [q for q in self.timed if q.expected == "allow"]


def build_rules(n: int) -> list[AbstractRule]:
    """The N-rule policy (N >= 2)."""
    if n < 2:
        raise ValueError("a workload policy has at least 2 rules")
    conditional = AbstractRule("escalate", "exact", REFUND, conditional=True)
    refunds = AbstractRule("allow", "exact", REFUND)
    if n == 2:  # refunds over 500 escalate, smaller ones are allowed, the rest (delete:* too) default-denied
        return [conditional, refunds]
    rules = [AbstractRule("deny", "prefix", "delete"), conditional, refunds]
    if n >= 10:
        rules.extend(AbstractRule("deny", "prefix", verb) for verb in DESTRUCTIVE_VERBS[1:])
    i = 0
    while len(rules) < n:
        slot = i % 10
        if slot <= 5:
            rules.append(AbstractRule("allow", "exact", f"svc{i}:op{i}"))
        elif slot <= 7:
            rules.append(AbstractRule("allow", "prefix", f"ns{i}"))
        elif slot == 8:
            rules.append(AbstractRule("allow", "suffix", f"res{i}"))
        else:
            rules.append(AbstractRule("deny", "exact", f"admin{i}:reset"))
        i += 1
    return rules


def expected(rules: list[AbstractRule], action: str, args: dict[str, Any]) -> Effect:
    """deny > escalate > allow > default deny."""
    effects = {r.effect for r in rules if r.matches(action, args)}
    for effect in ("deny", "escalate", "allow"):
        if effect in effects:
            return effect  # type: ignore[return-value]
    return "deny"


def _spread(items: list[AbstractRule], k: int, rng: random.Random) -> list[AbstractRule]:
    """First, last and random rules in between: lookups must not favour the head of the file."""
    if len(items) <= k:
        return list(items)
    picked = [items[0], items[-1], *rng.sample(items[1:-1], k - 2)]
    return picked


def build_workload(n: int, *, queries: int = 64, seed: int = 8) -> Workload:
    """The workload for an N-rule policy: ``queries`` distinct timed calls (a fixed mix) plus escalations."""
    rng = random.Random(seed * 100_003 + n)
    rules = build_rules(n)
    by = {
        (e, k): [r for r in rules if r.effect == e and r.kind == k and not r.conditional]
        for e in ("deny", "allow")
        for k in ("exact", "prefix", "suffix")
    }
    raw: list[tuple[str, dict[str, Any], str]] = []
    per = max(1, queries // 8)
    for r in _spread(by[("allow", "exact")], per, rng):
        if r.value != REFUND:
            raw.append((r.value, {"id": rng.randrange(1000)}, "allow exact"))
    for r in _spread(by[("allow", "prefix")], per, rng):
        raw.append((f"{r.value}:call{rng.randrange(1000)}", {"id": rng.randrange(1000)}, "allow prefix glob"))
    for r in _spread(by[("allow", "suffix")], per, rng):
        raw.append((f"tool{rng.randrange(1000)}:{r.value}", {"id": rng.randrange(1000)}, "allow suffix glob"))
    for r in _spread(by[("deny", "exact")], per, rng):
        raw.append((r.value, {"id": rng.randrange(1000)}, "deny exact"))
    # destructive verbs: denied by their rule, or (2 rules) by the default deny
    verbs = [v for v in DESTRUCTIVE_VERBS if any(r.value == v for r in by[("deny", "prefix")])] or ["delete"]
    for j in range(per):
        raw.append((f"{verbs[j % len(verbs)]}:table{j}", {"id": j}, "deny destructive verb"))
    for r in _spread(by[("allow", "suffix")], max(1, per // 2), rng):  # deny beats a matching allow
        raw.append((f"delete:{r.value}", {"id": 1}, "deny beats allow"))
    for j in range(per):
        raw.append((REFUND, {"amount": 10 + 49 * j % THRESHOLD, "currency": "USD"}, "refund <= 500"))
    for j in range(per):
        raw.append((f"unknown{j}:thing", {"id": j}, "default deny"))
    timed = [Query(a, args, expected(rules, a, args), label) for a, args, label in raw]
    escalations = [
        Query(REFUND, {"amount": THRESHOLD + 1 + 97 * j, "currency": "USD"}, "escalate", "refund > 500")
        for j in range(4)
    ]
    for q in escalations:
        assert expected(rules, q.action, q.args) == "escalate"
    rng.shuffle(timed)
    return Workload(n, rules, timed, timed + escalations)


# ------------------------------------------------------------------------------------------- renderings


def claw_policy_yaml(rules: list[AbstractRule], agent: str = AGENT_ID) -> str:
    """The policy as a claw-governance YAML document."""
    lists: dict[str, list[str]] = {"deny": [], "escalate": [], "allow": []}
    for r in rules:
        if r.conditional:
            lists[r.effect].append(
                f'{{action: "{r.glob}", condition: "amount > {THRESHOLD}", '
                f'reason: "refunds over {THRESHOLD} need finance approval"}}'
            )
        else:
            lists[r.effect].append(f'"{r.glob}"')
    lines = [f"agent: {agent}", "permissions:"]
    for effect in ("allow", "deny", "escalate"):
        if lists[effect]:
            lines.append(f"  {effect}:")
            lines.extend(f"    - {item}" for item in lists[effect])
    return "\n".join(lines) + "\n"


def agt_condition(r: AbstractRule) -> str:
    """The rule's match as an AGT condition expression."""
    match = {
        "exact": f"action.type == '{r.value}'",
        "prefix": f"action.verb == '{r.value}'",
        "suffix": f"action.resource == '{r.value}'",
    }[r.kind]
    return f"{match} and amount.value > {THRESHOLD}" if r.conditional else match


def agt_policy_yaml(rules: list[AbstractRule], name: str = "bench") -> str:
    """The policy as an AGT (``governance.toolkit/v1``) YAML document, default deny.

    With ``deny_overrides`` (govern()'s default) any matching deny wins; otherwise the highest priority
    wins, so ``require_approval`` gets priority 10 over the allows' 0: deny > escalate > allow, as ours.
    """
    action = {"deny": "deny", "escalate": "require_approval", "allow": "allow"}
    priority = {"deny": 100, "escalate": 10, "allow": 0}
    lines = ["apiVersion: governance.toolkit/v1", f"name: {name}", 'agents: ["*"]', "default_action: deny", "rules:"]
    for i, r in enumerate(rules):
        lines += [
            f"  - name: r{i}",
            f'    condition: "{agt_condition(r)}"',
            f"    action: {action[r.effect]}",
            f"    priority: {priority[r.effect]}",
        ]
    return "\n".join(lines) + "\n"


def _cedar_str(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def cedar_policies(rules: list[AbstractRule]) -> str:
    """The policy as Cedar text. Exact rules constrain the action entity; globs use ``like``."""
    out = []
    for r in rules:
        verb = "permit" if r.effect == "allow" else "forbid"
        if r.kind == "exact":
            head = f'{verb}(principal, action == Action::"{_cedar_str(r.value)}", resource)'
            cond = []
        else:
            head = f"{verb}(principal, action, resource)"
            cond = [f'context.name like "{_cedar_str(r.glob)}"']
        if r.conditional:
            cond.append(f"context.amount > {THRESHOLD}")
        out.append(head + (f" when {{ {' && '.join(cond)} }};" if cond else ";"))
    return "\n".join(out) + "\n"
