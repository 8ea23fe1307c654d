"""What every ``claw-gov`` command group shares: the one-line error guard, ``fail``, the governor options,
opening a governor, and JSON output. Adapters' command groups use these too (re-exported by
``claw_governance.cli``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from claw_governance.errors import ClawGovernanceError
from claw_governance.terminal import safe_json, safe_text


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on one line (secrets redacted, control characters escaped), exit ``code``."""
    from claw_governance.audit.redaction import redact_text

    click.echo(f"error: {safe_text(redact_text(str(message)))}", err=True)
    sys.exit(code)


def echo(text: Any = "", *, err: bool = False) -> None:
    """Print one line of human-readable output: secrets redacted, control and format characters escaped
    (newlines the command itself puts between lines are kept). Every command group prints through this."""
    from claw_governance.audit.redaction import redact_text

    click.echo(safe_text(redact_text(str(text)), keep_newlines=True), err=err)


class ErrorGuard(click.Group):
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
        except Exception as exc:  # a bug of ours: still one line and a non-zero exit, never a traceback
            fail(f"internal error ({type(exc).__name__}: {exc}); please report it", code=3)


def governor_options(fn: Any) -> Any:
    """The options every command that opens a Governor shares (defaults: the seed's environment)."""
    for option in reversed(
        [
            click.option(
                "--policies",
                "policy_path",
                type=click.Path(path_type=Path),
                envvar="POLICY_PATH",
                default="policies",
                show_default=True,
                help="Policy file or folder.",
            ),
            click.option(
                "--audit",
                "audit_path",
                type=click.Path(path_type=Path),
                envvar="AUDIT_PATH",
                default="logs/audit",
                show_default=True,
                help="Audit trail folder.",
            ),
            click.option(
                "--identities",
                "identity_path",
                type=click.Path(path_type=Path),
                envvar="IDENTITY_PATH",
                default="identities",
                show_default=True,
                help="Identity folder.",
            ),
            click.option(
                "--state",
                "state_path",
                type=click.Path(path_type=Path),
                envvar="STATE_PATH",
                default=None,
                help="State store folder (default: <identities>/.state).",
            ),
        ]
    ):
        fn = option(fn)
    return fn


def open_governor(
    policy_path: Path | None, audit_path: Path, identity_path: Path, state_path: Path | None, **settings: Any
) -> Any:
    """A Governor for a CLI command (entry-point plugins loaded, adapters not enabled)."""
    from claw_governance.config import config_from_env
    from claw_governance.governor import Governor

    overrides: dict[str, Any] = {"audit_path": audit_path, "identity_path": identity_path, **settings}
    overrides["policy_path"] = policy_path if policy_path is not None and policy_path.exists() else None
    if state_path is not None:
        overrides["state_path"] = state_path
    return Governor(config=config_from_env(**overrides))


def echo_json(value: Any) -> None:
    """Print a value as indented JSON, redacted, with C1 controls and format characters escaped."""
    from claw_governance.audit.redaction import DEFAULT_REDACTOR

    click.echo(safe_json(DEFAULT_REDACTOR(value, echoes=False)))
