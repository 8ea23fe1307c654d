"""Every hook of claw-governance: the one contract between the core, the adapters and third-party plugins.

A plugin is any object (or module) with functions marked ``@hookimpl`` whose names match the specs below.
Install a plugin by declaring it in the entry-point group ``claw_governance``::

    [project.entry-points.claw_governance]
    my_rules = "my_package.plugin"

**Pipeline hooks** are called by ``Governor.before_call`` / ``Governor.after_call`` for every tool call, in
this order: ``claw_verify_identity`` -> ``claw_trust_score`` -> ``claw_decide`` -> (on ESCALATE)
``claw_consume_grant`` / ``claw_open_escalation`` -> ``claw_notify_escalation`` -> ``claw_record_audit``;
after the tool ran: ``claw_update_trust`` -> ``claw_record_audit``. The governor calls them through its
compiled table (``claw_governance.pipeline``): a step that only a built-in plugin implements is a direct
call of that plugin's method, any other step (and every step while ``pm.add_hookcall_monitoring`` or
``pm.enable_tracing`` is on) the real hook call, with the same answers either way. ``None`` always means
"no opinion", and a step where every implementation abstains denies the call.

Fail closed: an exception raised by any implementation of a pipeline hook before the tool runs turns the
decision into DENY (the reason names the hook). Nothing a plugin does can make an error an ALLOW. The only
exception is ``claw_notify_escalation``: a failing notifier is reported in ``health_check()`` but never changes
the decision (the escalation is already stored; a notifier outage must not block or open anything).

**Integration hooks** let adapters and tools attach to the governor: ``claw_enable`` / ``claw_disable``,
``claw_startup`` / ``claw_shutdown``, ``claw_health``, ``claw_register_commands``.

Hooks are always called with keyword arguments; an implementation may accept any subset of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from claw_governance.governor import Governor
    from claw_governance.model import (
        AuditEvent,
        Decision,
        Escalation,
        IdentityVerdict,
        ToolCall,
    )
    from claw_governance.policy import PolicySet

PROJECT = "claw_governance"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --------------------------------------------------------------------------------------------- pipeline


@hookspec(firstresult=True)
def claw_verify_identity(call: ToolCall, policy: PolicySet) -> IdentityVerdict | None:
    """Decide whether ``call.agent_id`` may act at all, before any policy is consulted.

    Called by ``Governor.before_call`` first, for every call. The built-in implementation checks that the
    identity exists and is not revoked and, when signatures are required, that ``call.signature`` is a
    valid, fresh, never-seen signature by the agent's key.

    Return an ``IdentityVerdict``: ``ok=False`` denies the call with ``reason`` (and, with
    ``trust_penalty=True``, costs the agent the bad-signature trust penalty). ``None`` means "no opinion" and
    passes to the next implementation; if every implementation returns ``None`` the call is denied.
    First result wins.
    """


@hookspec(firstresult=True)
def claw_trust_score(agent_id: str, policy: PolicySet) -> int | None:
    """Return the agent's current trust score (0-100+), or ``None`` if this plugin does not keep scores.

    Called by ``Governor.before_call`` after identity, and by ``Governor.trust_score``. ``policy`` is the
    policy set the call is decided under (its ``trust:`` settings give an agent's initial score and ceiling;
    ``policy.trust_settings(agent_id)``). A score below the policy's ``trust.min_score`` denies the call. If no
    implementation answers, the score counts as 0 (deny). First result wins.
    """


@hookspec
def claw_decide(call: ToolCall, policy: PolicySet) -> Decision | None:
    """Give a policy decision for ``call``, or ``None`` to abstain.

    Called by ``Governor.before_call`` once identity and trust passed. ``policy`` is the compiled policy set
    in force (the built-in implementation evaluates it). Every implementation is called and the answers are
    combined exactly like rules inside one policy: any DENY wins, then any ESCALATE, then any ALLOW; when
    every implementation abstains the call is denied. So a plugin can add a veto or an approval step, or
    allow an action nothing else mentions, but it can never overturn another plugin's DENY.
    """


@hookspec(firstresult=True)
def claw_consume_grant(call: ToolCall, decision: Decision) -> str | None:
    """Use up an approved grant that covers ``call``; return the approved escalation's id, or ``None``.

    Called by ``Governor.before_call`` when the decision is ESCALATE, before opening a new escalation. A grant
    is bound to (agent, action, hash of the arguments) and may be consumed exactly once, even by concurrent
    processes. Returning an id turns the decision into ALLOW. First result wins.
    """


@hookspec(firstresult=True)
def claw_open_escalation(call: ToolCall, decision: Decision, timeout_seconds: float) -> Escalation | None:
    """Store a new pending escalation for ``call`` and return it.

    Called by ``Governor.before_call`` when the decision is ESCALATE and no grant covered the call. The
    escalation must be durable (other processes resolve it). Returning ``None`` from every implementation,
    or raising, denies the call: a call cannot be held for a human if no human can find it.
    First result wins.
    """


@hookspec
def claw_notify_escalation(escalation: Escalation) -> None:
    """Tell humans that ``escalation`` waits for them (console, webhook, chat ...).

    Called by ``Governor.before_call`` after an escalation was stored. Every implementation is called; errors
    are caught, reported in ``health_check()`` and never change the decision. Implementations must not block
    for long: queue slow work.
    """


@hookspec
def claw_record_audit(event: AuditEvent) -> Any:
    """Write ``event`` to the audit trail. The return value (e.g. the entry's seq) is informational.

    Called by the governor for every decision (before the tool may run), every action outcome, escalation,
    resolution, trust change, identity change and policy reload. Every implementation is called. If any
    implementation raises while recording a decision, that decision becomes DENY: a call that cannot be
    audited does not run.
    """


@hookspec(firstresult=True)
def claw_update_trust(agent_id: str, delta: int, reason: str, policy: PolicySet) -> int | None:
    """Apply ``delta`` to the agent's trust score; return the new score (``None``: not kept here).

    Called by ``Governor.after_call`` (+success / -failure deltas from the agent's policy) and by
    ``before_call`` for a bad signature. Implementations must not lose concurrent updates, must audit the
    change and must revoke the identity when the score reaches 0. First result wins.
    """


# ------------------------------------------------------------------------------------------ integration


@hookspec
def claw_startup(governor: Governor) -> None:
    """Called once by ``Governor.__init__`` after every plugin is registered and policies are loaded."""


@hookspec
def claw_shutdown(governor: Governor) -> None:
    """Called once by ``Governor.close``, before the audit trail and state store are closed."""


@hookspec
def claw_enable(governor: Governor) -> None:
    """Switch on framework-wide interception (called by ``Governor.enable()``).

    Adapters implement this to govern every tool call of their framework in this process without changes to
    agent code (LangChain: a global callback handler; CrewAI: global tool-call hooks). Must be idempotent.
    """


@hookspec
def claw_disable(governor: Governor) -> None:
    """Undo ``claw_enable`` (called by ``Governor.disable()`` and by ``Governor.close()`` after enable)."""


@hookspec
def claw_health(governor: Governor) -> dict[str, Any] | None:
    """Return ``{"component": {"status": "ok"|"degraded"|"down", ...}}`` for ``Governor.health_check()``."""


@hookspec
def claw_register_commands(cli: click.Group) -> None:
    """Add sub-commands to ``claw-gov`` (called once when the CLI starts)."""


__all__ = [
    "PROJECT",
    "claw_consume_grant",
    "claw_decide",
    "claw_disable",
    "claw_enable",
    "claw_health",
    "claw_notify_escalation",
    "claw_open_escalation",
    "claw_record_audit",
    "claw_register_commands",
    "claw_shutdown",
    "claw_startup",
    "claw_trust_score",
    "claw_update_trust",
    "claw_verify_identity",
    "hookimpl",
    "hookspec",
]
