"""``claw-gov escalations list|show|approve|deny``: the reviewer's side, from any process on the machine."""

from __future__ import annotations

import time
from typing import Any

import click

from claw_governance.hookspecs import hookimpl
from claw_governance.model import Escalation, EscalationStatus


def _iso(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def escalation_dict(e: Escalation) -> dict[str, Any]:
    """An escalation as the CLI prints it in JSON."""
    return {"id": e.id, "agent_id": e.agent_id, "action": e.action, "status": e.status.value,
            "reason": e.reason, "rule": e.rule, "context": dict(e.context), "args_hash": e.args_hash,
            "created": _iso(e.created), "expires": _iso(e.expires), "resolver": e.resolver, "notes": e.notes,
            "resolved_at": _iso(e.resolved_at)}


def _open(paths: dict[str, Any]) -> Any:
    from claw_governance.cli import open_governor

    return open_governor(**paths, auto_create_identity=False)


@hookimpl
def claw_register_commands(cli: click.Group) -> None:
    """Add the ``escalations`` group."""
    from claw_governance.cli import echo_json, fail, governor_options

    @cli.group()
    def escalations() -> None:
        """Calls held for a human: list, show, approve, deny."""

    @escalations.command("list")
    @click.option("--status", type=click.Choice([s.value for s in EscalationStatus] + ["all"]), default="pending",
                  show_default=True, help="Which escalations.")
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
            click.echo(f"no {status if status != 'all' else ''} escalations".replace("  ", " "))
        for e in found:
            click.echo(f"{e.id}  {e.status.value:<8} {e.agent_id} -> {e.action}  expires {_iso(e.expires)}  "
                       f"{e.reason}")

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
        out = escalation_dict(esc)
        if as_json:
            echo_json(out)
            return
        for key, value in out.items():
            if value is not None:
                click.echo(f"{key + ':':<13}{value}")

    def _resolve(decision: str, escalation_id: str, resolver: str, notes: str, paths: dict[str, Any],
                 as_json: bool) -> None:
        if not resolver.strip():
            fail("--by must name who resolves (e.g. alice@example.com)")
        if not notes.strip():
            fail("--notes must say why (it is recorded in the audit trail)")
        with _open(paths) as gov:
            esc = gov.resolve_escalation(escalation_id, decision, notes=notes, resolver=resolver)
        if as_json:
            echo_json(escalation_dict(esc))
        else:
            click.echo(f"{esc.status.value} {esc.id} ({esc.agent_id} -> {esc.action}) by {esc.resolver}")

    @escalations.command("approve")
    @click.argument("escalation_id")
    @click.option("--by", "--resolver", "resolver", required=True, envvar="CLAW_RESOLVER",
                  help="Who approves (audited); --resolver is the old name.")
    @click.option("--notes", required=True, help="Why (audited).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @governor_options
    def approve(escalation_id: str, resolver: str, notes: str, as_json: bool, **paths: Any) -> None:
        """Approve: the identical call may run once."""
        _resolve("approved", escalation_id, resolver, notes, paths, as_json)

    @escalations.command("deny")
    @click.argument("escalation_id")
    @click.option("--by", "--resolver", "resolver", required=True, envvar="CLAW_RESOLVER",
                  help="Who denies (audited); --resolver is the old name.")
    @click.option("--notes", required=True, help="Why (audited).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @governor_options
    def deny(escalation_id: str, resolver: str, notes: str, as_json: bool, **paths: Any) -> None:
        """Deny: the call does not run."""
        _resolve("denied", escalation_id, resolver, notes, paths, as_json)
