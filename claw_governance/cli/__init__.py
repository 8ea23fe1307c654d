"""``claw-gov``: the command line. Errors are one line on stderr and a non-zero exit, never a traceback.

One module per command group in this package (``check``, ``policy``, ``audit``, ``identity``, ``escalations``,
``job``), sharing ``_common``; installed adapters add theirs (``openclaw``, ``serve`` ...) through the
``claw_register_commands`` hook. The core never imports this package.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import NoReturn

import click

from claw_governance.cli._common import ErrorGuard, echo, echo_json, fail, governor_options, open_governor
from claw_governance.plugins import ClawPluginManager

__all__ = [
    "BUILTIN_COMMAND_MODULES",
    "build_cli",
    "cli",
    "echo",
    "echo_json",
    "fail",
    "governor_options",
    "main",
    "open_governor",
]

# Modules of this package that add command groups through `claw_register_commands`.
BUILTIN_COMMAND_MODULES = (
    "claw_governance.cli.check",
    "claw_governance.cli.policy",
    "claw_governance.cli.policy_archive",
    "claw_governance.cli.audit",
    "claw_governance.cli.identity",
    "claw_governance.cli.escalations",
    "claw_governance.escalation.reviewer_cli",
    "claw_governance.console.cli",
    "claw_governance.doctor.cli",
    "claw_governance.cli.job",
    "claw_governance.cli.proof",
    "claw_governance.witness.cli",
)


@click.group(cls=ErrorGuard, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="claw-governance")
def cli() -> None:
    """Governance for AI-agent tool calls: policies, audit, identities, escalations."""


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
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(141)
