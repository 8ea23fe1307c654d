"""The built-in ``claw_record_audit``: append to the governor's audit trail (and apply policy retention)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from claw_governance.audit.trail import AuditTrail, RetentionRule
from claw_governance.errors import AuditError
from claw_governance.hookspecs import hookimpl
from claw_governance.model import AuditEvent

if TYPE_CHECKING:
    from claw_governance.governor import Governor


def retention_rule(governor: Governor) -> RetentionRule:
    """The retention in force: the governor's default, or each agent's policy ``audit.retention``."""
    policy = governor.policy
    per_agent: dict[str, int] = {}
    for agent in policy.agents:
        found = policy.for_agent(agent)
        days = getattr(found, "audit_retention_days", None)
        if isinstance(days, int):
            per_agent[agent] = days
    wildcard = policy.for_agent("\x00no-such-agent\x00")  # the "*" policy, if any
    days = getattr(wildcard, "audit_retention_days", None)
    if isinstance(days, int):
        per_agent["*"] = days
    return RetentionRule(governor.config.audit_retention_days, per_agent)


class AuditPlugin:
    """Writes every event to one AuditTrail; a failed write raises (so the decision becomes DENY)."""

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    @hookimpl
    def claw_record_audit(self, event: AuditEvent) -> Any:
        """Append ``event``; raises AuditError when it cannot be written."""
        # An AuditEvent is a NamedTuple in append_parts' field order: unpacked in C, no attribute reads (this
        # is every governed call's path, twice; ``AuditTrail.append`` is the same write for other callers).
        return self.trail.append_parts(*event)

    @hookimpl
    def claw_startup(self, governor: Governor) -> None:
        """Apply per-policy retention once the policies are loaded."""
        try:
            self.trail.set_retention(retention_rule(governor))
            self.trail.apply_retention()
        except AuditError:
            pass  # shows in the trail's health; retention is retried at the next rotation
