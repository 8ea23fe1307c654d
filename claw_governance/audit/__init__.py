"""The audit trail: every decision and action, hash-chained. (Placeholder: a single-file chain.)"""

from claw_governance.audit.trail import AuditTrail, VerifyReport, open_trail

__all__ = ["AuditTrail", "VerifyReport", "open_trail"]
