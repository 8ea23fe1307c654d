"""The StateStore interface and the values it stores.

Everything that several processes of one deployment must share lives behind this one interface:
identities (public keys and revocation status), trust scores, replay nonces, escalations, approval grants
and audit checkpoints. Callers never see SQL: an implementation for another database (PostgreSQL) only has
to implement :class:`StateStore` with the same atomicity guarantees, stated on each method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from claw_governance.model import Escalation, EscalationStatus

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

    def resolve_escalation(self, escalation_id: str, status: EscalationStatus, resolver: str, notes: str,
                           now: float, grant_expires: float) -> Escalation:
        """Approve or deny a pending, unexpired escalation; an approval creates its one-shot grant.

        Atomic: of two concurrent resolutions exactly one succeeds. Raises ``EscalationError`` for an
        unknown id, one already resolved, or one whose time is up (which it marks EXPIRED).
        """

    def consume_grant(self, agent_id: str, action: str, args_hash: str, now: float) -> str | None:
        """Use up one unexpired grant for exactly (agent, action, args hash); its escalation id, or None.

        Atomic across processes: one grant is consumed at most once.
        """

    def close(self) -> None:
        """Release connections."""

