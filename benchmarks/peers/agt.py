"""The Microsoft Agent Governance Toolkit's ``govern()`` (PyPI ``agent-governance-toolkit-core``).

``govern(fn, policy=yaml, audit=...)`` returns a ``GovernedCallable``; calling it evaluates the YAML policy
(``PolicyEngine`` with ``deny_overrides``), writes an in-memory Merkle-chained audit entry when ``audit=True``
and runs ``fn`` only when allowed. We pass ``on_deny`` so that a denial returns the decision instead of raising
(exceptions would add their own cost), and an approval handler that records ``require_approval`` and rejects
(the documented fail-safe, like AGT's ``AutoRejectApproval``, without its log line).

The call shape: ``governed(action={"type": ..., "verb": ..., "resource": ...}, **args)``. AGT builds its
evaluation context from the keyword arguments, wrapping scalars as ``{"value": x}``; hence the policy's
``amount.value > 500`` (see ``workloads.agt_condition``).
"""

from __future__ import annotations

import importlib.metadata
import warnings
from typing import Any

from workloads import Query, Workload, agt_policy_yaml

_RAN = object()


def available() -> str | None:
    """The installed AGT version, or None when ``agentmesh.governance`` cannot be imported."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import agentmesh.governance  # noqa: F401
    except Exception:
        return None
    try:
        return importlib.metadata.version("agent-governance-toolkit-core")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _tool(**kwargs: Any) -> object:
    return _RAN


class AGTGovern:
    """One ``govern()``-wrapped no-op tool over the workload's policy."""

    def __init__(self, workload: Workload, *, audit: bool) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from agentmesh.governance import govern
            from agentmesh.governance.approval import ApprovalDecision, ApprovalHandler, ApprovalRequest

        outer = self

        class _RecordAndReject(ApprovalHandler):  # type: ignore[misc]
            def request_approval(self, request: ApprovalRequest) -> ApprovalDecision:
                outer.approvals += 1
                return ApprovalDecision(approved=False, approver="benchmark", reason="not approved")

        self.label = f"AGT govern() audit {'on' if audit else 'off'}"
        self.approvals = 0
        self._audit = audit
        self._governed = govern(
            _tool,
            policy=agt_policy_yaml(workload.rules),
            audit=audit,
            on_deny=lambda decision: decision,
            approval_handler=_RecordAndReject(),
        )
        self._actions: dict[str, dict[str, str]] = {}

    def _action(self, query: Query) -> dict[str, str]:
        hit = self._actions.get(query.action)
        if hit is None:
            hit = self._actions[query.action] = {"type": query.action, "verb": query.verb, "resource": query.resource}
        return hit

    def decide(self, query: Query) -> str:
        """allow / deny / escalate (``require_approval`` reached the approval handler)."""
        before = self.approvals
        result = self._governed(action=dict(self._action(query)), **query.args)
        if self.approvals != before:
            return "escalate"
        return "allow" if result is _RAN else "deny"

    def call(self, query: Query) -> object:
        """The timed operation: one governed call (policy, audit entry when on, the tool on allow)."""
        return self._governed(action=dict(self._action(query)), **query.args)

    def audit_entries(self) -> int:
        """How many entries AGT's in-memory audit log holds (0 when audit is off)."""
        log = getattr(self._governed, "_audit", None)
        chain = getattr(log, "_chain", None)
        return len(getattr(chain, "_entries", ())) if chain is not None else 0

    def close(self) -> None:
        """Nothing to release (AGT's audit log lives in memory)."""
