"""The built-in ``claw_record_audit``: append to the governor's audit trail."""

from __future__ import annotations

from typing import Any

from claw_governance.audit.trail import AuditTrail
from claw_governance.hookspecs import hookimpl
from claw_governance.model import AuditEvent


class AuditPlugin:
    """Writes every event to one AuditTrail; a failed write raises (so the decision becomes DENY)."""

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    @hookimpl
    def claw_record_audit(self, event: AuditEvent) -> Any:
        return self.trail.append(event)
