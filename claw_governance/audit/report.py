"""Compliance reports over a date range (both ends included, whole days in UTC)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

from claw_governance.errors import ConfigError


class _Trail(Protocol):
    def entries(self) -> Any: ...
    def verify(self) -> Any: ...


def day_range(start: str | date | datetime, end: str | date | datetime) -> tuple[float, float]:
    """Unix seconds [start of ``start`` day, end of ``end`` day); a datetime is taken as given."""
    def parse(value: str | date | datetime, *, is_end: bool) -> float:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value) if "T" in value or " " in value.strip() \
                    else date.fromisoformat(value.strip())
            except ValueError:
                raise ConfigError(f"not a date (YYYY-MM-DD) or ISO timestamp: {value!r}") from None
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
        day = value + timedelta(days=1) if is_end else value
        return datetime.combine(day, time.min, tzinfo=UTC).timestamp()
    lo, hi = parse(start, is_end=False), parse(end, is_end=True)
    if hi < lo:
        raise ConfigError("the report's end is before its start")
    return lo, hi


def compliance_report(trail: _Trail, start: str | date | datetime, end: str | date | datetime) -> dict[str, Any]:
    """Totals by outcome, agent and action for the range, plus the chain verification result."""
    lo, hi = day_range(start, end)
    outcomes: Counter[str] = Counter()
    by_agent: dict[str, Counter[str]] = {}
    by_action: dict[str, Counter[str]] = {}
    policies: set[str] = set()
    escalations_resolved = 0
    for entry in trail.entries():
        ts = entry.get("timestamp", 0)
        if not lo <= ts < hi:
            continue
        if entry.get("type") == "policy_decision":
            outcome = (entry.get("decision") or {}).get("outcome", "deny")
            outcomes[outcome] += 1
            by_agent.setdefault(entry.get("agent_id") or "?", Counter())[outcome] += 1
            by_action.setdefault(entry.get("action") or "?", Counter())[outcome] += 1
            if entry.get("policy_hash"):
                policies.add(entry["policy_hash"])
        elif entry.get("type") == "escalation_resolved":
            escalations_resolved += 1
    verification = trail.verify()
    return {
        "period": {"start": datetime.fromtimestamp(lo, UTC).isoformat(), "end": datetime.fromtimestamp(hi, UTC).isoformat()},
        "summary": {"total_decisions": sum(outcomes.values()), "allowed": outcomes["allow"],
                    "denied": outcomes["deny"], "escalations": outcomes["escalate"],
                    "escalations_resolved": escalations_resolved},
        "by_agent": {k: dict(v) for k, v in sorted(by_agent.items())},
        "by_action": {k: dict(v) for k, v in sorted(by_action.items())},
        "policy_versions": sorted(policies),
        "chain": {"valid": verification.valid, "entries": verification.entries,
                  "errors": list(verification.errors)},
    }
