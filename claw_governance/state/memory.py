"""An in-memory StateStore for tests and path-less governors (one process only; thread-safe)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from claw_governance.errors import ConfigError, EscalationError
from claw_governance.model import Escalation, EscalationStatus
from claw_governance.state.base import (
    ACTIVE,
    REVOKED,
    BudgetUse,
    GrantRecord,
    IdentityRecord,
    JobRecord,
    KeyRecord,
    PolicyVersion,
    Resolution,
    ReviewerRecord,
    TrustChange,
    budget_refuses,
    check_resolvable,
    grant_for,
    settled,
)


@dataclass(slots=True)
class _Grant:
    escalation_id: str
    agent_id: str
    action: str
    args_hash: str
    expires: float
    consumed: float | None = None
    standing: bool = False
    revoked: float | None = None


class MemoryStateStore:
    """Keeps state in dicts under one lock. Same semantics as the SQLite store, for one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checkpoints: dict[str, dict[str, Any]] = {}
        self._identities: dict[str, IdentityRecord] = {}
        self._keys: dict[str, list[KeyRecord]] = {}
        self._trust: dict[str, int] = {}
        self._nonces: dict[tuple[str, str], float] = {}
        self._escalations: dict[str, Escalation] = {}
        self._grants: list[_Grant] = []
        self._jobs: dict[str, JobRecord] = {}
        self._policies: dict[str, PolicyVersion] = {}
        self._budgets: dict[str, deque[tuple[float, float, float]]] = {}  # key -> (at, amount, expires), oldest first
        self._budget_totals: dict[str, float] = {}  # key -> sum of its events' amounts
        self._labels: dict[str, dict[str, float]] = {}  # session key -> {label: expires}
        self._reviewers: dict[str, ReviewerRecord] = {}

    # checkpoints
    def put_checkpoint(self, trail_id: str, seq: int, entry_hash: str, signature: str, created: float) -> None:
        """See StateStore."""
        with self._lock:
            self._checkpoints[trail_id] = {"seq": seq, "hash": entry_hash, "signature": signature, "created": created}

    def latest_checkpoint(self, trail_id: str) -> dict[str, Any] | None:
        """See StateStore."""
        with self._lock:
            found = self._checkpoints.get(trail_id)
            return dict(found) if found else None

    # identities
    def create_identity(self, record: IdentityRecord, key: KeyRecord) -> bool:
        """See StateStore."""
        with self._lock:
            if record.agent_id in self._identities:
                return False
            self._identities[record.agent_id] = record
            self._keys[record.agent_id] = [key]
            return True

    def get_identity(self, agent_id: str) -> IdentityRecord | None:
        """See StateStore."""
        with self._lock:
            return self._identities.get(agent_id)

    def list_identities(self) -> list[IdentityRecord]:
        """See StateStore."""
        with self._lock:
            return [self._identities[k] for k in sorted(self._identities)]

    def identity_versions(self) -> dict[str, tuple[str, int]]:
        """See StateStore."""
        with self._lock:
            return {k: (r.status, r.version) for k, r in self._identities.items()}

    def set_identity_status(self, agent_id: str, status: str, reason: str | None, now: float) -> IdentityRecord | None:
        """See StateStore."""
        with self._lock:
            rec = self._identities.get(agent_id)
            if rec is None:
                return None
            rec = replace(rec, status=status, reason=reason, updated=now, version=rec.version + 1)
            self._identities[agent_id] = rec
            return rec

    def add_key(self, key: KeyRecord) -> None:
        """See StateStore."""
        with self._lock:
            if key.agent_id not in self._identities:
                raise KeyError(key.agent_id)
            self._keys[key.agent_id].append(key)

    def activate_key(self, agent_id: str, key_id: str, now: float) -> IdentityRecord | None:
        """See StateStore."""
        with self._lock:
            rec = self._identities.get(agent_id)
            if rec is None or not any(k.key_id == key_id for k in self._keys[agent_id]):
                return None
            self._keys[agent_id] = [
                replace(k, retired=now) if k.key_id == rec.key_id and k.key_id != key_id else k
                for k in self._keys[agent_id]
            ]
            rec = replace(rec, key_id=key_id, updated=now, version=rec.version + 1)
            self._identities[agent_id] = rec
            return rec

    def keys(self, agent_id: str) -> list[KeyRecord]:
        """See StateStore."""
        with self._lock:
            return list(self._keys.get(agent_id, ()))

    # trust
    def trust_scores(self) -> dict[str, int]:
        """See StateStore."""
        with self._lock:
            return dict(self._trust)

    def get_trust(self, agent_id: str) -> int | None:
        """See StateStore."""
        with self._lock:
            return self._trust.get(agent_id)

    def add_trust(self, deltas: Mapping[str, tuple[int, int, int]]) -> list[TrustChange]:
        """See StateStore."""
        changes = []
        with self._lock:
            for agent_id, (delta, initial, maximum) in deltas.items():
                old = self._trust.get(agent_id, initial)
                new = min(maximum, max(0, old + delta))
                self._trust[agent_id] = new
                changes.append(TrustChange(agent_id, old, new))
        return changes

    def set_trust(self, agent_id: str, value: int) -> TrustChange:
        """See StateStore."""
        with self._lock:
            old = self._trust.get(agent_id, value)
            self._trust[agent_id] = max(0, value)
            return TrustChange(agent_id, old, max(0, value))

    # nonces
    def use_nonce(self, agent_id: str, nonce: str, expires: float) -> bool:
        """See StateStore."""
        with self._lock:
            if (agent_id, nonce) in self._nonces:
                return False
            self._nonces[(agent_id, nonce)] = expires
            return True

    def add_to_budget(
        self, key: str, amount: float, limit: float, window_seconds: float, now: float, *, force: bool = False
    ) -> BudgetUse:
        """See StateStore (atomic under the store's lock; one process only)."""
        with self._lock:
            events = self._budgets.setdefault(key, deque())
            total = self._budget_totals.get(key, 0.0)
            while events and events[0][0] <= now - window_seconds:  # oldest first: only what left the window
                total -= events.popleft()[1]
            if not events:
                total = 0.0  # no float residue from the subtractions once the window is empty
            if budget_refuses(total, amount, limit, force=force):
                self._budget_totals[key] = total
                return BudgetUse(False, total)
            events.append((now, amount, now + window_seconds))
            self._budget_totals[key] = total + amount
            return BudgetUse(True, total + amount)

    def session_labels(self, key: str, add: frozenset[str], now: float, ttl_seconds: float) -> frozenset[str]:
        """See StateStore."""
        with self._lock:
            labels = self._labels.setdefault(key, {})
            for label in add:
                labels[label] = max(labels.get(label, 0.0), now + ttl_seconds)
            return frozenset(label for label, expires in labels.items() if expires > now)

    def purge(self, now: float) -> int:
        """See StateStore."""
        with self._lock:
            removed = 0
            for key in list(self._labels):
                kept_labels = {k: e for k, e in self._labels[key].items() if e > now}
                removed += len(self._labels[key]) - len(kept_labels)
                self._labels[key] = kept_labels
                if not kept_labels:
                    del self._labels[key]
            for key in list(self._budgets):
                kept = deque(e for e in self._budgets[key] if e[2] > now)
                removed += len(self._budgets[key]) - len(kept)
                if kept:
                    self._budgets[key] = kept
                    self._budget_totals[key] = float(sum(e[1] for e in kept))
                else:
                    del self._budgets[key]
                    self._budget_totals.pop(key, None)
            old = [k for k, exp in self._nonces.items() if exp <= now]
            for k in old:
                del self._nonces[k]
            before = len(self._grants)
            self._grants = [g for g in self._grants if g.consumed is None and g.revoked is None and g.expires > now]
            return removed + len(old) + before - len(self._grants)

    # escalations
    def put_escalation(self, escalation: Escalation) -> None:
        """See StateStore."""
        with self._lock:
            if escalation.id in self._escalations:
                raise ValueError(f"escalation {escalation.id} already exists")
            self._escalations[escalation.id] = escalation

    def get_escalation(self, escalation_id: str) -> Escalation | None:
        """See StateStore."""
        with self._lock:
            return self._escalations.get(escalation_id)

    def list_escalations(self, status: EscalationStatus | None = None, limit: int = 1000) -> list[Escalation]:
        """See StateStore."""
        with self._lock:
            found = [e for e in self._escalations.values() if status is None or e.status is status]
        return sorted(found, key=lambda e: e.created)[:limit]

    def expire_escalation(self, escalation_id: str, now: float) -> Escalation | None:
        """See StateStore."""
        with self._lock:
            esc = self._escalations.get(escalation_id)
            if esc is None or esc.status is not EscalationStatus.PENDING or esc.expires > now:
                return None
            esc = replace(esc, status=EscalationStatus.EXPIRED, resolved_at=now)
            self._escalations[escalation_id] = esc
            return esc

    def resolve_escalation(
        self, escalation_id: str, status: EscalationStatus, resolver: str, notes: str, now: float, grant_expires: float
    ) -> Escalation:
        """See StateStore."""
        if status not in (EscalationStatus.APPROVED, EscalationStatus.DENIED):
            raise EscalationError(f"an escalation can only be approved or denied, not {status.value}")
        with self._lock:
            esc = self._escalations.get(escalation_id)
            if esc is not None and esc.status is EscalationStatus.PENDING and esc.expires <= now:
                self._escalations[escalation_id] = replace(esc, status=EscalationStatus.EXPIRED, resolved_at=now)
            check_resolvable(esc, escalation_id, now)
            assert esc is not None
            esc = replace(esc, status=status, resolver=resolver, notes=notes, resolved_at=now)
            self._escalations[escalation_id] = esc
            if status is EscalationStatus.APPROVED:
                self._grants.append(_Grant(esc.id, esc.agent_id, esc.action, esc.args_hash, grant_expires))
            return esc

    def consume_grant(self, agent_id: str, action: str, args_hash: str, now: float) -> str | None:
        """See StateStore."""
        with self._lock:
            for grant in self._grants:
                if (
                    grant.consumed is None
                    and grant.revoked is None
                    and not grant.standing
                    and grant.expires > now
                    and grant.agent_id == agent_id
                    and grant.action == action
                    and grant.args_hash == args_hash
                ):
                    grant.consumed = now
                    return grant.escalation_id
        return None

    # jobs
    def put_job(self, job: JobRecord) -> JobRecord:
        """See StateStore."""
        with self._lock:
            old = self._jobs.get(job.job_id)
            if old is None:
                stored = replace(job, status=ACTIVE, revoked_at=None, reason=None, tokens_issued=1)
            elif old.agent_id != job.agent_id:
                raise ConfigError(f"job {job.job_id!r} belongs to agent {old.agent_id!r}, not {job.agent_id!r}")
            else:
                stored = replace(
                    old,
                    scope=job.scope,
                    scope_hash=job.scope_hash,
                    policy_hash=job.policy_hash,
                    token_id=job.token_id,
                    issued=job.issued,
                    expires=job.expires,
                    tokens_issued=old.tokens_issued + 1,
                )
            self._jobs[job.job_id] = stored
            return stored

    def get_job(self, job_id: str) -> JobRecord | None:
        """See StateStore."""
        with self._lock:
            return self._jobs.get(job_id)

    def list_jobs(self, limit: int = 1000) -> list[JobRecord]:
        """See StateStore."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: (-j.issued, j.job_id))[:limit]

    def revoke_job(self, job_id: str, reason: str, now: float) -> JobRecord | None:
        """See StateStore."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.status != REVOKED:
                job = self._jobs[job_id] = replace(job, status=REVOKED, revoked_at=now, reason=reason)
            return job

    def job_versions(self) -> dict[str, tuple[str, str]]:
        """See StateStore."""
        with self._lock:
            return {j.job_id: (j.status, j.token_id) for j in self._jobs.values()}

    # policy archive
    def archive_policy(self, policy_hash: str, files: Mapping[str, str], now: float) -> None:
        """See StateStore."""
        with self._lock:
            old = self._policies.get(policy_hash)
            self._policies[policy_hash] = (
                PolicyVersion(policy_hash, dict(files), now, now) if old is None else replace(old, last_seen=now)
            )

    def get_policy_version(self, policy_hash: str) -> PolicyVersion | None:
        """See StateStore."""
        with self._lock:
            return self._policies.get(policy_hash)

    def list_policy_versions(self, limit: int = 1000) -> list[PolicyVersion]:
        """See StateStore."""
        with self._lock:
            return sorted(self._policies.values(), key=lambda v: (v.first_seen, v.policy_hash))[:limit]

    # reviewers
    def put_reviewer(self, record: ReviewerRecord) -> bool:
        """See StateStore."""
        with self._lock:
            if record.name in self._reviewers or (
                record.token_id and any(r.token_id == record.token_id for r in self._reviewers.values())
            ):
                return False
            self._reviewers[record.name] = record
            return True

    def replace_reviewer(self, record: ReviewerRecord) -> bool:
        """See StateStore."""
        with self._lock:
            if record.name not in self._reviewers:
                return False
            self._reviewers[record.name] = record
            return True

    def get_reviewer(self, name: str) -> ReviewerRecord | None:
        """See StateStore."""
        with self._lock:
            return self._reviewers.get(name)

    def reviewer_by_token(self, token_id: str) -> ReviewerRecord | None:
        """See StateStore."""
        with self._lock:
            return next((r for r in self._reviewers.values() if r.token_id == token_id), None)

    def list_reviewers(self) -> list[ReviewerRecord]:
        """See StateStore."""
        with self._lock:
            return [self._reviewers[k] for k in sorted(self._reviewers)]

    def delete_reviewer(self, name: str) -> bool:
        """See StateStore."""
        with self._lock:
            return self._reviewers.pop(name, None) is not None

    def settle_escalation(self, escalation_id: str, resolution: Resolution, now: float) -> Escalation:
        """See StateStore."""
        if resolution.status not in (EscalationStatus.APPROVED, EscalationStatus.DENIED):
            raise EscalationError(f"an escalation can only be approved or denied, not {resolution.status.value}")
        with self._lock:
            esc = self._escalations.get(escalation_id)
            if esc is not None and esc.status is EscalationStatus.PENDING and esc.expires <= now:
                self._escalations[escalation_id] = replace(esc, status=EscalationStatus.EXPIRED, resolved_at=now)
            check_resolvable(esc, escalation_id, now)
            assert esc is not None
            esc = settled(esc, resolution, now)
            self._escalations[escalation_id] = esc
            if resolution.status is EscalationStatus.APPROVED:
                bound, standing = grant_for(esc, resolution)
                self._grants.append(
                    _Grant(esc.id, esc.agent_id, esc.action, bound, resolution.grant_expires, standing=standing)
                )
            return esc

    def use_standing_grant(self, agent_id: str, action: str, now: float) -> str | None:
        """See StateStore."""
        with self._lock:
            found = [
                g
                for g in self._grants
                if g.standing
                and g.revoked is None
                and g.expires > now
                and g.agent_id == agent_id
                and g.action == action
            ]
        return max(found, key=lambda g: g.expires).escalation_id if found else None

    def revoke_grant(self, escalation_id: str, now: float) -> bool:
        """See StateStore."""
        with self._lock:
            for grant in self._grants:
                if (
                    grant.escalation_id == escalation_id
                    and grant.revoked is None
                    and grant.consumed is None
                    and grant.expires > now
                ):
                    grant.revoked = now
                    return True
        return False

    def list_grants(self, now: float, active_only: bool = True) -> list[GrantRecord]:
        """See StateStore."""
        with self._lock:
            found = [
                GrantRecord(
                    g.escalation_id, g.agent_id, g.action, g.args_hash, g.expires, g.consumed, g.standing, g.revoked
                )
                for g in self._grants
                if not active_only or (g.consumed is None and g.revoked is None and g.expires > now)
            ]
        return sorted(found, key=lambda g: g.expires)

    def close(self) -> None:
        """Nothing to release."""
