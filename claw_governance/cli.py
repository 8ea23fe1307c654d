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
        except BrokenPipeError:  # `claw-gov ... | head`: the reader left; end quietly (see main)
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
@click.option("--record", is_flag=True,
              help="Run the full pipeline: identity (created if missing), trust, escalation (opened, or an "
                   "approval's grant consumed) and an audit entry.")
@click.option("--dry-run", is_flag=True, hidden=True, help="The default (kept for old scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@governor_options
def check(agent_id: str, action: str, context_json: str, record: bool, dry_run: bool, as_json: bool,
          **paths: Any) -> None:
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
        echo_json({"outcome": decision.outcome.value, "allowed": decision.allowed, "reason": decision.reason,
                   "rule": decision.rule.source if decision.rule else None, "policy_hash": decision.policy_hash,
                   "escalation_id": decision.escalation_id, "recorded": record})
    else:
        click.echo(f"{decision.outcome.value.upper()}: {decision.reason}")
        if decision.escalation_id:
            click.echo(f"escalation: {decision.escalation_id}")
        click.echo(f"policy: {decision.policy_hash[:16]}" + ("" if record else " (policy only; --record runs "
                                                                               "the full pipeline)"))
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
    try:
        build_cli()(prog_name="claw-gov")
    except BrokenPipeError:
        _closed_pipe()


def _closed_pipe() -> NoReturn:
    """The reader of our output went away (``| head``): stop without a traceback or an error line.

    Python would still try to flush stdout at exit and report that failure; pointing stdout at /dev/null
    first (the recipe of the ``signal`` module's documentation) keeps the exit quiet. Exit 141 = 128+SIGPIPE,
    what a shell reports for a producer stopped by a closed pipe.
    """
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(141)
