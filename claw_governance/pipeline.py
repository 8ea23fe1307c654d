"""The compiled pipeline: every step of a tool call's path as one table of bound callables.

``build_pipeline`` turns the plugin manager's registrations into a :class:`Pipeline`, one entry per pipeline
hook of ``hookspecs.py``. An entry is either

- the built-in plugin's own bound method (``IdentityPlugin.claw_verify_identity`` ...) when that plugin is
  the step's only implementation: the usual case, a plain call with no dispatch; or
- the step's real pluggy hook call, ``pm.hook.NAME(**kwargs)``, with the spec's semantics (firstresult
  where the spec says so), when any other plugin implements the step, or when hook-call monitoring is on
  (``pm.add_hookcall_monitoring`` / ``pm.enable_tracing``): then every step is a hook call, so that tracing
  tools see all of them.

Both kinds of entry take the same positional arguments and answer the same way (``None`` abstains, see
``combine_decisions`` for ``claw_decide``), so the governor has one path whichever entry a step holds. The
governor rebuilds the table whenever the plugin set or the monitoring changes
(``ClawPluginManager.add_listener``); a call reads it once per step, and the table itself never changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from claw_governance.model import Outcome

if TYPE_CHECKING:
    from pluggy import HookCaller

    from claw_governance.model import AuditEvent, Decision, Escalation, IdentityVerdict, ToolCall
    from claw_governance.plugins import ClawPluginManager
    from claw_governance.policy import PolicySet

#: The pipeline hooks, in the order a call meets them (``claw_update_trust`` runs after the tool, and for a
#: bad signature).
PIPELINE_HOOKS = (
    "claw_verify_identity",
    "claw_trust_score",
    "claw_decide",
    "claw_consume_grant",
    "claw_open_escalation",
    "claw_notify_escalation",
    "claw_record_audit",
    "claw_update_trust",
)


class Pipeline(NamedTuple):
    """One compiled table of the pipeline's steps (immutable; rebuilt, never edited, when plugins change)."""

    verify_identity: Callable[[ToolCall, PolicySet], IdentityVerdict | None]
    trust_score: Callable[[str, PolicySet], int | None]
    decide: Callable[[ToolCall, PolicySet], Decision | None]
    consume_grant: Callable[[ToolCall, Decision], str | None]
    open_escalation: Callable[[ToolCall, Decision, float], Escalation | None]
    notify_escalation: Callable[[Escalation], object]
    record_audit: Callable[[AuditEvent], object]
    update_trust: Callable[[str, int, str, PolicySet], int | None]
    #: The hooks whose entry is the real pluggy hook call (the rest call a built-in plugin directly).
    hooked: frozenset[str]


_PRECEDENCE = {Outcome.DENY: 0, Outcome.ESCALATE: 1, Outcome.ALLOW: 2}


def _precedence(decision: Decision) -> int:
    # Explicit answers rank deny > escalate > allow; a default deny (no rule matched) ranks below them all,
    # so a plugin may allow what the policy does not mention but can never overturn a rule's deny.
    return 3 if decision.stage == "default" else _PRECEDENCE[decision.outcome]


def combine_decisions(answers: list[Decision]) -> Decision | None:
    """The answers of every ``claw_decide`` implementation as one decision; ``None`` when all abstained."""
    if not answers:
        return None
    return answers[0] if len(answers) == 1 else min(answers, key=_precedence)


# The hook-call entries: positional arguments (the table's calling convention) to pluggy's keywords.


def _verify_identity(hook: HookCaller) -> Callable[[ToolCall, PolicySet], IdentityVerdict | None]:
    def claw_verify_identity(call: ToolCall, policy: PolicySet) -> IdentityVerdict | None:
        verdict: IdentityVerdict | None = hook(call=call, policy=policy)
        return verdict

    return claw_verify_identity


def _trust_score(hook: HookCaller) -> Callable[[str, PolicySet], int | None]:
    def claw_trust_score(agent_id: str, policy: PolicySet) -> int | None:
        score: int | None = hook(agent_id=agent_id, policy=policy)
        return score

    return claw_trust_score


def _decide(hook: HookCaller) -> Callable[[ToolCall, PolicySet], Decision | None]:
    def claw_decide(call: ToolCall, policy: PolicySet) -> Decision | None:
        return combine_decisions(hook(call=call, policy=policy))

    return claw_decide


def _consume_grant(hook: HookCaller) -> Callable[[ToolCall, Decision], str | None]:
    def claw_consume_grant(call: ToolCall, decision: Decision) -> str | None:
        granted: str | None = hook(call=call, decision=decision)
        return granted

    return claw_consume_grant


def _open_escalation(hook: HookCaller) -> Callable[[ToolCall, Decision, float], Escalation | None]:
    def claw_open_escalation(call: ToolCall, decision: Decision, timeout_seconds: float) -> Escalation | None:
        escalation: Escalation | None = hook(call=call, decision=decision, timeout_seconds=timeout_seconds)
        return escalation

    return claw_open_escalation


def _notify_escalation(hook: HookCaller) -> Callable[[Escalation], object]:
    def claw_notify_escalation(escalation: Escalation) -> object:
        return hook(escalation=escalation)

    return claw_notify_escalation


def _record_audit(hook: HookCaller) -> Callable[[AuditEvent], object]:
    def claw_record_audit(event: AuditEvent) -> object:
        return hook(event=event)

    return claw_record_audit


def _update_trust(hook: HookCaller) -> Callable[[str, int, str, PolicySet], int | None]:
    def claw_update_trust(agent_id: str, delta: int, reason: str, policy: PolicySet) -> int | None:
        score: int | None = hook(agent_id=agent_id, delta=delta, reason=reason, policy=policy)
        return score

    return claw_update_trust


_HOOK_ENTRIES: dict[str, Callable[[HookCaller], Callable[..., Any]]] = {
    "claw_verify_identity": _verify_identity,
    "claw_trust_score": _trust_score,
    "claw_decide": _decide,
    "claw_consume_grant": _consume_grant,
    "claw_open_escalation": _open_escalation,
    "claw_notify_escalation": _notify_escalation,
    "claw_record_audit": _record_audit,
    "claw_update_trust": _update_trust,
}


def _is_only(hook: HookCaller, builtin: Callable[..., Any]) -> bool:
    """Whether ``builtin`` (a bound ``@hookimpl`` method) is the hook's one plain implementation."""
    impls = hook.get_hookimpls()
    if len(impls) != 1:
        return False
    impl = impls[0]
    return not impl.hookwrapper and not impl.wrapper and impl.plugin is getattr(builtin, "__self__", None)


def build_pipeline(pm: ClawPluginManager, builtins: Mapping[str, Callable[..., Any]]) -> Pipeline:
    """The table for ``pm``'s registrations now. ``builtins`` maps a hook name to the built-in plugin's bound
    implementation of it: that method is the entry while its plugin is the hook's only implementation and no
    hook-call monitoring is on; every other entry is the real hook call."""
    monitored = pm.monitored
    entries: dict[str, Callable[..., Any]] = {}
    hooked: set[str] = set()
    for name in PIPELINE_HOOKS:
        hook = getattr(pm.hook, name)
        builtin = builtins.get(name)
        if builtin is not None and not monitored and _is_only(hook, builtin):
            entries[name] = builtin
        else:
            entries[name] = _HOOK_ENTRIES[name](hook)
            hooked.add(name)
    return Pipeline(
        verify_identity=entries["claw_verify_identity"],
        trust_score=entries["claw_trust_score"],
        decide=entries["claw_decide"],
        consume_grant=entries["claw_consume_grant"],
        open_escalation=entries["claw_open_escalation"],
        notify_escalation=entries["claw_notify_escalation"],
        record_audit=entries["claw_record_audit"],
        update_trust=entries["claw_update_trust"],
        hooked=frozenset(hooked),
    )
