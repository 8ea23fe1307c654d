"""Cedar through ``cedarpy``: decisions only (Cedar has no audit trail, identity or escalation).

Policies are parsed once (``PolicySet.from_str``) and the (empty) entity set once (``Entities``), then every
request is ``is_authorized(request, policy_set, entities)`` with dict-form entity ids, the fastest documented
path. Cedar answers Allow or Deny; our ESCALATE is a Deny for Cedar (the conditional rule is a ``forbid``).
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from workloads import AGENT_ID, Query, Workload, cedar_policies


def available() -> str | None:
    """The installed cedarpy version, or None when it cannot be imported."""
    try:
        import cedarpy  # noqa: F401
    except Exception:
        return None
    try:
        return importlib.metadata.version("cedarpy")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class CedarDecisions:
    """``cedarpy.is_authorized`` over the workload's policy, pre-parsed."""

    label = "Cedar (cedarpy) is_authorized"

    def __init__(self, workload: Workload) -> None:
        import cedarpy

        self._is_authorized = cedarpy.is_authorized
        self.policy_text = cedar_policies(workload.rules)
        self._policies = cedarpy.PolicySet.from_str(self.policy_text)
        self._entities = cedarpy.Entities.from_json_str("[]")
        self._principal = {"type": "Agent", "id": AGENT_ID}
        self._requests: dict[tuple[str, tuple[tuple[str, Any], ...]], dict[str, Any]] = {}

    def request(self, query: Query) -> dict[str, Any]:
        """The Cedar request for a query: action entity = the action name; ``context`` = name + arguments."""
        key = (query.action, tuple(sorted(query.args.items())))
        hit = self._requests.get(key)
        if hit is None:
            hit = self._requests[key] = {
                "principal": self._principal,
                "action": {"type": "Action", "id": query.action},
                "resource": {"type": "Tool", "id": query.action},
                "context": {"name": query.action, **query.args},
            }
        return hit

    def decide(self, query: Query) -> str:
        """allow / deny."""
        return "allow" if self.call(query).allowed else "deny"

    def call(self, query: Query) -> Any:
        """The timed operation: one authorization decision."""
        return self._is_authorized(self.request(query), self._policies, self._entities)

    def close(self) -> None:
        """Nothing to release."""
