"""Work contracts (seed 003): jobs with scoped, short-lived, revocable tokens bound to a pinned policy."""

from claw_governance.jobs.registry import Job, JobRegistry
from claw_governance.jobs.tokens import JobClaims, JobTokenError, scope_hash

__all__ = ["Job", "JobClaims", "JobRegistry", "JobTokenError", "scope_hash"]
