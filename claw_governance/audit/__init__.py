"""The audit trail: hash-chained JSON Lines segments that are the leaves of an RFC 6962 Merkle tree, C2SP
signed-note checkpoints (cosigned by witnesses), retention, redaction, reports, proofs.

See docs/audit.md for the format, the threat model and what verification detects.
"""

from claw_governance.audit.trail import AuditTrail, RetentionRule, TrailRefused, TrailTampered, open_trail
from claw_governance.audit.verify import VerifyReport, verify_entries

__all__ = [
    "AuditTrail",
    "RetentionRule",
    "TrailRefused",
    "TrailTampered",
    "VerifyReport",
    "open_trail",
    "verify_entries",
]
