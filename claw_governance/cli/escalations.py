"""``claw-gov escalations list|show|approve|deny``: the reviewer's side, from any process on the machine."""

from __future__ import annotations

import json
from typing import Any

import click

from claw_governance.audit.redaction import DEFAULT_REDACTOR
from claw_governance.cli._common import echo, echo_json, fail, governor_options, open_governor
from claw_governance.hookspecs import hookimpl
from claw_governance.model import Escalation, EscalationStatus
from claw_governance.terminal import safe_text
from claw_governance.timeparse import iso_utc_or_none


def escalation_dict(e: Escalation) -> dict[str, Any]:
    """An escalation as the CLI prints it in JSON."""
    return {
        "id": e.id,
        "agent_id": e.agent_id,
        "action": e.action,
        "status": e.status.value,
        "reason": e.reason,
        "rule": e.rule,
        "context": dict(e.context),
        "args_hash": e.args_hash,
        "created": iso_utc_or_none(e.created),
        "expires": iso_utc_or_none(e.expires),
        "resolver": e.resolver,
        "notes": e.notes,
        "resolved_at": iso_utc_or_none(e.resolved_at),
        "approvers": list(e.approvers),
        "max_grant": e.max_grant,
        "credential_id": e.credential_id,
        "edited_args_hash": e.edited_args_hash,
        "message": e.message,
        "grant_until": iso_utc_or_none(e.grant_until),
        "call_id": e.call_id,
    }


def _open(paths: dict[str, Any]) -> Any:
    return open_governor(**paths, auto_create_identity=False)


@hookimpl
def claw_register_commands(cli: click.Group) -> None:
    """Add the ``escalations`` group."""

    @cli.group()
    def escalations() -> None:
        """Calls held for a human: list, show, approve, deny."""

    @escalations.command("list")
    @click.option(
        "--status",
        type=click.Choice([s.value for s in EscalationStatus] + ["all"]),
        default="pending",
        show_default=True,
        help="Which escalations.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @governor_options
    def list_(status: str, as_json: bool, **paths: Any) -> None:
        """Escalations, oldest first (pending ones by default)."""
        with _open(paths) as gov:
            if status == "pending":
                found = gov.escalations.pending()
            else:
                found = gov.escalations.list_escalations(None if status == "all" else EscalationStatus(status))
        if as_json:
            echo_json([escalation_dict(e) for e in found])
            return
        if not found:
            echo(f"no {status if status != 'all' else ''} escalations".replace("  ", " "))
        for e in found:  # every value escaped on its own: a newline in an action cannot fake a row
            echo(
                f"{e.id}  {e.status.value:<8} {safe_text(e.agent_id)} -> {safe_text(e.action)}  "
                f"expires {iso_utc_or_none(e.expires)}  {safe_text(e.reason)}"
            )

    @escalations.command("show")
    @click.argument("escalation_id")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @governor_options
    def show(escalation_id: str, as_json: bool, **paths: Any) -> None:
        """One escalation with its (redacted) context."""
        with _open(paths) as gov:
            esc = gov.escalations.get(escalation_id)
        if esc is None:
            fail(f"no escalation with id {escalation_id!r}")
        out = DEFAULT_REDACTOR(escalation_dict(esc), echoes=False)
        if as_json:
            echo_json(out)
            return
        for key, value in out.items():
            if value is not None:
                echo(f"{key + ':':<13}{safe_text(value)}")

    def _resolve(
        decision: str,
        escalation_id: str,
        resolver: str | None,
        token: str | None,
        notes: str,
        paths: dict[str, Any],
        as_json: bool,
        **extra: Any,
    ) -> None:
        if not notes.strip():
            fail("--notes must say why (it is recorded in the audit trail)")
        with _open(paths) as gov:
            if token:
                principal = gov.reviewers.authenticate(token)
                if principal is None:
                    fail("the reviewer token is not valid (see `claw-gov reviewer rotate-token`)", 3)
            elif resolver and resolver.strip():
                principal = gov.reviewers.principal(resolver)
            else:
                fail("say who resolves: --token (or CLAW_REVIEWER_TOKEN) or --resolver NAME of a registered reviewer")
            esc = gov.resolve_escalation(escalation_id, decision, notes=notes, resolver=principal, **extra)
        if as_json:
            echo_json(escalation_dict(esc))
        else:
            echo(
                f"{esc.status.value} {esc.id} ({safe_text(esc.agent_id)} -> {safe_text(esc.action)}) by "
                f"{safe_text(esc.resolver)}"
            )

    def _who(fn: Any) -> Any:
        fn = click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)
        fn = click.option("--notes", required=True, help="Why (audited; required).")(fn)
        fn = click.option(
            "--token", envvar="CLAW_REVIEWER_TOKEN", default=None, help="Reviewer API token (or CLAW_REVIEWER_TOKEN)."
        )(fn)
        return click.option(
            "--by",
            "--resolver",
            "resolver",
            envvar="CLAW_RESOLVER",
            default=None,
            help="Name of a registered reviewer (in-process trust: this shell can open the store); "
            "--resolver is the old name.",
        )(fn)

    @escalations.command("approve")
    @click.argument("escalation_id")
    @_who
    @click.option("--args", "args_json", default=None, help="Approve these edited arguments (a JSON object).")
    @click.option(
        "--for",
        "for_duration",
        default=None,
        help="A standing grant for this agent and action for a time (30m, 2h), up to the rule's max_grant.",
    )
    @governor_options
    def approve(
        escalation_id: str,
        resolver: str | None,
        token: str | None,
        notes: str,
        as_json: bool,
        args_json: str | None,
        for_duration: str | None,
        **paths: Any,
    ) -> None:
        """Approve: the identical (or edited) call may run once, or the action for a time with --for."""
        extra: dict[str, Any] = {}
        if args_json is not None:
            try:
                extra["args"] = json.loads(args_json)
            except json.JSONDecodeError as exc:
                fail(f"--args is not JSON: {exc}")
        if for_duration is not None:
            from claw_governance.errors import PolicyError
            from claw_governance.policy.schema import parse_duration

            try:
                extra["for_seconds"] = parse_duration(for_duration, file="--for", line=0, what="--for")
            except PolicyError as exc:
                fail(exc.detail)
        _resolve("approved", escalation_id, resolver, token, notes, paths, as_json, **extra)

    @escalations.command("deny")
    @click.argument("escalation_id")
    @_who
    @click.option("--message", default=None, help="Respond: what the model is told instead of running the tool.")
    @governor_options
    def deny(
        escalation_id: str,
        resolver: str | None,
        token: str | None,
        notes: str,
        as_json: bool,
        message: str | None,
        **paths: Any,
    ) -> None:
        """Deny: the call does not run (with --message, the model is told why)."""
        _resolve(
            "denied",
            escalation_id,
            resolver,
            token,
            notes,
            paths,
            as_json,
            **({"message": message} if message is not None else {}),
        )
