"""``claw-gov doctor``: run the pre-deployment checklist; exit 1 on any red flag; ``--json`` for CI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from claw_governance.cli import governor_options
from claw_governance.hookspecs import hookimpl

_MARK = {"red": "RED  ", "amber": "AMBER", "ok": "ok   "}


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON (for CI).")
@click.option(
    "--retention-floor",
    type=int,
    default=None,
    envvar="CLAW_RETENTION_FLOOR_DAYS",
    help="Compliance floor for audit retention, in days (default 2555: 7 years).",
)
@click.option(
    "--key-rotation-days",
    type=int,
    default=None,
    envvar="CLAW_KEY_ROTATION_DAYS",
    help="Key rotation schedule, in days (default 90: quarterly).",
)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The bridge token file to check (else $CLAW_BRIDGE_TOKEN).",
)
@click.option("--only-problems", is_flag=True, help="Leave out the checks that passed.")
@governor_options
def doctor_cmd(
    as_json: bool,
    retention_floor: int | None,
    key_rotation_days: int | None,
    token_file: Path | None,
    only_problems: bool,
    **paths: Any,
) -> None:
    """Check this deployment against the production checklist. Exit 0: no red flag; 1: at least one."""
    from claw_governance.cli import fail
    from claw_governance.config import config_from_env
    from claw_governance.doctor.checks import RED, load_context, run_checks

    overrides: dict[str, Any] = {k: v for k, v in paths.items() if v is not None}
    config = config_from_env(**overrides)
    token = os.environ.get("CLAW_BRIDGE_TOKEN") or None
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            fail(f"{token_file}: cannot read the bridge token ({exc.strerror or exc})")
    options: dict[str, Any] = {
        "bridge_token": token,
        "witness_url": os.environ.get("AUDIT_WITNESS_URL") or getattr(config, "witness_url", None),
    }
    if retention_floor is not None:
        options["retention_floor_days"] = retention_floor
    if key_rotation_days is not None:
        options["key_rotation_days"] = key_rotation_days
    ctx = load_context(config, **options)
    try:
        findings = run_checks(ctx)
    finally:
        if ctx.store is not None:
            ctx.store.close()
    shown = [f for f in findings if not (only_problems and f.severity == "ok")]
    red = sum(1 for f in findings if f.severity == RED)
    amber = sum(1 for f in findings if f.severity == "amber")
    if as_json:
        click.echo(
            json.dumps({"ok": red == 0, "red": red, "amber": amber, "findings": [f.as_dict() for f in shown]}, indent=2)
        )
    else:
        for f in shown:
            click.echo(f"{_MARK.get(f.severity, f.severity)} {f.id}  {f.message}")
            if f.fix and f.severity != "ok":
                click.echo(f"             fix: {f.fix}")
        click.echo(f"{red} red flag(s), {amber} warning(s)")
    sys.exit(1 if red else 0)


@hookimpl
def claw_register_commands(cli: click.Group) -> None:
    """Add ``claw-gov doctor``."""
    cli.add_command(doctor_cmd)
