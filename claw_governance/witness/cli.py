"""``claw-gov witness``: run a C2SP tlog-witness, print its verifier key."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from claw_governance.cli._common import ErrorGuard, fail
from claw_governance.hookspecs import hookimpl


@click.group("witness", cls=ErrorGuard)
def witness_group() -> None:
    """Run a transparency-log witness (c2sp.org/tlog-witness) for other machines' audit trails."""


@witness_group.command("serve")
@click.option("--listen", default="127.0.0.1:0", show_default=True, help="host:port (port 0: any free port).")
@click.option(
    "--state",
    "state_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for the witness key and the latest checkpoint of every log.",
)
@click.option("--name", default="claw-governance.local/witness", show_default=True, help="Cosigner name.")
@click.option(
    "--log-key",
    "log_keys",
    multiple=True,
    required=True,
    help="A log's public key (PEM file, 64 hex digits or signed-note verifier key). Repeatable.",
)
@click.option("--origin-prefix", default="", help="Accept only origins starting with this.")
def serve_cmd(listen: str, state_dir: Path, name: str, log_keys: tuple[str, ...], origin_prefix: str) -> None:
    """Serve add-checkpoint. Prints the URL and the verifier key, then runs until killed."""
    from claw_governance.audit.keys import SigningKey
    from claw_governance.audit.note import ALG_COSIGNATURE_V1, vkey
    from claw_governance.audit.trust import load_public_key
    from claw_governance.errors import ClawGovernanceError
    from claw_governance.witness.server import WitnessState, make_server

    host, _, port = listen.rpartition(":")
    try:
        keys = [load_public_key(k) for k in log_keys]
        key = SigningKey.load_or_create(state_dir)
    except (ClawGovernanceError, OSError, ValueError) as exc:
        fail(str(exc))
    state = WitnessState(state_dir / "logs", key, name, keys, origin_prefix)
    try:
        server = make_server(state, host or "127.0.0.1", int(port or 0))
    except (OSError, ValueError) as exc:
        fail(f"cannot listen on {listen}: {exc}")
    bound_host, bound_port = server.server_address[:2]
    click.echo(f"listening on http://{bound_host!s}:{bound_port}")
    click.echo(f"verifier key: {vkey(name, key.public, ALG_COSIGNATURE_V1)}", nl=True)
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@witness_group.command("public-key")
@click.option("--state", "state_dir", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--name", default="claw-governance.local/witness", show_default=True)
def public_key_cmd(state_dir: Path, name: str) -> None:
    """Print the witness's verifier key (creating its key if missing)."""
    from claw_governance.audit.keys import SigningKey
    from claw_governance.audit.note import ALG_COSIGNATURE_V1, vkey

    click.echo(vkey(name, SigningKey.load_or_create(state_dir).public, ALG_COSIGNATURE_V1))


@hookimpl
def claw_register_commands(cli: click.Group) -> None:
    """Add ``claw-gov witness``."""
    cli.add_command(witness_group)
