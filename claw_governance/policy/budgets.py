"""``budgets:``: counts and sums over a sliding window, kept in the state store so they hold fleet-wide.

A call that the governor would allow and that matches a budget is admitted only if its amount (1 for a
count, else the numeric argument named by ``sum``) still fits: the check and the recording are one atomic
``StateStore.add_to_budget``, so two processes (or hosts, on a shared PostgreSQL) can never together pass
what one could not. Over the budget the call gets the budget's ``then`` (deny, or escalate to a human;
an approved escalation is recorded even though it passes the budget: a human decided it).

A call is counted when it is admitted, before it runs, whether or not it then succeeds. Each matching call
costs one state-store transaction; calls matching no budget cost nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from claw_governance.model import Decision, Outcome, Stage, ToolCall
from claw_governance.policy.engine import PolicySet
from claw_governance.policy.schema import Budget
from claw_governance.session import session_of


def _amount(budget: Budget, args: Any) -> float | None:
    """The call's amount for ``budget``: 1 for a count, else its numeric, finite, non-negative argument."""
    if budget.sum_field is None:
        return 1.0
    value = args
    for part in budget.sum_field.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def _period(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{_fmt(seconds)}s"


class BudgetGate:
    """Applies the policy's budgets to a decision, against one state store."""

    def __init__(self, store: Any, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock  # wall-clock seconds: the window is shared with other hosts

    def apply(self, call: ToolCall, policy: PolicySet, decision: Decision) -> Decision:
        """``decision`` (an ALLOW) unchanged when every matching budget admits the call, else a DENY or an
        ESCALATE (``stage=Stage.BUDGET``) naming the budget. A human-approved call (``stage=Stage.ESCALATION``) is
        recorded without the limit."""
        budgets = policy.budgets_for(call.agent_id, call.action)
        if not budgets:
            return decision
        force = decision.stage == "escalation"
        now = self.clock()
        agent = policy.normal_name(call.agent_id)
        admitted: list[tuple[str, float, Budget]] = []
        for budget in budgets:
            amount = _amount(budget, call.args)
            if amount is None:
                self._undo(admitted, now)
                return Decision(
                    Outcome.DENY,
                    f'Budget "{budget.label}" ({budget.source}) needs a number of at least 0 '
                    f"in argument '{budget.sum_field}'; denied",
                    call,
                    decision.rule,
                    policy.hash,
                    stage=Stage.BUDGET,
                )
            subject = agent if budget.scope == "agent" else f"{agent}|{session_of(call)}"
            key = f"budget:{budget.scope}:{subject}:{budget.key}"
            use = self.store.add_to_budget(key, amount, budget.maximum, budget.period_seconds, now, force=force)
            if not use.admitted:
                self._undo(admitted, now)
                what = (
                    f'Budget "{budget.label}" ({budget.source}): {_fmt(use.used)} of {_fmt(budget.maximum)} '
                    f"used by this {budget.scope} in the last {_period(budget.period_seconds)}; this call "
                    f"({_fmt(amount)}) would pass it"
                )
                if budget.then is Outcome.ESCALATE:
                    return Decision(
                        Outcome.ESCALATE,
                        f"{what}: needs human approval",
                        call,
                        decision.rule,
                        policy.hash,
                        stage=Stage.BUDGET,
                    )
                return Decision(Outcome.DENY, f"{what}; denied", call, decision.rule, policy.hash, stage=Stage.BUDGET)
            admitted.append((key, amount, budget))
        return decision

    def _undo(self, admitted: list[tuple[str, float, Budget]], now: float) -> None:
        """Take back what this call recorded in other budgets before one refused it."""
        for key, amount, budget in admitted:
            self.store.add_to_budget(key, -amount, budget.maximum, budget.period_seconds, now, force=True)
