"""``claw-gov``: the command line. Errors are one line on stderr and a non-zero exit, never a traceback.

Sub-command groups of the built-in packages (audit, identity, escalations) and of installed adapters
(e.g. ``openclaw``, ``serve``) are added through the ``claw_register_commands`` hook.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from claw_governance.errors import ClawGovernanceError
from claw_governance.plugins import ClawPluginManager

# Modules of this package that add command groups through `claw_register_commands`.
BUILTIN_COMMAND_MODULES = (
    "claw_governance.policy.cli",
    "claw_governance.audit.cli",
    "claw_governance.identity.cli",
    "claw_governance.escalation.cli",
    "claw_governance.doctor.cli",
)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on one line and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class _Group(click.Group):
    """Turns any ClawGovernanceError (and any unexpected error) into one line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except ClawGovernanceError as exc:
            fail(str(exc))
        except (OSError, ValueError) as exc:
            fail(f"{type(exc).__name__}: {exc}")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="claw-governance")
def cli() -> None:
    """Governance for AI-agent tool calls: policies, audit, identities, escalations."""


def governor_options(fn: Any) -> Any:
    """The options every command that opens a Governor shares (defaults: the seed's environment)."""
    for option in reversed([
        click.option("--policies", "policy_path", type=click.Path(path_type=Path), envvar="POLICY_PATH",
                     default="policies", show_default=True, help="Policy file or folder."),
        click.option("--audit", "audit_path", type=click.Path(path_type=Path), envvar="AUDIT_PATH",
                     default="logs/audit", show_default=True, help="Audit trail folder."),
        click.option("--identities", "identity_path", type=click.Path(path_type=Path), envvar="IDENTITY_PATH",
                     default="identities", show_default=True, help="Identity folder."),
        click.option("--state", "state_path", type=click.Path(path_type=Path), envvar="STATE_PATH",
                     default=None, help="State store folder (default: <identities>/.state)."),
    ]):
        fn = option(fn)
    return fn


def open_governor(policy_path: Path | None, audit_path: Path, identity_path: Path, state_path: Path | None,
                  **settings: Any) -> Any:
    """A Governor for a CLI command (entry-point plugins loaded, adapters not enabled)."""
    from claw_governance.config import config_from_env
    from claw_governance.governor import Governor

    overrides: dict[str, Any] = {"audit_path": audit_path, "identity_path": identity_path, **settings}
    overrides["policy_path"] = policy_path if policy_path is not None and policy_path.exists() else None
    if state_path is not None:
        overrides["state_path"] = state_path
    return Governor(config=config_from_env(**overrides))


def echo_json(value: Any) -> None:
    """Print a value as indented JSON."""
    click.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


@cli.command()
@click.option("--agent", "agent_id", required=True, help="Agent id.")
@click.option("--action", required=True, help="Action name, e.g. read:customer_data.")
@click.option("--context", "context_json", default="{}", help="Arguments as a JSON object.")
@click.option("--dry-run", is_flag=True, help="Policy only: no identity, trust, escalation or audit entry.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@governor_options
def check(agent_id: str, action: str, context_json: str, dry_run: bool, as_json: bool, **paths: Any) -> None:
    """Ask the governor about one call and print the decision and why. Exit 0 ALLOW, 1 otherwise."""
    try:
        args = json.loads(context_json)
    except json.JSONDecodeError as exc:
        fail(f"--context is not valid JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(args, dict):
        fail("--context must be a JSON object, e.g. '{\"amount\": 600}'")
    if not paths["policy_path"].exists():
        fail(f"{paths['policy_path']}: policy path does not exist")
    with open_governor(**paths) as gov:
        handle = gov.agent(agent_id)
        decision = handle.evaluate(action, args) if dry_run else handle.check(action, args)
    if as_json:
        echo_json({"outcome": decision.outcome.value, "allowed": decision.allowed, "reason": decision.reason,
                   "rule": decision.rule.source if decision.rule else None, "policy_hash": decision.policy_hash,
                   "escalation_id": decision.escalation_id})
    else:
        click.echo(f"{decision.outcome.value.upper()}: {decision.reason}")
        if decision.escalation_id:
            click.echo(f"escalation: {decision.escalation_id}")
        click.echo(f"policy: {decision.policy_hash[:16]}")
    sys.exit(0 if decision.allowed else 1)


def build_cli() -> click.Group:
    """The CLI with every built-in and installed command group."""
    pm = ClawPluginManager()
    for name in BUILTIN_COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        pm.register(module, name=name)
    pm.load_entry_points()
    pm.hook.claw_register_commands(cli=cli)
    for failure in pm.load_failures:
        click.echo(f"warning: plugin {failure.name} skipped: {failure.error}", err=True)
    return cli


def main() -> None:
    """Console entry point."""
    build_cli()(prog_name="claw-gov")
