"""The built-in ``claw_decide``: the YAML policy in force, plus its per-process rate limits.

Windows slide: a limit of N per period admits a call when fewer than N counted events happened in the last
period seconds. ``rate_limits`` count the calls the policy allows (``actions_per_minute`` is ``"*"``);
``escalations_per_hour`` counts escalations opened (see ``escalation_limited``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from claw_governance.hookspecs import hookimpl
from claw_governance.model import Decision, Outcome, ToolCall
from claw_governance.policy.engine import PolicySet
from claw_governance.policy.patterns import normalize


class PolicyPlugin:
    """Decides with the compiled policy; an ALLOW over a ``rate_limits`` budget becomes a DENY."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._windows: dict[tuple[str, str, str], deque[float]] = {}
        self._lock = threading.Lock()
        self.clock = clock  # seconds, monotonic; replaceable so tests can move time without sleeping

    def escalation_limited(self, call: ToolCall, decision: Decision, policy: PolicySet) -> Decision | None:
        """Called just before an escalation is opened for ``call``: a DENY when the agent's
        ``escalations_per_hour`` is used up, else None (and the escalation is counted)."""
        agent_policy = policy.for_agent(call.agent_id)
        if agent_policy is None or not agent_policy.escalation_limits:
            return None
        now = self.clock()
        agent = normalize(call.agent_id)
        with self._lock:
            windows = []
            for limit in agent_policy.escalation_limits:
                window = self._windows.setdefault((policy.hash, agent, f"escalations@{limit.source}"), deque())
                while window and now - window[0] >= limit.period_seconds:
                    window.popleft()
                if len(window) >= limit.limit:
                    return Decision(Outcome.DENY, f"Escalation limit {limit.limit} per {limit.period_seconds}s "
                                    f"reached ({limit.source}); not escalated: {decision.reason}", call,
                                    decision.rule, policy.hash, stage="rate_limit")
                windows.append(window)
            for window in windows:
                window.append(now)
        return None

    @hookimpl
    def claw_decide(self, call: ToolCall, policy: PolicySet) -> Decision:
        decision = policy.decide(call)
        if decision.outcome is not Outcome.ALLOW or not policy.has_rate_limits:
            return decision
        agent_policy = policy.for_agent(call.agent_id)
        if agent_policy is None or not len(agent_policy.rate_limits):
            return decision
        now = self.clock()
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
