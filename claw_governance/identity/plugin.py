"""The built-in identity and trust hooks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from claw_governance.hookspecs import hookimpl
from claw_governance.identity.registry import IdentityRegistry
from claw_governance.identity.trust import TrustLedger
from claw_governance.model import IdentityVerdict, ToolCall
from claw_governance.policy import PolicySet, TrustSettings


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

    def __init__(self, ledger: TrustLedger, settings_for: Callable[[str], TrustSettings] | None = None) -> None:
        self.ledger = ledger
        # The policy in force gives each agent's initial score and ceiling (the hook itself carries no policy).
        self._settings_for = settings_for

    @hookimpl
    def claw_trust_score(self, agent_id: str) -> int:
        """The agent's current score."""
        settings = self._settings_for(agent_id) if self._settings_for is not None else None
        return self.ledger.score(agent_id, settings)

    @hookimpl
    def claw_update_trust(self, agent_id: str, delta: int, reason: str, policy: PolicySet) -> int:
        """Apply a delta with the agent's policy ``trust:`` settings."""
        return self.ledger.adjust(agent_id, delta, reason, policy.trust_settings(agent_id))
