"""``claw-gov reviewer add|list|remove|rotate-token|set-password``: who may resolve escalations."""

from __future__ import annotations

import sys
from typing import Any

import click

from claw_governance.hookspecs import hookimpl
from claw_governance.state.base import ReviewerRecord
from claw_governance.timeparse import iso_utc


def reviewer_dict(r: ReviewerRecord) -> dict[str, Any]:
    """A reviewer as the CLI and the console print it (no credential material, only whether one is set)."""
    return {
        "name": r.name,
        "roles": list(r.roles),
        "groups": list(r.groups),
        "scope_actions": list(r.scope_actions),
        "scope_agents": list(r.scope_agents),
        "token_id": r.token_id,
        "web_login": r.password_hash is not None,  # whether a password is set (a key naming it would be redacted)
        "created": iso_utc(r.created),
    }


def _csv(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@hookimpl
def claw_register_commands(cli: click.Group) -> None:
    """Add the ``reviewer`` group."""
    from claw_governance.cli import echo_json, fail, governor_options, open_governor
    from claw_governance.terminal import safe_json

    @cli.group()
    def reviewer() -> None:
        """Reviewers: the humans who may approve or deny escalations (tokens, passwords, scope)."""

    @reviewer.command("add")
    @click.argument("name")
    @click.option(
        "--role",
        "roles",
        multiple=True,
        type=click.Choice(["approver", "admin"]),
        default=("approver",),
        show_default=True,
        help="Role (repeatable).",
    )
    @click.option("--group", "groups", multiple=True, help="Group, matched by policy `approvers:` (repeatable).")
    @click.option("--action", "actions", multiple=True, help="Only escalations of these action patterns.")
    @click.option("--agent", "agents", multiple=True, help="Only escalations of these agent id patterns.")
    @click.option("--password-stdin", is_flag=True, help="Read a console password from standard input.")
    @click.option("--password", "ask_password", is_flag=True, help="Prompt for a console password.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON (with the token).")
    @governor_options
    def add(
        name: str,
        roles: tuple[str, ...],
        groups: tuple[str, ...],
        actions: tuple[str, ...],
        agents: tuple[str, ...],
        password_stdin: bool,
        ask_password: bool,
        as_json: bool,
        **paths: Any,
    ) -> None:
        """Register a reviewer and print its API token (shown this once only)."""
        password = None
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        elif ask_password:
            password = click.prompt("password", hide_input=True, confirmation_prompt=True)
        with open_governor(**paths, auto_create_identity=False) as gov:
            record, token = gov.reviewers.add(
                name, roles=roles, groups=_csv(groups), actions=_csv(actions), agents=_csv(agents), password=password
            )
        if as_json:
            # printed as is: the one output meant to carry a secret (the CLI's echo_json would redact it)
            click.echo(safe_json({**reviewer_dict(record), "token": token}))
            return
        click.echo(f"reviewer {record.name} added ({', '.join(record.roles)})")
        click.echo(f"token (shown once, store it now): {token}")

    @reviewer.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @governor_options
    def list_(as_json: bool, **paths: Any) -> None:
        """Every reviewer (never their credentials)."""
        with open_governor(**paths, auto_create_identity=False) as gov:
            found = [reviewer_dict(r) for r in gov.reviewers.list()]
        if as_json:
            echo_json(found)
            return
        if not found:
            click.echo("no reviewers (add one with `claw-gov reviewer add NAME`)")
        for r in found:
            scope = ",".join(r["scope_actions"] + [f"agent:{a}" for a in r["scope_agents"]]) or "any"
            click.echo(
                f"{r['name']:<24} {','.join(r['roles']):<16} groups={','.join(r['groups']) or '-'} "
                f"scope={scope} password={'yes' if r['password'] else 'no'} token={r['token_id']}"
            )

    @reviewer.command("remove")
    @click.argument("name")
    @governor_options
    def remove(name: str, **paths: Any) -> None:
        """Remove a reviewer: their token and password stop working at once."""
        with open_governor(**paths, auto_create_identity=False) as gov:
            gov.reviewers.remove(name)
        click.echo(f"reviewer {name.strip().lower()} removed")

    @reviewer.command("rotate-token")
    @click.argument("name")
    @governor_options
    def rotate_token(name: str, **paths: Any) -> None:
        """Issue a new API token (the old one stops working at once) and print it once."""
        with open_governor(**paths, auto_create_identity=False) as gov:
            token = gov.reviewers.rotate_token(name)
        click.echo(f"token (shown once, store it now): {token}")

    @reviewer.command("set-password")
    @click.argument("name")
    @click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
    @governor_options
    def set_password(name: str, password_stdin: bool, **paths: Any) -> None:
        """Set the reviewer's console password (argon2id hash stored)."""
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = click.prompt("password", hide_input=True, confirmation_prompt=True)
        if not password:
            fail("the password is empty")
        with open_governor(**paths, auto_create_identity=False) as gov:
            gov.reviewers.set_password(name, password)
        click.echo(f"password of {name.strip().lower()} set")
