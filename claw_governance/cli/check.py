"""``claw-gov check``: ask the governor about one call and print the decision and why."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from claw_governance.cli._common import echo, echo_json, fail, governor_options, open_governor
from claw_governance.hookspecs import hookimpl
from claw_governance.terminal import safe_text


@click.command()
@click.option("--agent", "agent_id", required=True, help="Agent id.")
@click.option("--action", required=True, help="Action name, e.g. read:customer_data.")
@click.option("--context", "context_json", default="{}", help="Arguments as a JSON object.")
@click.option(
    "--record",
    is_flag=True,
    help="Run the full pipeline: identity (created if missing), trust, escalation (opened, or an "
    "approval's grant consumed) and an audit entry.",
)
@click.option("--dry-run", is_flag=True, hidden=True, help="The default (kept for old scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@governor_options
def check(
    agent_id: str, action: str, context_json: str, record: bool, dry_run: bool, as_json: bool, **paths: Any
) -> None:
    """What the policy decides for one call, and why. Exit 0 ALLOW, 1 otherwise.

    Side-effect free by default: only the policy files are read (no identity, trust, escalation, grant or
    audit entry). --record asks the governor instead, as an agent's call would.
    """
    if record and dry_run:
        fail("--record and --dry-run contradict each other")
    try:
        args = json.loads(context_json)
    except json.JSONDecodeError as exc:
        fail(f"--context is not valid JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(args, dict):
        fail("--context must be a JSON object, e.g. '{\"amount\": 600}'")
    if not paths["policy_path"].exists():
        fail(f"{paths['policy_path']}: policy path does not exist")
    if record:
        with open_governor(**paths) as gov:
            decision = gov.agent(agent_id).check(action, args)
    else:
        from claw_governance.model import ToolCall
        from claw_governance.policy import load_policy_set

        decision = load_policy_set(paths["policy_path"]).decide(ToolCall(agent_id, action, args, "cli"))
    if as_json:
        echo_json(
            {
                "outcome": decision.outcome.value,
                "allowed": decision.allowed,
                "reason": decision.reason,
                "rule": decision.rule.source if decision.rule else None,
                "policy_hash": decision.policy_hash,
                "escalation_id": decision.escalation_id,
                "recorded": record,
            }
        )
    else:
        echo(f"{decision.outcome.value.upper()}: {safe_text(decision.reason)}")
        if decision.escalation_id:
            echo(f"escalation: {decision.escalation_id}")
        echo(
            f"policy: {decision.policy_hash[:16]}"
            + ("" if record else " (policy only; --record runs the full pipeline)")
        )
    sys.exit(0 if decision.allowed else 1)


@hookimpl
def claw_register_commands(cli: click.Group) -> None:
    """Add ``check``."""
    cli.add_command(check)
