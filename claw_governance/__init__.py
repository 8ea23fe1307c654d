"""claw-governance: identity, policy, trust, tamper-evident audit and human escalation for agent tool calls.

from claw_governance import Governor
with Governor(policy_path="policies", audit_path="logs/audit", identity_path="identities") as gov:
    decision = gov.agent("customer-service-agent").check("read:customer_data", {"customerId": 1})
"""

from claw_governance.config import GovernorConfig
from claw_governance.errors import (
    AuditError,
    ClawGovernanceError,
    ConfigError,
    EscalationError,
    EscalationRequired,
    IdentityError,
    PolicyError,
    ToolCallDenied,
)
from claw_governance.escalation.reviewers import Reviewer
from claw_governance.governor import AgentHandle, Governor
from claw_governance.hookspecs import hookimpl
from claw_governance.model import (
    AuditEvent,
    CallOutcome,
    Decision,
    Escalation,
    EscalationStatus,
    ExecutionResult,
    IdentityVerdict,
    Outcome,
    RuleRef,
    Signature,
    Stage,
    ToolCall,
)

__version__ = "0.1.0"

__all__ = [
    "AgentHandle",
    "AuditError",
    "AuditEvent",
    "CallOutcome",
    "ClawGovernanceError",
    "ConfigError",
    "Decision",
    "Escalation",
    "EscalationError",
    "EscalationRequired",
    "EscalationStatus",
    "ExecutionResult",
    "Governor",
    "GovernorConfig",
    "IdentityError",
    "IdentityVerdict",
    "Outcome",
    "PolicyError",
    "Reviewer",
    "RuleRef",
    "Signature",
    "Stage",
    "ToolCall",
    "ToolCallDenied",
    "hookimpl",
]
