"""The built-in ``claw_decide``: the YAML policy in force, plus its per-process rate limits."""

from __future__ import annotations

import threading
import time
from collections import deque

from claw_governance.hookspecs import hookimpl
from claw_governance.model import Decision, Outcome, ToolCall
from claw_governance.policy.engine import PolicySet
from claw_governance.policy.patterns import normalize


class PolicyPlugin:
    """Decides with the compiled policy; an ALLOW over a ``rate_limits`` budget becomes a DENY."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str, str], deque[float]] = {}
        self._lock = threading.Lock()

    @hookimpl
    def claw_decide(self, call: ToolCall, policy: PolicySet) -> Decision:
        decision = policy.decide(call)
        if decision.outcome is not Outcome.ALLOW or not policy.has_rate_limits:
            return decision
        agent_policy = policy.for_agent(call.agent_id)
        if agent_policy is None or not len(agent_policy.rate_limits):
            return decision
        now = time.monotonic()
        with self._lock:
            for limit in agent_policy.rate_limits.lookup(normalize(call.action)):
                window = self._windows.setdefault((policy.hash, normalize(call.agent_id), limit.pattern), deque())
                while window and now - window[0] >= limit.period_seconds:
                    window.popleft()
                if len(window) >= limit.limit:
                    return Decision(Outcome.DENY, f'Rate limit {limit.limit} per {limit.period_seconds}s for '
                                    f'"{limit.pattern}" reached ({limit.source})', call, decision.rule,
                                    policy.hash, stage="rate_limit")
            for limit in agent_policy.rate_limits.lookup(normalize(call.action)):
                self._windows[(policy.hash, normalize(call.agent_id), limit.pattern)].append(now)
        return decision
