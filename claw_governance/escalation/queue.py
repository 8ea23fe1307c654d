"""The human-in-the-loop queue: escalations and one-shot approval grants, in the shared state store.

Life of an escalation: ``pending -> approved | denied | expired``. Expiry denies. Escalations live in the
state store, so any process (the agent, ``claw-gov escalations approve`` in a terminal, the console) sees and
resolves the same ones. Only a registered reviewer resolves (``settle``: approvers, scope, separation of
duties, required notes). An approval creates a grant bound to (agent, action, hash of the arguments, or of
the reviewer's edited arguments) that the identical call consumes exactly once; it stays usable for as long
as the escalation's own timeout, counted from the approval. "Approve for" creates a standing grant for the
agent and action instead, until it expires or is revoked.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from claw_governance.config import GovernorConfig
from claw_governance.errors import EscalationError, EscalationInputError, EscalationNotFound
from claw_governance.escalation.edits import args_diff, contains_redaction
from claw_governance.model import AuditEvent, Decision, Escalation, EscalationStatus, Outcome, ToolCall, new_id
from claw_governance.state.base import Resolution, StateStore, check_resolvable

if TYPE_CHECKING:
    from claw_governance.escalation.reviewers import Reviewer, ReviewerRegistry

#: Seconds between two looks at the store while waiting (the first looks come faster).
POLL_INTERVAL = 0.25
_FIRST_POLL = 0.02


class EscalationQueue:
    """Opens, lists, resolves and waits for escalations; consumes grants."""

    def __init__(self, config: GovernorConfig, store: StateStore, audit: Callable[[AuditEvent], Any]) -> None:
        self.config = config
        self.store = store
        self._audit = audit
        self._cond = threading.Condition()  # wakes in-process waiters at once; other processes are polled
        self._closed = False

    def open(
        self, call: ToolCall, decision: Decision, timeout_seconds: float, context: Mapping[str, Any]
    ) -> Escalation:
        """Store a pending escalation for ``call`` (``context``: its redacted arguments) and audit it."""
        if timeout_seconds <= 0:
            raise EscalationError(f"escalation timeout must be positive, not {timeout_seconds}")
        now = time.time()
        rule = decision.rule
        esc = Escalation(
            new_id(),
            call.agent_id,
            call.action,
            call.args_hash,
            dict(context),
            rule.source if rule else None,
            decision.reason,
            EscalationStatus.PENDING,
            now,
            now + timeout_seconds,
            approvers=tuple(rule.approvers) if rule else (),
            max_grant=rule.max_grant_seconds if rule else None,
            call_id=call.call_id,
        )
        self.store.put_escalation(esc)
        try:
            self._audit(
                AuditEvent(
                    "escalation",
                    esc.agent_id,
                    esc.action,
                    context=esc.context,
                    details={
                        "event": "opened",
                        "escalation_id": esc.id,
                        "rule": esc.rule,
                        "reason": esc.reason,
                        "args_hash": esc.args_hash,
                        "created": esc.created,
                        "expires": esc.expires,
                        "call_id": call.call_id,
                    },
                )
            )
        except BaseException:
            # an escalation nobody can find in the audit trail must not be approvable
            self.store.resolve_escalation(
                esc.id, EscalationStatus.DENIED, "claw-governance", "audit trail could not be written", time.time(), 0.0
            )
            raise
        return esc

    def consume_grant(self, call: ToolCall) -> str | None:
        """Use up the approval for exactly this call (agent, action, args hash), if there is one (atomic);
        else an unrevoked standing grant ("approve for N minutes") for the agent and action."""
        now = time.time()
        return self.store.consume_grant(
            call.agent_id, call.action, call.args_hash, now
        ) or self.store.use_standing_grant(call.agent_id, call.action, now)

    def _expire(self, esc: Escalation | None) -> Escalation | None:
        if esc is None or esc.status is not EscalationStatus.PENDING or esc.expires > time.time():
            return esc
        expired = self.store.expire_escalation(esc.id, time.time())
        if expired is None:  # another process got there first
            return self.store.get_escalation(esc.id)
        self._audit(
            AuditEvent(
                "escalation",
                expired.agent_id,
                expired.action,
                details={
                    "event": "expired",
                    "escalation_id": expired.id,
                    "status": "expired",
                    "expires": expired.expires,
                    "rule": expired.rule,
                    "args_hash": expired.args_hash,
                },
            )
        )
        with self._cond:
            self._cond.notify_all()
        return expired

    def get(self, escalation_id: str) -> Escalation | None:
        """One escalation (a pending one whose time is up is marked and returned as expired), or None."""
        return self._expire(self.store.get_escalation(escalation_id))

    def pending(self) -> list[Escalation]:
        """Escalations waiting for a human, oldest first (expired ones are marked expired on the way).

        Empty once the queue is closed (``health_check()`` of a closed governor still answers)."""
        if self._closed:
            return []
        found = [self._expire(e) for e in self.store.list_escalations(EscalationStatus.PENDING)]
        return [e for e in found if e is not None and e.status is EscalationStatus.PENDING]

    def list_escalations(self, status: EscalationStatus | None = None, limit: int = 1000) -> list[Escalation]:
        """Escalations of any (or one) status, oldest first."""
        self.pending()  # apply expiry first
        return self.store.list_escalations(status, limit)

    def settle(
        self,
        escalation_id: str,
        status: EscalationStatus,
        reviewer: Reviewer,
        notes: str,
        reviewers: ReviewerRegistry,
        *,
        args: Mapping[str, Any] | None = None,
        for_seconds: float | None = None,
        message: str | None = None,
        decide: Callable[[ToolCall], Decision] | None = None,
        redact: Callable[[Any, str], Any] | None = None,
    ) -> Escalation:
        """Resolve as an authenticated reviewer, with an edit, a time-bounded grant or a message; audited.

        Raises EscalationNotFound (unknown id), EscalationClosed (resolved or expired), ReviewerForbidden
        (separation of duties, approvers, scope) and EscalationInputError (no notes; an edit that is not a
        mapping, keeps a redacted value or that ``decide`` denies; a grant longer than the rule's ``max_grant``).
        """
        if status not in (EscalationStatus.APPROVED, EscalationStatus.DENIED):
            raise EscalationInputError(f"an escalation can only be approved or denied, not {status.value}")
        if not isinstance(notes, str) or not notes.strip():
            raise EscalationInputError("notes are required: say why (they are recorded in the audit trail)")
        current = self.get(escalation_id)
        if current is None:
            raise EscalationNotFound(f"no escalation with id {escalation_id!r}")
        check_resolvable(current, escalation_id, time.time())
        reviewers.authorize(reviewer, current)
        approving = status is EscalationStatus.APPROVED
        if not approving and (args is not None or for_seconds is not None):
            raise EscalationInputError("edited arguments and approve-for only apply to an approval")
        if approving and message is not None:
            raise EscalationInputError("a message for the model only applies to a denial (respond)")
        if message is not None and (not isinstance(message, str) or not message.strip()):
            raise EscalationInputError("message must be non-empty text")
        if args is not None and for_seconds is not None:
            raise EscalationInputError("approve with edits or approve for a time, not both")
        edited: dict[str, Any] | None = None
        new_hash: str | None = None
        policy_says: str | None = None
        if args is not None:
            if not isinstance(args, Mapping):
                raise EscalationInputError(f"args must be a JSON object, not {type(args).__name__}")
            edited = dict(args)
            if contains_redaction(edited):
                raise EscalationInputError(
                    "the edited arguments still hold a [REDACTED] value: give every value in full"
                )
            probe = ToolCall(current.agent_id, current.action, edited, "review")
            new_hash = probe.args_hash
            if decide is not None:
                verdict = decide(probe)  # deny rules still win over a reviewer's edit
                if verdict.outcome is Outcome.DENY:
                    raise EscalationInputError(f"the edited call is denied by policy: {verdict.reason}")
                policy_says = verdict.outcome.value
        now = time.time()
        standing = for_seconds is not None
        if standing:
            if (
                isinstance(for_seconds, bool)
                or not isinstance(for_seconds, int | float)
                or not math.isfinite(for_seconds)
                or for_seconds <= 0
            ):
                raise EscalationInputError(f"for_seconds must be a positive number, not {for_seconds!r}")
            if current.max_grant is None:
                raise EscalationInputError(
                    f"rule {current.rule or '?'} has no max_grant: it only allows one-shot approvals"
                )
            if for_seconds > current.max_grant:
                raise EscalationInputError(
                    f"for_seconds {for_seconds:g} exceeds the rule's max_grant of {current.max_grant:g} seconds"
                )
            grant_expires = now + float(for_seconds)
        else:
            grant_expires = now + max(current.expires - current.created, 1.0)
        resolution = Resolution(
            status,
            reviewer.name,
            notes.strip(),
            reviewer.credential_id,
            grant_expires,
            new_hash,
            standing,
            edited,
            message.strip() if message else None,
        )
        esc = self.store.settle_escalation(escalation_id, resolution, now)
        details: dict[str, Any] = {
            "escalation_id": esc.id,
            "status": esc.status.value,
            "resolver": reviewer.name,
            "notes": resolution.notes,
            "created": esc.created,
            "resolved_at": esc.resolved_at,
            "rule": esc.rule,
            "args_hash": esc.args_hash,
            "approvers": list(esc.approvers),
        }
        if edited is not None:
            shown = redact(edited, esc.agent_id) if redact is not None else edited
            details["edit"] = {
                "original_args": dict(esc.context),
                "edited_args": shown,
                "diff": args_diff(dict(esc.context), shown),
                "edited_args_hash": new_hash,
                "policy": policy_says,
            }
        if approving:
            details["grant"] = {
                "kind": "standing" if standing else "one-shot",
                "expires": grant_expires,
                "args_hash": "*" if standing else (new_hash or esc.args_hash),
            }
        if resolution.message:
            details["message"] = resolution.message
        # The credential id goes in ``meta`` (governance's own scalars): a key named like a secret would be redacted.
        self._audit(
            AuditEvent(
                "escalation_resolved",
                esc.agent_id,
                esc.action,
                details=details,
                meta={"credential_id": reviewer.credential_id},
            )
        )
        with self._cond:
            self._cond.notify_all()
        return esc

    def revoke_grant(self, escalation_id: str, reviewer: Reviewer, notes: str, reviewers: ReviewerRegistry) -> bool:
        """End an approval's grant early (a standing "approve for" grant above all); audited. True if one was."""
        if not isinstance(notes, str) or not notes.strip():
            raise EscalationInputError("notes are required: say why (they are recorded in the audit trail)")
        esc = self.store.get_escalation(escalation_id)
        if esc is None:
            raise EscalationNotFound(f"no escalation with id {escalation_id!r}")
        reviewers.authorize(reviewer, esc)
        done = self.store.revoke_grant(escalation_id, time.time())
        if done:
            self._audit(
                AuditEvent(
                    "escalation",
                    esc.agent_id,
                    esc.action,
                    details={
                        "event": "grant_revoked",
                        "escalation_id": esc.id,
                        "resolver": reviewer.name,
                        "notes": notes.strip(),
                    },
                    meta={"credential_id": reviewer.credential_id},
                )
            )
        return done

    def wait(self, escalation_id: str, timeout_seconds: float) -> Escalation | None:
        """Block until the escalation is resolved (by any process) or expires, or ``timeout_seconds`` pass.

        Returns the escalation as last seen (still PENDING after a timeout), or None for an unknown id.
        Polls the store: a resolution in another process is seen within ``POLL_INTERVAL`` seconds.
        """
        deadline = time.monotonic() + max(0.0, timeout_seconds)
        delay = _FIRST_POLL
        while True:
            esc = self.get(escalation_id)
            if esc is None or esc.status is not EscalationStatus.PENDING:
                return esc
            left = deadline - time.monotonic()
            if left <= 0:
                return esc
            until_expiry = max(0.0, esc.expires - time.time()) + 0.001
            with self._cond:
                self._cond.wait(min(left, delay, until_expiry))
            delay = min(delay * 2, POLL_INTERVAL)

    def close(self) -> None:
        """Wake any waiter; nothing else to release (the store is closed by the governor)."""
        self._closed = True
        with self._cond:
            self._cond.notify_all()
