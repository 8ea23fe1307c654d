"""The work contract's rules, checked over the audit entries of one job (what ``claw-gov proof verify`` runs).

Pure functions over parsed entries (the dicts of the trail's JSON lines), so a bundle is checked offline with
nothing but its files. Every finding names the entry (seq) and the rule it breaks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from claw_governance.policy import glob_match, normalize
from claw_governance.policy.schema import Contract

#: Entry types that belong to a job's evidence when their details carry the job's id.
JOB_ENTRY_TYPES = ("job", "policy_decision", "agent_action", "model_call", "escalation", "escalation_resolved")


def _details(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    details = entry.get("details")
    return details if isinstance(details, Mapping) else {}


def job_entries(entries: Iterable[Mapping[str, Any]], job_id: str) -> list[Mapping[str, Any]]:
    """The entries of one job, in the order given (trail order): those whose details name the job, plus the
    escalations (and their resolutions) that the job's decisions opened."""
    every = list(entries)
    escalations: set[str] = set()
    for entry in every:
        decision = entry.get("decision")
        if _details(entry).get("job_id") == job_id and isinstance(decision, Mapping) and decision.get("escalation_id"):
            escalations.add(str(decision["escalation_id"]))

    def belongs(entry: Mapping[str, Any]) -> bool:
        details = _details(entry)
        if entry.get("type") in JOB_ENTRY_TYPES and details.get("job_id") == job_id:
            return True
        return (
            entry.get("type") in ("escalation", "escalation_resolved")
            and str(details.get("escalation_id") or details.get("id")) in escalations
        )

    return [e for e in every if belongs(e)]


def _allowed(entry: Mapping[str, Any]) -> bool:
    decision = entry.get("decision")
    return isinstance(decision, Mapping) and decision.get("allowed") is True


def check_job(entries: Sequence[Mapping[str, Any]], claims: Mapping[str, Any], contract: Contract | None) -> list[str]:
    """Every way the job's entries break its token or its contract; empty when the run kept to both."""
    problems: list[str] = []
    scope = [normalize(str(p)) for p in claims.get("scope") or []]
    pinned = claims.get("policy_hash")
    agent = claims.get("sub")
    minted = {
        str(_details(e).get("job_token_id"))
        for e in entries
        if e.get("type") == "job" and _details(e).get("event") in ("started", "token_minted")
    }
    decisions = [e for e in entries if e.get("type") == "policy_decision"]
    receipts = [e for e in entries if e.get("type") == "model_call"]
    if not any(e.get("type") == "job" and _details(e).get("event") == "started" for e in entries):
        problems.append("the job's 'started' entry is missing")
    for entry in decisions:
        seq = entry.get("seq")
        action = str(entry.get("action"))
        token_id = _details(entry).get("job_token_id")
        if token_id is not None and str(token_id) not in minted:
            problems.append(f"seq {seq}: a call under token {token_id}, which no 'job' entry shows as minted")
        if entry.get("agent_id") != agent:
            problems.append(f"seq {seq}: a call by {entry.get('agent_id')!r} under a token for {agent!r}")
        if not _allowed(entry):
            continue
        if scope and not any(glob_match(p, normalize(action)) for p in scope):
            problems.append(f"seq {seq}: {action!r} was allowed outside the job's scope ({', '.join(scope)})")
        if pinned and entry.get("policy_hash") != pinned:
            problems.append(
                f"seq {seq}: {action!r} was allowed under policy {entry.get('policy_hash')}, not the pinned {pinned}"
            )
    for entry in receipts:
        violation = _details(entry).get("violation")
        if violation:
            problems.append(f"seq {entry.get('seq')}: model call outside the contract: {violation}")
    if contract is not None and contract.receipts_required:
        good = [int(e.get("seq", 0)) for e in receipts if not _details(e).get("blocked")]
        if decisions and not good:
            problems.append("receipts: required, but the job has tool calls and no model_call receipt")
        for entry in decisions:
            seq = int(entry.get("seq", 0))
            if good and not any(r < seq for r in good):
                problems.append(
                    f"seq {seq}: tool call {entry.get('action')!r} before any model_call receipt (receipts: required)"
                )
        requested = {str(i) for e in receipts for i in (_details(e).get("tool_call_ids") or [])}
        for entry in decisions:
            call_id = _details(entry).get("call_id")
            framework = _details(entry).get("framework")
            if framework == "langchain" and requested and call_id and str(call_id) not in requested:
                problems.append(
                    f"seq {entry.get('seq')}: tool call {call_id} was not requested by any receipted model call"
                )
    return problems
