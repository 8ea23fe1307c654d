"""The built-in identity and trust hooks."""

from __future__ import annotations

from typing import Any

from claw_governance.hookspecs import hookimpl
from claw_governance.identity.registry import IdentityRegistry
from claw_governance.identity.trust import TrustLedger
from claw_governance.model import IdentityVerdict, ToolCall
from claw_governance.policy import PolicySet


class IdentityPlugin:
    """Answers ``claw_verify_identity`` from the registry, and reports its sync in ``claw_health``."""

    def __init__(self, registry: IdentityRegistry) -> None:
        self.registry = registry

    @hookimpl
    def claw_verify_identity(self, call: ToolCall, policy: PolicySet) -> IdentityVerdict:
        """Known, not revoked, and (when required) a valid fresh signature."""
        return self.registry.verify(call, policy)

    @hookimpl
    def claw_health(self) -> dict[str, Any]:
        """``{"identity": {...}}``: sync status, counts."""
        return {"identity": self.registry.health()}


class TrustPlugin:
    """Answers ``claw_trust_score`` and ``claw_update_trust`` from the ledger."""

    def __init__(self, ledger: TrustLedger) -> None:
        self.ledger = ledger

    @hookimpl
    def claw_trust_score(self, agent_id: str, policy: PolicySet) -> int:
        """The agent's current score; the call's policy gives its initial score and ceiling."""
        return self.ledger.score(agent_id, policy.trust_settings(agent_id))

    @hookimpl
    def claw_update_trust(self, agent_id: str, delta: int, reason: str, policy: PolicySet) -> int:
        """Apply a delta with the agent's policy ``trust:`` settings."""
        return self.ledger.adjust(agent_id, delta, reason, policy.trust_settings(agent_id))
