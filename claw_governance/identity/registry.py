"""A minimal identity registry (to be replaced by keys, signatures and revocation in issue 4)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from claw_governance.config import GovernorConfig
from claw_governance.model import AuditEvent, IdentityVerdict, ToolCall
from claw_governance.policy import PolicySet


class IdentityRegistry:
    """Knows which agents exist and which are revoked."""

    def __init__(self, config: GovernorConfig, store: object, audit: Callable[[AuditEvent], object]) -> None:
        self.config = config
        self._audit = audit
        self._known: set[str] = set()
        self._revoked: set[str] = set()
        self._lock = threading.Lock()

    def ensure(self, agent_id: str) -> None:
        """Create the agent's identity if it does not exist (when auto-creation is on)."""
        with self._lock:
            if agent_id in self._known or not self.config.auto_create_identity:
                return
            self._known.add(agent_id)
        self._audit(AuditEvent("identity", agent_id, details={"event": "created"}))

    def verify(self, call: ToolCall, policy: PolicySet) -> IdentityVerdict:
        """Known and not revoked; signatures are not supported by this placeholder (so required -> deny)."""
        if call.agent_id not in self._known:
            return IdentityVerdict(False, f'Unknown agent "{call.agent_id}": no identity')
        if call.agent_id in self._revoked:
            return IdentityVerdict(False, f'Identity of "{call.agent_id}" is revoked')
        if self.config.require_signature:
            return IdentityVerdict(False, "Signature required but signature checking is not available",
                                   trust_penalty=call.signature is not None)
        return IdentityVerdict(True)

    def revoke(self, agent_id: str, reason: str) -> None:
        """Revoke: every call of the agent is denied until reinstated."""
        with self._lock:
            self._revoked.add(agent_id)
        self._audit(AuditEvent("identity", agent_id, details={"event": "revoked", "reason": reason}))

    def reinstate(self, agent_id: str) -> None:
        """Undo a revocation."""
        with self._lock:
            self._revoked.discard(agent_id)
        self._audit(AuditEvent("identity", agent_id, details={"event": "reinstated"}))

    def close(self) -> None:
        """Nothing to release."""
