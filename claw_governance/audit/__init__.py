"""The audit trail: hash-chained JSON Lines segments, signed checkpoints, retention, redaction, reports.

See docs/audit.md for the format and what verification detects.
"""

from claw_governance.audit.trail import AuditTrail, RetentionRule, open_trail
from claw_governance.audit.verify import VerifyReport

__all__ = ["AuditTrail", "RetentionRule", "VerifyReport", "open_trail"]
