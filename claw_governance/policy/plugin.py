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
from typing import Any

from claw_governance.hookspecs import hookimpl
from claw_governance.model import Decision, Outcome, Stage, ToolCall
from claw_governance.policy.engine import PolicySet
from claw_governance.policy.patterns import normalize


class PolicyPlugin:
    """Decides with the compiled policy; an ALLOW over a ``rate_limits`` budget becomes a DENY."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._windows: dict[tuple[str, str, str], deque[float]] = {}
        self._lock = threading.Lock()
        self.clock = clock  # seconds, monotonic; replaceable so tests can move time without sleeping
        # With a state store here (GovernorConfig.fleet_rate_limits), limits are counted in it instead: exact
        # across every process and host sharing it (StateStore.add_to_budget), on the wall clock.
        self.store: Any = None
        self.wall_clock: Callable[[], float] = time.time

    def _shared_admit(self, keys: list[tuple[str, int, int]]) -> int | None:
        """Count one call under each ``(key, limit, period)`` in the state store, all or none; the index of
        the first limit that refused it, or None when every one admitted it."""
        now = self.wall_clock()
        admitted: list[tuple[str, int, int]] = []
        for index, (key, limit, period) in enumerate(keys):
            if not self.store.add_to_budget(key, 1.0, float(limit), float(period), now).admitted:
                for done_key, done_limit, done_period in admitted:  # take back what this call already counted
                    self.store.add_to_budget(done_key, -1.0, float(done_limit), float(done_period), now, force=True)
                return index
            admitted.append((key, limit, period))
        return None

    def escalation_limited(self, call: ToolCall, decision: Decision, policy: PolicySet) -> Decision | None:
        """Called just before an escalation is opened for ``call``: a DENY when the agent's
        ``escalations_per_hour`` is used up, else None (and the escalation is counted)."""
        agent_policy = policy.for_agent(call.agent_id)
        if agent_policy is None or not agent_policy.escalation_limits:
            return None
        agent = normalize(call.agent_id)
        if self.store is not None:
            limits = list(agent_policy.escalation_limits)
            refused = self._shared_admit(
                [(f"rate:escalations:{agent}:{el.source}", el.limit, el.period_seconds) for el in limits]
            )
            if refused is None:
                return None
            limit = limits[refused]
            return Decision(
                Outcome.DENY,
                f"Escalation limit {limit.limit} per {limit.period_seconds}s reached "
                f"({limit.source}, fleet-wide); not escalated: {decision.reason}",
                call,
                decision.rule,
                policy.hash,
                stage=Stage.RATE_LIMIT,
            )
        now = self.clock()
        with self._lock:
            windows = []
            for limit in agent_policy.escalation_limits:
                window = self._windows.setdefault((policy.hash, agent, f"escalations@{limit.source}"), deque())
                while window and now - window[0] >= limit.period_seconds:
                    window.popleft()
                if len(window) >= limit.limit:
                    return Decision(
                        Outcome.DENY,
                        f"Escalation limit {limit.limit} per {limit.period_seconds}s "
                        f"reached ({limit.source}); not escalated: {decision.reason}",
                        call,
                        decision.rule,
                        policy.hash,
                        stage=Stage.RATE_LIMIT,
                    )
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
        if self.store is not None:
            found = sorted(agent_policy.rate_limits.lookup(normalize(call.action)), key=lambda rl: rl.source)
            agent = normalize(call.agent_id)
            refused = self._shared_admit(
                [(f"rate:{agent}:{rl.pattern}:{rl.period_seconds}", rl.limit, rl.period_seconds) for rl in found]
            )
            if refused is None:
                return decision
            rl = found[refused]
            return Decision(
                Outcome.DENY,
                f'Rate limit {rl.limit} per {rl.period_seconds}s for "{rl.pattern}" reached fleet-wide ({rl.source})',
                call,
                decision.rule,
                policy.hash,
                stage=Stage.RATE_LIMIT,
            )
        now = self.clock()
        with self._lock:
            for limit in agent_policy.rate_limits.lookup(normalize(call.action)):
                window = self._windows.setdefault((policy.hash, normalize(call.agent_id), limit.pattern), deque())
                while window and now - window[0] >= limit.period_seconds:
                    window.popleft()
                if len(window) >= limit.limit:
                    return Decision(
                        Outcome.DENY,
                        f"Rate limit {limit.limit} per {limit.period_seconds}s for "
                        f'"{limit.pattern}" reached ({limit.source})',
                        call,
                        decision.rule,
                        policy.hash,
                        stage=Stage.RATE_LIMIT,
                    )
            for limit in agent_policy.rate_limits.lookup(normalize(call.action)):
                self._windows[(policy.hash, normalize(call.agent_id), limit.pattern)].append(now)
        return decision
