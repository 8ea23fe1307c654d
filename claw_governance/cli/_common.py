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


def audit_option(fn: Any) -> Any:
    """``--audit``: the trail folder (``$AUDIT_PATH``, default ``logs/audit``)."""
    return click.option(
        "--audit",
        "audit_path",
        type=click.Path(path_type=Path),
        envvar="AUDIT_PATH",
        default="logs/audit",
        show_default=True,
        help="Audit trail folder.",
    )(fn)


def _identities_option(help_text: str) -> Any:
    return click.option(
        "--identities",
        "identity_path",
        type=click.Path(path_type=Path),
        envvar="IDENTITY_PATH",
        default="identities",
        show_default=True,
        help=help_text,
    )


def _state_option(help_text: str) -> Any:
    return click.option(
        "--state",
        "state_path",
        type=click.Path(path_type=Path),
        envvar="STATE_PATH",
        default=None,
        help=help_text,
    )


def _apply(fn: Any, options: list[Any]) -> Any:
    for option in reversed(options):  # reversed: the first listed is the first in --help
        fn = option(fn)
    return fn


def governor_options(fn: Any) -> Any:
    """The options every command that opens a Governor shares (defaults: the seed's environment)."""
    return _apply(
        fn,
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
            audit_option,
            _identities_option("Identity folder."),
            _state_option("State store folder (default: <identities>/.state)."),
        ],
    )


def trail_options(fn: Any) -> Any:
    """The options of the commands that read a trail without a Governor (``claw-gov audit ...``): the trail
    folder, the state folder that holds the governor's key and checkpoint copies, trusted keys, a fleet sink."""
    return _apply(
        fn,
        [
            audit_option,
            _state_option("State folder: its checkpoint and governor key are used (default <identities>/.state)."),
            _identities_option("Identity folder (locates the state folder)."),
            click.option(
                "--public-key",
                "public_key",
                default=None,
                help="Trust only this Ed25519 public key (PEM file, hex or signed-note verifier key); "
                "several comma-separated (a fleet: one per host).",
            ),
            click.option(
                "--store",
                "store_url",
                default=None,
                envvar="CLAW_AUDIT_STORE",
                help="Read the fleet's trails from this PostgreSQL audit sink (postgresql://...) instead of --audit.",
            ),
        ],
    )


def state_dir(state_path: Path | None, identity_path: Path | None) -> Path | None:
    """The state folder a command means: ``--state``, else ``<identities>/.state`` (as the Governor's config)."""
    return state_path if state_path is not None else (identity_path / ".state" if identity_path else None)


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
