"""Queries over a stream of entries: filters by agent, type, action glob, outcome and time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

__all__ = ["glob_matcher", "query_entries"]

_MATCH_CACHE_LIMIT = 8192


def _when(value: float | str | date | datetime | None) -> float | None:
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, str):  # ISO, Unix seconds, "7d", "yesterday": the one shared parser
        from claw_governance.timeparse import parse_when

        return parse_when(value)
    if isinstance(value, datetime):
        return value.timestamp() if value.tzinfo else value.replace(tzinfo=UTC).timestamp()
    return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()


def glob_matcher(pattern: str) -> Callable[[str], bool]:
    """Whether an action matches ``pattern`` exactly as a policy rule would: ``*`` matches any run of
    characters, nothing else is special, and both sides are compared after NFKC, case folding and trimming
    (``Delete:*`` finds ``delete:users``). The policy engine's own implementation, so a query for what a rule
    names finds what that rule decided."""
    # imported here: the policy package is not needed to write or verify a trail, only to query it
    from claw_governance.policy.patterns import compile_glob, normalize

    regex = compile_glob(normalize(pattern))
    # a trail repeats a few actions many times: remember each answer (bounded, like the policy index's cache)
    seen: dict[str, bool] = {}

    def match(text: str) -> bool:
        hit = seen.get(text)
        if hit is None:
            hit = regex.fullmatch(normalize(text)) is not None
            if len(seen) >= _MATCH_CACHE_LIMIT:
                seen.clear()
            seen[text] = hit
        return hit

    return match


def query_entries(
    entries: Iterator[dict[str, Any]],
    *,
    agent_id: str | None = None,
    type: str | None = None,
    action: str | None = None,
    allowed: bool | None = None,
    outcome: str | None = None,
    since: float | str | date | datetime | None = None,
    until: float | str | date | datetime | None = None,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Filter a stream of entries (see ``AuditTrail.query``)."""
    lo, hi = _when(since), _when(until)
    match_action = glob_matcher(action) if action is not None else None
    found = 0
    for entry in entries:
        if limit is not None and found >= limit:
            return
        if agent_id is not None and entry.get("agent_id") != agent_id:
            continue
        if type is not None and entry.get("type") != type:
            continue
        if match_action is not None and not match_action(str(entry.get("action") or "")):
            continue
        raw_decision = entry.get("decision")
        decision: dict[str, Any] = raw_decision if isinstance(raw_decision, dict) else {}
        if allowed is not None and decision.get("allowed") is not allowed:
            continue
        if outcome is not None and decision.get("outcome") != outcome:
            continue
        ts = entry.get("timestamp")
        if lo is not None and not (isinstance(ts, int | float) and ts >= lo):
            continue
        if hi is not None and not (isinstance(ts, int | float) and ts < hi):
            continue
        found += 1
        yield entry
