"""What the console shows: escalations, agents, audit entries and the policy as JSON-ready dicts.

Arguments are only ever shown redacted (the stored context is redacted at escalation time; a reviewer's edited
arguments are redacted here before they leave the process).
"""

from __future__ import annotations

import time
from typing import Any

from claw_governance.escalation.edits import args_diff
from claw_governance.model import Escalation
from claw_governance.timeparse import iso_utc_or_none

# UTC ISO 8601 with a Z, or None: the console's JSON shows times as the CLI does (one formatter for both).
iso = iso_utc_or_none


def left(seconds: float) -> str:
    """``3h 12m`` / ``4m 05s`` / ``expired``."""
    if seconds <= 0:
        return "expired"
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400}d {s % 86400 // 3600}h"
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 60}m {s % 60:02d}s"


def escalation_view(e: Escalation, governor: Any, now: float | None = None) -> dict[str, Any]:
    """An escalation as the API returns it (``edited_args`` redacted, with the diff against the original)."""
    now = time.time() if now is None else now
    edited = None if e.edited_args is None else governor.redact(dict(e.edited_args), e.agent_id)
    return {
        "id": e.id,
        "agent_id": e.agent_id,
        "action": e.action,
        "status": e.status.value,
        "reason": e.reason,
        "rule": e.rule,
        "args": dict(e.context),
        "args_hash": e.args_hash,
        "created": iso(e.created),
        "expires": iso(e.expires),
        "seconds_left": max(0.0, round(e.expires - now, 1)) if e.status.value == "pending" else 0.0,
        "time_left": left(e.expires - now) if e.status.value == "pending" else None,
        "approvers": list(e.approvers),
        "max_grant_seconds": e.max_grant,
        "call_id": e.call_id,
        "resolver": e.resolver,
        "credential_id": e.credential_id,
        "notes": e.notes,
        "resolved_at": iso(e.resolved_at),
        "edited_args": edited,
        "edited_args_hash": e.edited_args_hash,
        "diff": args_diff(dict(e.context), edited) if edited is not None else None,
        "message": e.message,
        "grant_until": iso(e.grant_until),
        "seconds_to_decision": None if e.resolved_at is None else round(e.resolved_at - e.created, 3),
    }


def policy_view(governor: Any) -> dict[str, Any]:
    """The policy in force: hash, files, and every rule with where it is written."""
    policy = governor.policy
    rules = []
    for doc in policy.documents:
        for rule in doc.rules:
            rules.append(
                {
                    "agent": rule.agent,
                    "effect": rule.effect.value,
                    "pattern": rule.raw_pattern,
                    "condition": rule.condition.source if rule.condition else None,
                    "reason": rule.reason,
                    "timeout_seconds": rule.timeout_seconds,
                    "approvers": list(rule.approvers),
                    "max_grant_seconds": rule.max_grant_seconds,
                    "source": rule.source,
                }
            )
    return {"hash": policy.hash, "files": list(policy.files), "rule_count": policy.rule_count, "rules": rules}


def agents_view(governor: Any, history_limit: int = 50) -> list[dict[str, Any]]:
    """Every identity with its status, trust score and recent trust history (from the audit trail)."""
    history: dict[str, list[dict[str, Any]]] = {}
    for entry in governor.audit.query(type="trust_change"):
        details = entry.get("details") or {}
        history.setdefault(entry.get("agent_id") or "", []).append(
            {
                "at": entry.get("timestamp"),
                "score": details.get("new", details.get("score")),
                "reason": details.get("reason"),
            }
        )
    out = []
    for record in governor.state.list_identities():
        out.append(
            {
                "agent_id": record.agent_id,
                "status": record.status,
                "reason": record.reason,
                "trust": governor.trust_score(record.agent_id),
                "updated": iso(record.updated),
                "history": history.get(record.agent_id, [])[-history_limit:],
            }
        )
    return out


CANDIDATE_NAME = "candidate.yaml"


def candidate_policy(text: str, limits: Any) -> Any:
    """A candidate policy from its YAML text (a reviewer's upload), compiled in memory as the file
    ``candidate.yaml``: the same checks and the same hash as ``load_policy_set`` gives that file, and no file
    is read. PolicyError (``candidate.yaml:LINE: ...``) when it cannot be used."""
    import hashlib
    from pathlib import Path

    from claw_governance.policy.engine import PolicySet
    from claw_governance.policy.store import parse_file

    raw = text.encode("utf-8")
    docs, raw = parse_file(Path(CANDIDATE_NAME), CANDIDATE_NAME, raw)
    digest = hashlib.sha256(CANDIDATE_NAME.encode() + b"\0" + hashlib.sha256(raw).digest()).hexdigest()
    return PolicySet(docs, digest, [CANDIDATE_NAME], (), limits)
