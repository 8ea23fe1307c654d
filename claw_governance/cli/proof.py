"""``claw-gov proof export --job ID DIR | verify DIR``: the proof bundle of one job (see jobs/proof.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from claw_governance.cli._common import echo_json, fail, governor_options, open_governor
from claw_governance.hookspecs import hookimpl


@click.group()
def proof() -> None:
    """Per-job proof bundles: export one run's evidence; verify it offline with keys you trust."""


@proof.command("export")
@click.option("--job", "job_id", required=True, help="The job id.")
@click.argument("destination", type=click.Path(path_type=Path))
@governor_options
def export_cmd(job_id: str, destination: Path, **paths: Any) -> None:
    """Write the proof bundle of JOB into DESTINATION (an empty or new folder)."""
    from claw_governance.jobs.proof import export_job_proof
    from claw_governance.state import open_state_store

    # Opening and closing a governor brings the trail to a checkpoint that covers every entry so far.
    with open_governor(**paths) as gov:
        audit_path = gov.audit.path
        key = gov.audit.key.public
        config = gov.config
    if audit_path is None:
        fail("the governor has no audit folder (--audit)")
    store = open_state_store(config)
    try:
        manifest = export_job_proof(audit_path, store, key, job_id, destination)
    finally:
        store.close()
    click.echo(
        f"proof bundle of job {job_id}: {manifest['entries']} entries, checkpoint of tree size "
        f"{manifest['tree_size']}, written to {destination}"
    )
    click.echo(f"verify it: claw-gov proof verify {destination} --public-key <governor key>")


@proof.command("verify")
@click.argument("directory", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "--public-key",
    "public_key",
    required=True,
    help="The governor's public key (PEM file, PEM text, hex, or a signed-note verifier key).",
)
@click.option("--witness", "witness_specs", multiple=True, help="A trusted witness's verifier key.")
@click.option(
    "--min-witnesses",
    type=int,
    default=0,
    show_default=True,
    help="How many of the given witnesses must have cosigned the checkpoint.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_cmd(
    directory: Path, public_key: str, witness_specs: tuple[str, ...], min_witnesses: int, as_json: bool
) -> None:
    """Check a proof bundle offline. Exit 0 VALID, 1 INVALID (every problem named), 2 bad input."""
    from claw_governance.audit.trust import load_public_key, parse_witness
    from claw_governance.jobs.proof import verify_job_proof

    if min_witnesses > len(witness_specs):
        fail(f"--min-witnesses {min_witnesses} needs at least that many --witness keys")
    report = verify_job_proof(
        directory,
        [load_public_key(public_key)],
        witnesses=[parse_witness(w).witness for w in witness_specs],
        min_witnesses=min_witnesses,
    )
    if as_json:
        echo_json(report.as_dict())
    else:
        verdict = "VALID" if report.valid else "INVALID"
        click.echo(f"{verdict}: proof bundle of job {report.job_id}, {report.entries} entries")
        for problem in report.problems:
            click.echo(f"  - {problem}")
    sys.exit(0 if report.valid else 1)


@hookimpl
def claw_register_commands(cli: click.Group) -> None:
    """Add the ``proof`` group."""
    cli.add_command(proof)
