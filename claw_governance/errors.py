"""Errors a user can act on. Each message is one line and names the file:line or field at fault."""

from __future__ import annotations


class ClawGovernanceError(Exception):
    """Base class of every error this package raises on purpose."""


class PolicyError(ClawGovernanceError):
    """A policy file cannot be used. ``str(err)`` is ``"file:line: what is wrong"``."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        self.file = file
        self.line = line
        self.detail = message
        where = f"{file}:{line}: " if file and line else (f"{file}: " if file else "")
        super().__init__(f"{where}{message}")


class ConfigError(ClawGovernanceError):
    """A governor setting (argument or environment variable) is invalid; the message names it."""


class EscalationError(ClawGovernanceError):
    """An escalation cannot be resolved as asked (unknown id, already resolved, expired)."""


class IdentityError(ClawGovernanceError):
    """An identity cannot be created, loaded or used (missing, tampered, wrong passphrase ...)."""


class AuditError(ClawGovernanceError):
    """The audit trail cannot be written or read."""


class ToolCallDenied(ClawGovernanceError):
    """Raised by adapters (when configured to raise) for a call the governor denied."""

    def __init__(self, reason: str, decision: object | None = None) -> None:
        self.reason = reason
        self.decision = decision
        super().__init__(reason)


class EscalationRequired(ClawGovernanceError):
    """Raised by adapters for a call that waits for a human; ``escalation_id`` is what to approve."""

    def __init__(self, reason: str, escalation_id: str | None, decision: object | None = None) -> None:
        self.reason = reason
        self.escalation_id = escalation_id
        self.decision = decision
        super().__init__(f"{reason} (escalation {escalation_id})")


class EscalationNotFound(EscalationError):
    """No escalation has this id (the console answers 404)."""


class EscalationClosed(EscalationError):
    """The escalation is already resolved or has expired (the console answers 409)."""


class EscalationInputError(EscalationError):
    """A resolution is malformed: missing notes, bad edited arguments, a grant longer than allowed (422)."""


class ReviewerForbidden(EscalationError):
    """This principal may not resolve this escalation: not a reviewer, an agent, outside the rule's
    ``approvers`` or the reviewer's scope (the console answers 403)."""


class AuthenticationError(ClawGovernanceError):
    """No valid reviewer credential was presented (the console answers 401)."""
