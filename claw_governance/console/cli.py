"""``claw-gov console``: serve the reviewer web console and its JSON API."""

from __future__ import annotations

import errno
import socket
from typing import Any

import click

from claw_governance.hookspecs import hookimpl


@hookimpl
def claw_register_commands(cli: click.Group) -> None:
    """Add the ``console`` command."""
    from claw_governance.cli import fail, governor_options, open_governor

    @cli.command("console")
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
    @click.option("--port", default=8765, show_default=True, type=int, help="Port (0: any free port).")
    @click.option(
        "--public-url",
        default=None,
        help="The URL reviewers open (notification links; https sets Secure cookies). Default: http://HOST:PORT.",
    )
    @click.option(
        "--log-level",
        default="warning",
        show_default=True,
        type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    )
    @governor_options
    def console(host: str, port: int, public_url: str | None, log_level: str, **paths: Any) -> None:
        """Serve the reviewer console (inbox, approvals, agents, audit, policy, report) and /api."""
        try:
            import uvicorn

            from claw_governance.console.app import ConsoleSettings, create_app
        except ImportError as exc:
            fail(f"the console needs the serve extra: pip install 'claw-governance[serve]' ({exc.name} missing)")
        # Bind first, so a port in use is one clear line (uvicorn would log a traceback-like message).
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                fail(f"{host}:{port} is already in use (another console or service?): pick another --port")
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        bound_port = sock.getsockname()[1]
        gov = open_governor(**paths, auto_create_identity=False)
        url = public_url or f"http://{host}:{bound_port}"
        app = create_app(gov, ConsoleSettings(public_url=url))
        if not gov.reviewers.list():
            click.echo("no reviewers yet: add one with `claw-gov reviewer add NAME --password`", err=True)
        click.echo(f"claw-governance console on {url} (policy {gov.policy.hash[:12]})", err=True)
        try:
            config = uvicorn.Config(app, log_level=log_level, access_log=False)
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            sock.close()
            gov.close()
