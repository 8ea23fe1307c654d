"""The adapter's claw-governance plugin: ``claw-gov mcp proxy``.

Registered through the entry point ``mcp = "claw_governance_mcp.plugin"`` (group ``claw_governance``).
The ``mcp`` SDK is imported only when the proxy starts, so loading this plugin costs every other
``claw-gov`` command nothing. Errors are one line and a non-zero exit.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

import click
from claw_governance.cli import fail, governor_options, open_governor
from claw_governance.errors import ClawGovernanceError
from claw_governance.hookspecs import hookimpl


@click.group("mcp")
def mcp_group() -> None:
    """Govern MCP servers: every tools/call decided, audited, escalated."""


@mcp_group.command("proxy", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--agent", "agent_id", required=True, help="Agent id every tool call is governed as.")
@click.option(
    "--name",
    "server_name",
    default=None,
    help="Server name in the action mcp:<server>/<tool> (default: the name the server reports; "
    "pin it so the server cannot choose its rules).",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0),
    default=None,
    help="On ESCALATE, wait this many seconds for a reviewer before answering.",
)
@click.option("--http", "http", is_flag=True, help="Serve streamable HTTP on 127.0.0.1 instead of stdio.")
@click.option(
    "--port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port for --http (0: any free port; the URL is printed on stderr).",
)
@click.option("--path", "http_path", default="/mcp", show_default=True, help="URL path for --http.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@governor_options
def proxy_command(
    agent_id: str,
    server_name: str | None,
    wait_seconds: float | None,
    http: bool,
    port: int,
    http_path: str,
    command: tuple[str, ...],
    **paths: Any,
) -> None:
    """Serve MCP in front of the server COMMAND (after `--`), governing every tool call.

    Example: claw-gov mcp proxy --agent desktop --name files -- npx -y @modelcontextprotocol/server-filesystem /tmp
    """
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        fail("give the MCP server's command after --, e.g. `claw-gov mcp proxy --agent a -- python server.py`")
    if shutil.which(command[0]) is None and not Path(command[0]).exists():
        fail(f"{command[0]}: command not found")
    if not agent_id.strip():
        fail("--agent must not be empty")
    if not paths["policy_path"].exists():
        fail(f"{paths['policy_path']}: policy path does not exist")
    from claw_governance_mcp.proxy import ProxySettings, bind, run, serve_http, serve_stdio

    settings = ProxySettings(
        agent_id=agent_id,
        command=command[0],
        args=tuple(command[1:]),
        server_name=server_name,
        wait_seconds=wait_seconds,
    )
    sock = None
    if http:
        try:
            sock = bind("127.0.0.1", port)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fail(f"port {port} on 127.0.0.1 is already in use (pick another with --port, or 0 for any)")
            fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}")
    try:
        gov = open_governor(**paths)
    except ClawGovernanceError as exc:
        fail(str(exc))
    try:
        if sock is not None:
            bound = sock

            def ready(url: str) -> None:
                click.echo(
                    f"claw-governance MCP proxy on {url} (agent {agent_id}, policy {gov.policy.hash[:12]})", err=True
                )

            run(lambda: serve_http(gov, settings, bound, path=http_path, on_ready=ready))
        else:
            run(lambda: serve_stdio(gov, settings))
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # the server would not start or broke down: one line, non-zero exit
        fail(f"MCP proxy stopped: {_describe(exc)}")
    finally:
        gov.close()


def _describe(exc: BaseException) -> str:
    """One line for an error, looking inside anyio's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = f"{type(exc).__name__}: {exc}"
    if "Connection closed" in text:
        text += " (the MCP server exited or closed its stdout; its own messages, if any, are above)"
    return text


@hookimpl
def claw_register_commands(cli: click.Group) -> None:
    """Add ``mcp`` to ``claw-gov``."""
    cli.add_command(mcp_group)
