"""Retention by age: which sealed segments may go, and what the signed record hands on to the rest.

A segment may be removed when every entry in it is past its agent's retention. The signed retention record
carries the chain's resume point (seq, previous hash) and the Merkle compact range of the tree at the
segment's end, so the remaining entries still verify, chain and tree alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from claw_governance.audit.canonical import canonical_copy
from claw_governance.audit.layout import iter_lines
from claw_governance.audit.merkle import CompactRange

__all__ = ["DAY", "RetentionRule", "expired", "retention_record", "summarise"]

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """How long entries are kept: ``default_days``, or a policy's ``audit.retention`` for its agent."""

    default_days: int
    per_agent: Mapping[str, int] = field(default_factory=dict)

    def days(self, agent_id: str | None) -> int:
        """Retention for entries of ``agent_id`` (system entries use the default)."""
        if agent_id is None:
            return self.default_days
        return self.per_agent.get(agent_id, self.per_agent.get("*", self.default_days))

    @property
    def min_days(self) -> int:
        """The shortest retention of any agent."""
        return min([self.default_days, *self.per_agent.values()])

    @property
    def max_days(self) -> int:
        """The longest retention of any agent."""
        return max([self.default_days, *self.per_agent.values()])


def summarise(path: Path) -> dict[str, Any] | None:
    """First/last seq, last hash and timestamps of a sealed segment, and each agent's newest timestamp."""
    summary: dict[str, Any] = {
        "first_seq": None,
        "last_seq": None,
        "last_hash": None,
        "last_ts": 0.0,
        "agents": {},
        "range": None,
    }
    agents: dict[str | None, float] = summary["agents"]
    last: dict[str, Any] = {}
    last_line = b""
    for line in iter_lines(path):
        last_line = line
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None  # a damaged segment is kept: retention must not destroy evidence of tampering
        if not isinstance(entry, dict):
            return None
        ts = entry.get("timestamp")
        ts = float(ts) if isinstance(ts, int | float) else 0.0
        last = entry
        if summary["first_seq"] is None:
            summary["first_seq"] = entry.get("seq")
        summary["last_seq"], summary["last_hash"] = entry.get("seq"), entry.get("hash")
        summary["last_ts"] = max(summary["last_ts"], ts)
        if entry.get("type") != "checkpoint":  # a checkpoint vouches for the entries before it: it has no
            agent = entry.get("agent_id")  # retention of its own (else it would pin every segment)
            agents[agent] = max(agents.get(agent, 0.0), ts)
    details = last.get("details")
    if last.get("type") == "checkpoint" and isinstance(details, dict) and last_line.endswith(b"\n"):
        # A sealed segment ends with its closing checkpoint: its compact range plus that entry is the tree
        # at the segment's end, which the retention record hands on to the first retained entry.
        try:
            rng = CompactRange.from_hex(int(details["size"]), details["range"])
            rng.extend_lines([last_line[:-1]])
            summary["range"] = rng.to_hex()
        except (KeyError, TypeError, ValueError):
            summary["range"] = None
    return summary if summary["last_hash"] else None


def expired(summary: dict[str, Any], rule: RetentionRule, now: float) -> bool:
    if summary["last_ts"] < now - rule.max_days * DAY:
        return True  # older than the longest retention of anyone: no need to look at agents
    return all(ts < now - rule.days(agent) * DAY for agent, ts in summary["agents"].items())


def retention_record(
    *,
    trail_id: str,
    origin: str,
    key_id: str,
    created: float,
    retention_days: int,
    resume_seq: int,
    removed: list[tuple[str, dict[str, Any]]],
) -> dict[str, Any]:
    """The (unsigned) retention record for removing ``removed`` (segment name, :func:`summarise` result), oldest
    first: the chain resumes at ``resume_seq`` after the last removed entry's hash, with the tree at that point.

    Every value is made by the governance itself, so it is normalised for hashing (``canonical_copy``) but
    never passed through the secret detectors: a hash whose hex digits happen to pass for a card number would
    otherwise be rewritten to ``[REDACTED:card]`` and the record would no longer continue the chain.
    """
    last = removed[-1][1]
    record: dict[str, Any] = canonical_copy(
        {
            "trail_id": trail_id,
            "created": created,
            "key_id": key_id,
            "resume_seq": resume_seq,
            "resume_prev_hash": last["last_hash"],
            "resume_range": last["range"],
            "origin": origin,
            "retention_days": retention_days,
            "removed": [
                {
                    "segment": name,
                    "first_seq": s["first_seq"],
                    "last_seq": s["last_seq"],
                    "last_hash": s["last_hash"],
                    "last_timestamp": s["last_ts"],
                }
                for name, s in removed
            ],
        }
    )
    return record
