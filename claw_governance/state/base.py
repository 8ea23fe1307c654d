"""The StateStore interface and the values it stores.

Everything that several processes of one deployment must share lives behind this one interface:
identities (public keys and revocation status), trust scores, replay nonces, escalations, approval grants
and audit checkpoints. Callers never see SQL: an implementation for another database (PostgreSQL) only has
to implement :class:`StateStore` with the same atomicity guarantees, stated on each method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import orjson

from claw_governance.errors import EscalationClosed, EscalationNotFound
from claw_governance.model import Escalation, EscalationStatus, args_hash
from claw_governance.timeparse import iso_utc

#: Identity statuses.
ACTIVE = "active"
REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One public key of an agent. A key verifies signatures made in ``[created, retired)``."""

    key_id: str
    agent_id: str
    algorithm: str  # "ed25519" | "rsa"
    public_key: str  # base64 of the DER SubjectPublicKeyInfo
    created: float
    retired: float | None = None


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """An agent identity as the store keeps it (no private material, ever)."""

    agent_id: str
    key_id: str  # the current signing key
    status: str = ACTIVE  # ACTIVE | REVOKED
    created: float = 0.0
    updated: float = 0.0
    reason: str | None = None  # why it was last revoked / reinstated
    version: int = 1  # bumped by every change (rotation, revocation ...): caches compare it
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def revoked(self) -> bool:
        """True while the identity is revoked."""
        return self.status == REVOKED


@dataclass(frozen=True, slots=True)
class TrustChange:
    """The effect of one atomic trust update: the score before and after."""

    agent_id: str
    old: int
    new: int


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A work-contract job (issue 18): who may act, on what, under which pinned policy, until when.

    ``token_id`` is the ``jti`` of the job's current token: minting a new token for the job (a retry)
    supersedes the old one, which is then refused.
    """

    job_id: str
    agent_id: str
    scope: tuple[str, ...]
    scope_hash: str
    policy_hash: str | None  # pinned policy set hash, or None when the job is not pinned
    token_id: str
    issued: float
    expires: float
    status: str = ACTIVE  # ACTIVE | REVOKED
    revoked_at: float | None = None
    reason: str | None = None
    created: float = 0.0
    tokens_issued: int = 1

    @property
    def revoked(self) -> bool:
        """True once the job was revoked."""
        return self.status == REVOKED


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    """One policy set that was in force, kept by its content hash: ``files`` maps name -> exact text."""

    policy_hash: str
    files: Mapping[str, str]
    first_seen: float
    last_seen: float


#: Relative tolerance when a budget's sum is compared with its limit, so that 0.1 + 0.2 fits a limit of 0.3.
BUDGET_SLACK = 1e-9


def budget_refuses(used: float, amount: float, limit: float, *, force: bool = False) -> bool:
    """Whether ``add_to_budget`` refuses ``amount`` on top of ``used`` (every store decides with this one rule):
    a refund (negative amount) and a forced charge always go in; otherwise the sum must fit ``limit``."""
    return not force and amount >= 0 and used + amount > limit + BUDGET_SLACK * max(1.0, abs(limit))


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """The answer of ``StateStore.add_to_budget``."""

    admitted: bool
    used: float  # the window's total: including this amount when admitted, without it when refused


@dataclass(frozen=True, slots=True)
class ReviewerRecord:
    """A reviewer as the store keeps it: who may resolve escalations, and the hashes of their credentials.

    ``token_hash`` is the SHA-256 (hex) of the whole API token; the token itself is shown once and never stored.
    ``password_hash`` is an argon2id PHC string (or None: no web login). Names are lower case.
    """

    name: str
    roles: tuple[str, ...] = ("approver",)  # "approver" (may resolve) and/or "admin" (may also revoke agents)
    groups: tuple[str, ...] = ()  # matched against a rule's ``approvers`` like the name
    scope_actions: tuple[str, ...] = ()  # action patterns this reviewer may resolve (empty: any)
    scope_agents: tuple[str, ...] = ()  # agent id patterns (empty: any)
    token_id: str | None = None  # public part of the API token (the credential id audited with a resolution)
    token_hash: str | None = None
    password_hash: str | None = None
    created: float = 0.0
    updated: float = 0.0


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a reviewer decided about one escalation, as ``settle_escalation`` stores it in one transaction.

    ``grant_args_hash`` is the args hash the one-shot grant binds to (the edited arguments' hash after an edit,
    else the escalation's own). With ``standing=True`` the grant is instead a standing grant for the same agent
    and action with ANY arguments, usable any number of times until ``grant_expires`` or its revocation.
    """

    status: EscalationStatus  # APPROVED | DENIED
    resolver: str  # the reviewer's name
    notes: str
    credential_id: str | None = None
    grant_expires: float = 0.0
    grant_args_hash: str | None = None  # None: the escalation's args_hash
    standing: bool = False
    edited_args: Mapping[str, Any] | None = None  # in the clear: the waiting agent runs them
    message: str | None = None  # a denial's message for the model


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """An approval grant: one-shot (bound to an args hash) or standing (``args_hash == "*"``)."""

    escalation_id: str
    agent_id: str
    action: str
    args_hash: str
    expires: float
    consumed: float | None = None
    standing: bool = False
    revoked: float | None = None


@runtime_checkable
class StateStore(Protocol):
    """Shared state. Every method is atomic on its own and safe for several threads and processes."""

    # ------------------------------------------------------------------ audit checkpoints (audit trail)
    def put_checkpoint(self, trail_id: str, seq: int, entry_hash: str, signature: str, created: float) -> None:
        """Remember the newest signed checkpoint of a trail (outside the log, so truncation shows)."""

    def latest_checkpoint(self, trail_id: str) -> dict[str, Any] | None:
        """``{"seq", "hash", "signature", "created"}`` of the newest checkpoint, or None."""

    # ------------------------------------------------------------------------------------- identities
    def create_identity(self, record: IdentityRecord, key: KeyRecord) -> bool:
        """Insert an identity and its first key; False (and no change) if the agent already exists."""

    def get_identity(self, agent_id: str) -> IdentityRecord | None:
        """One identity, or None."""

    def list_identities(self) -> list[IdentityRecord]:
        """Every identity, ordered by agent id."""

    def identity_versions(self) -> dict[str, tuple[str, int]]:
        """``{agent_id: (status, version)}`` for every identity: the cheap query caches poll."""

    def set_identity_status(self, agent_id: str, status: str, reason: str | None, now: float) -> IdentityRecord | None:
        """Set ACTIVE/REVOKED (bumps the version); returns the new record, None if the agent is unknown."""

    def add_key(self, key: KeyRecord) -> None:
        """Store another public key of an existing agent (not yet current: see ``activate_key``)."""

    def activate_key(self, agent_id: str, key_id: str, now: float) -> IdentityRecord | None:
        """Make ``key_id`` the current key and retire the previous one at ``now``, in one transaction."""

    def keys(self, agent_id: str) -> list[KeyRecord]:
        """Every key of an agent, oldest first (retired ones included: they verify old signatures)."""

    # ------------------------------------------------------------------------------------------ trust
    def trust_scores(self) -> dict[str, int]:
        """Every stored score."""

    def get_trust(self, agent_id: str) -> int | None:
        """One stored score, or None if the agent never had one."""

    def add_trust(self, deltas: Mapping[str, tuple[int, int, int]]) -> list[TrustChange]:
        """Apply ``{agent_id: (delta, initial, maximum)}`` in one transaction; a missing score starts at ``initial``.

        Scores stay within 0..maximum. Each update is ``score = min(maximum, max(0, score + delta))`` inside the
        database, so
        concurrent updates from any number of processes are never lost.
        """

    def set_trust(self, agent_id: str, value: int) -> TrustChange:
        """Set a score (reinstatement)."""

    # ----------------------------------------------------------------------------------- replay nonces
    def use_nonce(self, agent_id: str, nonce: str, expires: float) -> bool:
        """Record a signature nonce; False if it was already used (a replay). Atomic across processes."""

    def purge(self, now: float) -> int:
        """Drop expired nonces and expired or consumed grants; return how many rows went."""

    # ------------------------------------------------------------------------------------- escalations
    def put_escalation(self, escalation: Escalation) -> None:
        """Store a new escalation."""

    def get_escalation(self, escalation_id: str) -> Escalation | None:
        """One escalation as stored (expiry is applied by ``expire_escalation``), or None."""

    def list_escalations(self, status: EscalationStatus | None = None, limit: int = 1000) -> list[Escalation]:
        """Escalations, oldest first, optionally only those with ``status``."""

    def expire_escalation(self, escalation_id: str, now: float) -> Escalation | None:
        """Mark a pending escalation whose time is up as EXPIRED; return it if THIS call changed it."""

    def resolve_escalation(
        self, escalation_id: str, status: EscalationStatus, resolver: str, notes: str, now: float, grant_expires: float
    ) -> Escalation:
        """Approve or deny a pending, unexpired escalation; an approval creates its one-shot grant.

        Atomic: of two concurrent resolutions exactly one succeeds. Raises ``EscalationError`` for an
        unknown id, one already resolved, or one whose time is up (which it marks EXPIRED).
        """

    def consume_grant(self, agent_id: str, action: str, args_hash: str, now: float) -> str | None:
        """Use up one unexpired grant for exactly (agent, action, args hash); its escalation id, or None.

        Atomic across processes: one grant is consumed at most once.
        """

    # ------------------------------------------------------------------------- work contracts (jobs)
    def put_job(self, job: JobRecord) -> JobRecord:
        """Create the job, or (same job id, same agent) mint a new token for it: the stored ``token_id``,
        ``issued``, ``expires`` and scope are replaced, ``tokens_issued`` grows by one, a revoked job stays
        revoked. Atomic; returns the record as stored. Raises ``ConfigError`` when the id belongs to
        another agent."""

    def get_job(self, job_id: str) -> JobRecord | None:
        """One job, or None."""

    def list_jobs(self, limit: int = 1000) -> list[JobRecord]:
        """Jobs, newest first."""

    def revoke_job(self, job_id: str, reason: str, now: float) -> JobRecord | None:
        """Mark a job REVOKED (idempotent: the first revocation's time and reason stay); None if unknown."""

    def job_versions(self) -> dict[str, tuple[str, str]]:
        """``{job_id: (status, token_id)}`` for every job: the cheap query caches poll."""

    # -------------------------------------------------------------------------------- policy archive
    def archive_policy(self, policy_hash: str, files: Mapping[str, str], now: float) -> None:
        """Keep a policy set by its hash (first time: insert; again: update ``last_seen``). Atomic."""

    def get_policy_version(self, policy_hash: str) -> PolicyVersion | None:
        """The archived policy set with exactly this hash, or None."""

    def list_policy_versions(self, limit: int = 1000) -> list[PolicyVersion]:
        """Archived policy sets, oldest first (by first_seen)."""

    # ------------------------------------------------------------------------------------------- budgets
    def add_to_budget(
        self, key: str, amount: float, limit: float, window_seconds: float, now: float, *, force: bool = False
    ) -> BudgetUse:
        """Atomically admit ``amount`` into the budget ``key`` if it fits, across every process and host.

        ``used`` is the sum of the amounts recorded under ``key`` with a time ``at > now - window_seconds``
        (the sliding window; a record stamped after ``now`` by a host whose clock runs ahead counts too). If
        ``used + amount <= limit`` (within ``BUDGET_SLACK``, relative), or ``force`` (a human approved the
        call), record ``(key, at=now, amount)`` and return ``BudgetUse(True, used + amount)``; otherwise
        record nothing and return ``BudgetUse(False, used)``. ``amount`` may be negative only to compensate an
        amount recorded by this caller moments before (then it is always recorded, like ``force``).

        The read and the write are one transaction serialised per ``key``: of any number of concurrent calls
        (threads, processes, hosts), the admitted ones never sum past ``limit`` together (SQLite: one
        ``BEGIN IMMEDIATE`` transaction; PostgreSQL: for example ``pg_advisory_xact_lock(hashtext(key))`` or
        ``SELECT ... FOR UPDATE`` on a per-key row, then the sum and the insert, in one transaction).
        Records older than the window may be dropped from then on (``purge`` drops those past the expiry
        ``at + window_seconds`` stored with each). The cost must not grow with the number of records in the
        window (the SQLite store keeps a running total per key and removes only what left the window).
        """

    # ----------------------------------------------------------------------------- session data-flow labels
    def session_labels(self, key: str, add: frozenset[str], now: float, ttl_seconds: float) -> frozenset[str]:
        """Attach ``add`` to the session ``key`` (each label kept until ``now + ttl_seconds``; attaching it again
        extends that) and return every label of the session not yet expired, ``add`` included. Labels only
        accumulate: nothing removes one before it expires. With ``add`` empty this is a read and writes
        nothing. Atomic per call; safe for several processes and hosts."""

    # -------------------------------------------------------------- reviewers and their resolutions (issue 16)
    def put_reviewer(self, record: ReviewerRecord) -> bool:
        """Insert a reviewer; False (and no change) if the name exists. Names are unique, token ids too."""

    def replace_reviewer(self, record: ReviewerRecord) -> bool:
        """Overwrite the stored reviewer of ``record.name`` (token rotation, new password, new scope) in one
        statement; False if there is no such reviewer. A rotated token's old ``token_id`` stops matching at once."""

    def get_reviewer(self, name: str) -> ReviewerRecord | None:
        """One reviewer by (lower-case) name, or None."""

    def reviewer_by_token(self, token_id: str) -> ReviewerRecord | None:
        """The reviewer whose current token has this public id, or None (the caller compares the hash)."""

    def list_reviewers(self) -> list[ReviewerRecord]:
        """Every reviewer, ordered by name."""

    def delete_reviewer(self, name: str) -> bool:
        """Remove a reviewer (their token and password stop working at once); False if unknown. Their past
        resolutions stay in escalations and the audit trail."""

    def settle_escalation(self, escalation_id: str, resolution: Resolution, now: float) -> Escalation:
        """Approve or deny a pending, unexpired escalation with everything a reviewer decided, in ONE transaction:
        status, resolver, notes, ``resolved_at=now``, ``credential_id``, ``edited_args`` (and their hash, the
        grant's ``args_hash``), ``message``, and ``grant_until`` (set for a standing grant). An approval inserts
        its grant (``GrantRecord``: one-shot bound to ``resolution.grant_args_hash`` or the escalation's own, or
        standing with ``args_hash="*"``) expiring at ``resolution.grant_expires``.

        Atomic: of two concurrent settlements exactly one succeeds. Raises ``EscalationNotFound`` for an unknown
        id and ``EscalationClosed`` for one already resolved or whose time is up (which it marks EXPIRED).
        Returns the escalation as stored after the change.
        """

    def use_standing_grant(self, agent_id: str, action: str, now: float) -> str | None:
        """The escalation id of an unrevoked standing grant for (agent, action) with ``expires > now``, or None.
        A standing grant is not consumed by use (it lasts until it expires or is revoked); the one expiring
        last is returned."""

    def revoke_grant(self, escalation_id: str, now: float) -> bool:
        """Revoke the unexpired, unconsumed grant of an escalation (one-shot or standing); True if one was."""

    def list_grants(self, now: float, active_only: bool = True) -> list[GrantRecord]:
        """Grants ordered by expiry; ``active_only``: unconsumed, unrevoked, ``expires > now``."""

    def close(self) -> None:
        """Release connections."""


# ---------------------------------------------------------------------------------------------------------------
# What every implementation shares: the checks and transitions of an escalation's resolution, and the row
# mapping of the SQL stores (sqlite.py, postgres.py). One column list and one row <-> value mapping per table,
# so the two stores cannot drift apart; only their placeholders (``?`` / ``%s``) and SQL dialects differ.
# Nothing here imports an implementation (they import this module).


def check_resolvable(esc: Escalation | None, escalation_id: str, now: float) -> None:
    """Raise EscalationError unless ``esc`` is pending and unexpired (shared by every store)."""
    if esc is None:
        raise EscalationNotFound(f"no escalation with id {escalation_id!r}")
    if esc.status is EscalationStatus.PENDING and esc.expires <= now:
        raise EscalationClosed(f"escalation {escalation_id} expired at {iso_utc(esc.expires)}; it cannot be resolved")
    if esc.status is EscalationStatus.EXPIRED:
        raise EscalationClosed(f"escalation {escalation_id} expired at {iso_utc(esc.expires)}; it cannot be resolved")
    if esc.status is not EscalationStatus.PENDING:
        raise EscalationClosed(
            f"escalation {escalation_id} is already {esc.status.value} (by {esc.resolver or 'unknown'})"
        )


def settled(esc: Escalation, resolution: Resolution, now: float) -> Escalation:
    """``esc`` after ``resolution`` (shared by every store, so they store the same fields)."""
    edited = dict(resolution.edited_args) if resolution.edited_args is not None else None
    return replace(
        esc,
        status=resolution.status,
        resolver=resolution.resolver,
        notes=resolution.notes,
        resolved_at=now,
        credential_id=resolution.credential_id,
        edited_args=edited,
        edited_args_hash=args_hash(edited) if edited is not None else None,
        message=resolution.message,
        grant_until=resolution.grant_expires if resolution.standing else None,
    )


def grant_for(esc: Escalation, resolution: Resolution) -> tuple[str, bool]:
    """The (args hash, standing) of the grant an approval creates."""
    if resolution.standing:
        return "*", True
    return resolution.grant_args_hash or esc.args_hash, False


ESCALATION_COLUMNS = (
    "id, agent_id, action, args_hash, context, rule, reason, status, created, expires, resolver, notes, resolved_at, "
    "approvers, max_grant, call_id, credential_id, edited_args, edited_args_hash, message, grant_until"
)
REVIEWER_COLUMNS = (
    "name, roles, groups_, scope_actions, scope_agents, token_id, token_hash, password_hash, created, updated"
)
JOB_COLUMNS = (
    "job_id, agent_id, scope, scope_hash, policy_hash, token_id, issued, expires, status, revoked_at, "
    "reason, created, tokens_issued"
)
IDENTITY_COLUMNS = "agent_id, key_id, status, created, updated, reason, version, metadata"
KEY_COLUMNS = "key_id, agent_id, algorithm, public_key, created, retired"
GRANT_COLUMNS = "escalation_id, agent_id, action, args_hash, expires, consumed, standing, revoked"
POLICY_VERSION_COLUMNS = "policy_hash, files, first_seen, last_seen"


def json_text(value: Any) -> str:
    """A JSON column's text (non-string keys allowed, anything else as ``str``), as every SQL store writes it."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def escalation_row(e: Escalation) -> tuple[Any, ...]:
    """The values of ``ESCALATION_COLUMNS`` for ``e``."""
    return (
        e.id,
        e.agent_id,
        e.action,
        e.args_hash,
        json_text(dict(e.context)),
        e.rule,
        e.reason,
        e.status.value,
        e.created,
        e.expires,
        e.resolver,
        e.notes,
        e.resolved_at,
        json_text(list(e.approvers)),
        e.max_grant,
        e.call_id,
        e.credential_id,
        None if e.edited_args is None else json_text(dict(e.edited_args)),
        e.edited_args_hash,
        e.message,
        e.grant_until,
    )


def escalation_from_row(row: Sequence[Any]) -> Escalation:
    """The Escalation of a row of ``ESCALATION_COLUMNS``."""
    return Escalation(
        row[0],
        row[1],
        row[2],
        row[3],
        orjson.loads(row[4]),
        row[5],
        row[6],
        EscalationStatus(row[7]),
        row[8],
        row[9],
        row[10],
        row[11],
        row[12],
        tuple(orjson.loads(row[13])),
        row[14],
        row[15],
        row[16],
        None if row[17] is None else orjson.loads(row[17]),
        row[18],
        row[19],
        row[20],
    )


def reviewer_row(r: ReviewerRecord) -> tuple[Any, ...]:
    """The values of ``REVIEWER_COLUMNS`` for ``r``."""
    return (
        r.name,
        json_text(list(r.roles)),
        json_text(list(r.groups)),
        json_text(list(r.scope_actions)),
        json_text(list(r.scope_agents)),
        r.token_id,
        r.token_hash,
        r.password_hash,
        r.created,
        r.updated,
    )


def reviewer_from_row(row: Sequence[Any]) -> ReviewerRecord:
    """The ReviewerRecord of a row of ``REVIEWER_COLUMNS``."""
    return ReviewerRecord(
        row[0],
        tuple(orjson.loads(row[1])),
        tuple(orjson.loads(row[2])),
        tuple(orjson.loads(row[3])),
        tuple(orjson.loads(row[4])),
        row[5],
        row[6],
        row[7],
        row[8],
        row[9],
    )


def job_insert_row(job: JobRecord) -> tuple[Any, ...]:
    """The values of a new job's first twelve ``JOB_COLUMNS`` (active, not revoked); ``tokens_issued`` is
    set by the statement (1 for a new job, +1 for a new token of an existing one)."""
    return (
        job.job_id,
        job.agent_id,
        orjson.dumps(list(job.scope)).decode(),
        job.scope_hash,
        job.policy_hash,
        job.token_id,
        job.issued,
        job.expires,
        ACTIVE,
        None,
        None,
        job.created,
    )


def job_from_row(row: Sequence[Any]) -> JobRecord:
    """The JobRecord of a row of ``JOB_COLUMNS``."""
    return JobRecord(
        row[0],
        row[1],
        tuple(orjson.loads(row[2])),
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        row[8],
        row[9],
        row[10],
        row[11],
        int(row[12]),
    )


def identity_from_row(row: Sequence[Any]) -> IdentityRecord:
    """The IdentityRecord of a row of ``IDENTITY_COLUMNS``."""
    return IdentityRecord(row[0], row[1], row[2], row[3], row[4], row[5], int(row[6]), orjson.loads(row[7]))


def key_from_row(row: Sequence[Any]) -> KeyRecord:
    """The KeyRecord of a row of ``KEY_COLUMNS``."""
    return KeyRecord(row[0], row[1], row[2], row[3], row[4], row[5])


def grant_from_row(row: Sequence[Any]) -> GrantRecord:
    """The GrantRecord of a row of ``GRANT_COLUMNS`` (``standing`` is 0/1 in SQLite, a boolean in PostgreSQL)."""
    return GrantRecord(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), row[7])


def policy_version_from_row(row: Sequence[Any]) -> PolicyVersion:
    """The PolicyVersion of a row of ``POLICY_VERSION_COLUMNS``."""
    return PolicyVersion(row[0], orjson.loads(row[1]), row[2], row[3])
