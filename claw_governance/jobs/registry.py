"""Jobs: start (mint a token), check every call made under a token, revoke. See docs/contracts.md.

The per-call check runs on the hot path without a database round trip: a token's signature is verified once
(then cached by its text), and the jobs' (status, current token id) view is refreshed by the state sync
thread every ``state_sync_interval`` seconds, so a revocation made by another process is seen within it
(one made in this process applies at once).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from claw_governance.errors import ConfigError
from claw_governance.jobs.tokens import JobClaims, JobTokenError, mint, new_token_id, scope_hash, verify
from claw_governance.keys import PublicKey, by_alias
from claw_governance.model import AuditEvent, ToolCall
from claw_governance.policy import PolicySet, glob_match, normalize
from claw_governance.state.base import ACTIVE, REVOKED, JobRecord, StateStore
from claw_governance.timeparse import iso_utc

log = logging.getLogger("claw_governance.jobs")

_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")
_CACHE_LIMIT = 4096
MAX_TTL_SECONDS = 30 * 86400.0


@dataclass(frozen=True, slots=True)
class Job:
    """A started job: hand ``token`` to the agent (``gov.agent(agent_id, job_token=job.token)``)."""

    job_id: str
    agent_id: str
    token: str
    claims: JobClaims
    record: JobRecord

    @property
    def expires_at(self) -> int:
        """When the token stops working (seconds since the epoch)."""
        return self.claims.expires_at


class JobRegistry:
    """Mints and checks job tokens; job records live in the state store."""

    def __init__(
        self,
        store: StateStore,
        private_key: Ed25519PrivateKey,
        record: Callable[[AuditEvent], None],
        trusted_keys: Iterable[PublicKey] = (),
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._private = private_key
        public = PublicKey.from_crypto(private_key.public_key())
        self.key_id = public.key_id  # new tokens' kid; tokens minted under the legacy id still verify
        self._keys: dict[str, PublicKey] = by_alias([public, *trusted_keys])
        self._record = record
        self._now = now
        self._lock = threading.Lock()
        self._claims: dict[str, JobClaims | str] = {}  # token text -> claims, or why it is refused
        self._scope_memo: dict[tuple[str, str], bool] = {}
        self._view: dict[str, tuple[str, str]] = {}  # job id -> (status, current token id)
        self.last_error: str | None = None
        self.refresh()

    # ------------------------------------------------------------------------------------------ view

    def refresh(self) -> None:
        """Re-read every job's status and current token (the state sync thread calls this each round)."""
        try:
            view = self.store.job_versions()
        except Exception as exc:  # the old view stays; a call under an unknown job is then looked up directly
            self.last_error = f"{type(exc).__name__}: {exc}"
            return
        self.last_error = None
        self._view = view

    def _state(self, job_id: str) -> tuple[str, str] | None:
        state = self._view.get(job_id)
        if state is None:  # started by another process since the last refresh: one direct look-up
            job = self.store.get_job(job_id)
            if job is None:
                return None
            state = (job.status, job.token_id)
            self._view = {**self._view, job_id: state}
        return state

    # --------------------------------------------------------------------------------------- lifecycle

    def start(
        self,
        job_id: str,
        agent_id: str,
        scope: Iterable[str],
        ttl: float,
        *,
        policy: PolicySet,
        pin_policy: bool = True,
    ) -> tuple[Job, bool]:
        """Mint a token for ``job_id`` (a new job, or a retry of an existing one: the old token is superseded).

        Returns the job and whether it already existed. Raises ConfigError for bad input or a TTL above the
        contract's ``token.max_ttl``.
        """
        if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
            raise ConfigError(
                f"job id must be 1-128 characters of letters, digits and ._:@/- "
                f"(starting with a letter or digit), not {job_id!r}"
            )
        if (
            not isinstance(agent_id, str)
            or not agent_id.strip()
            or any(unicodedata.category(c) in ("Cc", "Cf", "Cn", "Co", "Cs") for c in agent_id)
        ):
            raise ConfigError(f"agent id must be a non-empty printable string, not {agent_id!r}")
        patterns = [scope] if isinstance(scope, str) else list(scope)
        if not patterns or not all(isinstance(p, str) and normalize(p) for p in patterns):
            raise ConfigError("scope must be a non-empty list of action patterns, e.g. ['read:*']")
        normalized = tuple(sorted({normalize(p) for p in patterns}))
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= MAX_TTL_SECONDS:
            raise ConfigError(f"ttl must be a number of seconds in (0, {int(MAX_TTL_SECONDS)}], not {ttl!r}")
        contract = policy.contract(agent_id)
        if contract is not None and contract.token_max_ttl is not None and ttl > contract.token_max_ttl:
            raise ConfigError(
                f"ttl {ttl:g}s is above the work contract's token.max_ttl "
                f"({contract.token_max_ttl:g}s) for agent {agent_id!r}"
            )
        now = self._now()
        issued = int(now)
        claims = JobClaims(
            job_id,
            agent_id,
            normalized,
            scope_hash(normalized),
            policy.hash if pin_policy else None,
            issued,
            int(now + ttl),
            new_token_id(),
            self.key_id,
        )
        existing = self.store.get_job(job_id)
        stored = self.store.put_job(
            JobRecord(
                job_id,
                agent_id,
                normalized,
                claims.scope_hash,
                claims.policy_hash,
                claims.token_id,
                float(issued),
                float(claims.expires_at),
                created=now,
            )
        )
        token = mint(claims, self._private)
        with self._lock:
            self._view = {**self._view, job_id: (stored.status, stored.token_id)}
        # Token ids go in ``meta`` (governance's own scalars, never redacted: a key named like a secret would
        # otherwise be); the token itself is never written anywhere.
        self._record(
            AuditEvent(
                "job",
                agent_id,
                None,
                details={"scope": list(normalized)},
                policy_hash=policy.hash,
                meta={
                    "event": "token_minted" if existing else "started",
                    "job_id": job_id,
                    "job_token_id": claims.token_id,
                    "scope_hash": claims.scope_hash,
                    "pinned_policy_hash": claims.policy_hash,
                    "issued_at": claims.issued_at,
                    "expires_at": claims.expires_at,
                    "tokens_issued": stored.tokens_issued,
                    "status": stored.status,
                },
            )
        )
        return Job(job_id, agent_id, token, claims, stored), existing is not None

    def revoke(self, job_id: str, reason: str, *, by: str | None = None) -> JobRecord:
        """Revoke a job: every token of it is refused (here at once, elsewhere within the sync interval)."""
        job = self.store.revoke_job(job_id, reason, self._now())
        if job is None:
            raise ConfigError(f"no job with id {job_id!r}")
        with self._lock:
            self._view = {**self._view, job_id: (REVOKED, job.token_id)}
        self._record(
            AuditEvent(
                "job",
                job.agent_id,
                None,
                details={"reason": reason, "by": by},
                meta={"event": "revoked", "job_id": job_id, "revoked_at": job.revoked_at},
            )
        )
        return job

    def get(self, job_id: str) -> JobRecord | None:
        """One job record, or None."""
        return self.store.get_job(job_id)

    def list(self, limit: int = 1000) -> list[JobRecord]:
        """Job records, newest first."""
        return self.store.list_jobs(limit)

    # ------------------------------------------------------------------------------------ the check

    def claims_of(self, token: str) -> JobClaims | None:
        """The verified claims of a token (cached), or None when it is not trustworthy."""
        found = self._claims_or_reason(token)
        return found if isinstance(found, JobClaims) else None

    def _claims_or_reason(self, token: str) -> JobClaims | str:
        found = self._claims.get(token)
        if found is None:
            try:
                found = verify(token, self._keys)
            except JobTokenError as exc:
                found = str(exc)
            if len(self._claims) >= _CACHE_LIMIT:
                self._claims = {}
            self._claims[token] = found
        return found

    def check(self, call: ToolCall, policy: PolicySet, *, check_scope: bool = True) -> str | None:
        """Why ``call`` must be denied under its job token (or the contract's demand for one); None if fine.

        ``check_scope=False`` skips the action-scope test (model calls: the scope lists actions).
        """
        token = call.job_token
        if token is None:
            contract = policy.contract(call.agent_id)
            if contract is not None and contract.token_require_scope:
                return (
                    f'The work contract for "{call.agent_id}" requires a job token (token.require_scope) '
                    "and this call carries none"
                )
            return None
        claims = self._claims_or_reason(token)
        if isinstance(claims, str):
            return f"Job token refused: {claims}"
        if self._now() >= claims.expires_at:
            return f"Job token for job {claims.job_id} expired at {iso_utc(claims.expires_at)}"
        if call.agent_id != claims.agent_id:
            return f'Job token of job {claims.job_id} is for agent "{claims.agent_id}", not "{call.agent_id}"'
        bound = call.metadata.get("job_id") if call.metadata else None
        if bound is not None and bound != claims.job_id:
            return f"Job token was minted for job {claims.job_id}, not {bound}"
        state = self._state(claims.job_id)
        if state is None:
            return f"Job {claims.job_id} is unknown to the state store"
        status, current = state
        if status != ACTIVE:
            return f"Job {claims.job_id} was revoked"
        if current != claims.token_id:
            return f"Job token of job {claims.job_id} was superseded by a newer token (retries mint new tokens)"
        key = (claims.token_id, call.action)
        inside = self._scope_memo.get(key) if check_scope else True
        if inside is None:
            action = normalize(call.action)
            inside = any(glob_match(p, action) for p in claims.scope)
            if len(self._scope_memo) >= _CACHE_LIMIT:
                self._scope_memo = {}
            self._scope_memo[key] = inside
        if not inside:
            return f'Action "{call.action}" is outside the scope of job {claims.job_id} ({", ".join(claims.scope)})'
        if claims.policy_hash is not None and claims.policy_hash != policy.hash:
            return f"Policy drift: job {claims.job_id} pinned {claims.policy_hash}, in force {policy.hash}"
        return None

    def audit_fields(self, call: ToolCall) -> dict[str, Any]:
        """``{"job_id": ...}`` for the audit entries of a call made under a (trustworthy) token."""
        if call.job_token is None:
            return {}
        claims = self.claims_of(call.job_token)
        return {"job_id": claims.job_id if claims else None, "job_token_id": claims.token_id if claims else None}
