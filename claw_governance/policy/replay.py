"""Replay recorded decisions against a candidate policy: which of them would flip (``claw-gov policy replay``).

Every ``policy_decision`` entry of the audit trail in the period is decided again by the candidate, with the
arguments as recorded. A value the trail redacted (a sensitive key, a card number inside a string, ...) is
unknown to the candidate, exactly as a missing field: a condition that needs it counts as a match for deny
and escalate rules and as no match for allow rules. With ``audit.level: metadata`` no argument is recorded,
so every argument is unknown.

The recorded side of the comparison is what the policy in force decided, read from the entry:

- ``stage`` ``policy`` or ``default``: the recorded outcome;
- ``escalation`` (an approved grant consumed, or no escalation store): the policy said escalate (or it
  allowed and a ``budgets`` entry with ``then: escalate`` held the call);
- ``budget``: the policy allowed the call and a budget stopped it;
- ``rate_limit``: the effect of the rule the limit stopped (allow, or escalate for ``escalations_per_hour``);
- identity, trust, plugin, governor, audit: the policy was not consulted; such entries are counted as
  skipped, never compared.

The candidate is replayed with its ``mode: shadow`` rules enforced (a shadow rule is a candidate by
definition), and by its rules alone: trust, rate limits and escalation grants are not replayed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from claw_governance.model import Outcome, ToolCall
from claw_governance.policy.engine import PolicySet
from claw_governance.policy.patterns import normalize

REDACTION_MARK = "[REDACTED"  # every marker the redactor writes starts so: [REDACTED], [REDACTED:card] ...
_POLICY_STAGES = ("policy", "default")
_OUTCOMES = {o.value: o for o in Outcome}


def _redacted(value: Any) -> bool:
    """Whether ``value`` holds a redaction marker anywhere (then what it was is unknown)."""
    if isinstance(value, str):
        return REDACTION_MARK in value
    if isinstance(value, Mapping):
        return any(_redacted(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_redacted(v) for v in value)
    return False


def known_arguments(context: Any) -> dict[str, Any]:
    """The recorded arguments with every redacted value removed (so it is unknown, like a missing field).

    In a mapping, a key whose value is or holds a marker is dropped, recursing into nested mappings; a list
    holding one anywhere is dropped whole (which of its items was redacted changes what ``in`` means)."""
    if not isinstance(context, Mapping):
        return {}

    def walk(mapping: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in mapping.items():
            if isinstance(value, Mapping):
                out[key] = walk(value)
            elif not _redacted(value):
                out[key] = value
        return out

    return walk(context)


def recorded_outcome(entry: Mapping[str, Any]) -> Outcome | None:
    """What the policy in force decided for a recorded call, or None when the policy was not consulted."""
    decision = entry.get("decision")
    if not isinstance(decision, Mapping):
        return None
    stage = decision.get("stage")
    if stage in _POLICY_STAGES:
        return _OUTCOMES.get(str(decision.get("outcome")))
    if stage == "budget":  # a budget applies only to what the policy allowed
        return Outcome.ALLOW
    if stage == "escalation":  # approved by a human: the policy escalated, or allowed and a budget escalated
        return Outcome.ALLOW if '; Budget "' in str(decision.get("reason", "")) else Outcome.ESCALATE
    if stage == "rate_limit":
        rule = decision.get("rule")
        return _OUTCOMES.get(str(rule.get("effect"))) if isinstance(rule, Mapping) else None
    return None


@dataclass(frozen=True, slots=True)
class Flip:
    """One recorded call that the candidate decides differently."""

    seq: int | None
    timestamp: float
    agent_id: str
    action: str
    call_id: str | None
    before: Outcome
    after: Outcome
    rule: Mapping[str, Any] | None  # the candidate's deciding rule (None: its default deny)
    reason: str
    recorded_rule: Mapping[str, Any] | None

    @property
    def allow_deny(self) -> bool:
        """An allow that becomes a deny, or the reverse: the flips that gate a change in CI."""
        return {self.before, self.after} == {Outcome.ALLOW, Outcome.DENY}

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "seq": self.seq,
            "timestamp": self.timestamp,
            "agent_id": self.agent_id,
            "action": self.action,
            "call_id": self.call_id,
            "before": self.before.value,
            "after": self.after.value,
            "rule": None if self.rule is None else dict(self.rule),
            "reason": self.reason,
            "recorded_rule": None if self.recorded_rule is None else dict(self.recorded_rule),
        }


def rule_label(rule: Mapping[str, Any] | None) -> str:
    """`deny "http:post" when ... (p.yaml:5)` for a rule's audit form; the default deny for None."""
    if rule is None:
        return "(no rule matched: default deny)"
    cond = f" when {rule['condition']}" if rule.get("condition") else ""
    return f'{rule.get("effect")} "{rule.get("pattern")}"{cond} ({rule.get("source")})'


@dataclass(slots=True)
class ReplayReport:
    """The result of a replay: every flip, plus counts of what was replayed and skipped."""

    candidate_hash: str
    replayed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    flips: list[Flip] = field(default_factory=list)

    @property
    def allow_deny_flips(self) -> int:
        """How many flips turn an allow into a deny or the reverse."""
        return sum(f.allow_deny for f in self.flips)

    def groups(self) -> list[dict[str, Any]]:
        """Flips grouped by the candidate's deciding rule and the change, most calls first."""
        grouped: dict[tuple[str, str, str], list[Flip]] = {}
        for flip in self.flips:
            grouped.setdefault((rule_label(flip.rule), flip.before.value, flip.after.value), []).append(flip)
        rows = [
            {
                "rule": label,
                "before": before,
                "after": after,
                "calls": len(flips),
                "agents": sorted({f.agent_id for f in flips}),
                "first_seq": flips[0].seq,
                "example": f"{flips[0].agent_id} {flips[0].action}",
            }
            for (label, before, after), flips in grouped.items()
        ]
        return sorted(rows, key=lambda r: (-r["calls"], r["rule"], r["before"], r["after"]))

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``claw-gov policy replay --json``)."""
        return {
            "candidate_policy_hash": self.candidate_hash,
            "replayed": self.replayed,
            "skipped": dict(sorted(self.skipped.items())),
            "flips": len(self.flips),
            "allow_deny_flips": self.allow_deny_flips,
            "groups": self.groups(),
            "decisions": [f.as_dict() for f in self.flips],
        }


def replay(
    entries: Iterable[Mapping[str, Any]],
    candidate: PolicySet,
    *,
    since: float | None = None,
    until: float | None = None,
    agent_id: str | None = None,
) -> ReplayReport:
    """Decide every recorded ``policy_decision`` in [since, until) again with ``candidate``."""
    policy = candidate.shadow_view
    report = ReplayReport(candidate.hash)
    wanted = normalize(agent_id) if agent_id is not None else None
    for entry in entries:
        if entry.get("type") != "policy_decision":
            continue
        ts = entry.get("timestamp")
        if not isinstance(ts, int | float) or (since is not None and ts < since) or (until is not None and ts >= until):
            continue
        agent, action = entry.get("agent_id"), entry.get("action")
        if not isinstance(agent, str) or not isinstance(action, str):
            report.skipped["malformed"] += 1
            continue
        if wanted is not None and normalize(agent) != wanted:
            continue
        before = recorded_outcome(entry)
        if before is None:
            decision = entry.get("decision")
            stage = decision.get("stage") if isinstance(decision, Mapping) else None
            report.skipped[str(stage or "unknown")] += 1
            continue
        details = entry.get("details")
        meta: Mapping[str, Any] = details if isinstance(details, Mapping) else {}  # call_id, framework
        call = ToolCall(agent, action, known_arguments(entry.get("context")), str(meta.get("framework") or "replay"))
        after = policy.decide(call)
        report.replayed += 1
        if after.outcome is not before:
            recorded = entry["decision"].get("rule")
            seq = entry.get("seq")
            report.flips.append(
                Flip(
                    seq if isinstance(seq, int) else None,
                    float(ts),
                    agent,
                    action,
                    str(meta["call_id"]) if meta.get("call_id") else None,
                    before,
                    after.outcome,
                    None if after.rule is None else dict(after.rule.audit_form),
                    after.reason,
                    dict(recorded) if isinstance(recorded, Mapping) else None,
                )
            )
    return report
