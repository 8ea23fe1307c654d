"""The adapter's claw-governance plugin: ``claw-gov openclaw import|export|drift|tools|bind`` and ``claw-gov serve``.

Registered through the entry point ``openclaw = "claw_governance_openclaw.plugin"`` (group
``claw_governance``). Every error is one line and a non-zero exit.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from claw_governance.cli import echo_json, fail, governor_options, open_governor
from claw_governance.errors import ClawGovernanceError
from claw_governance.hookspecs import hookimpl
from claw_governance_openclaw.catalog import DEFAULT_OPENCLAW_VERSION, load_catalog
from claw_governance_openclaw.config import OpenClawConfigError, load_openclaw_config

_VERSION_OPTION = click.option(
    "--openclaw-version",
    default=DEFAULT_OPENCLAW_VERSION,
    show_default=True,
    help="OpenClaw release whose groups and profiles apply.",
)
_PROVIDER_OPTION = click.option("--provider", default=None, help="Model provider (for tools.byProvider).")
_MODEL_OPTION = click.option("--model", default=None, help="Model id (for tools.byProvider[provider/model]).")


def _config(path: Path) -> dict[str, Any]:
    try:
        return load_openclaw_config(path)
    except OpenClawConfigError as exc:
        fail(str(exc))


def _catalog(version: str) -> Any:
    try:
        return load_catalog(version)
    except ValueError as exc:
        fail(str(exc))


@click.group("openclaw")
def openclaw_group() -> None:
    """Translate between openclaw.json tool policy and claw-governance policies; check drift."""


@openclaw_group.command("import")
@click.argument("config", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder to write one <agent>.yaml policy per OpenClaw agent into.",
)
@click.option("--force", is_flag=True, help="Overwrite existing policy files.")
@_PROVIDER_OPTION
@_MODEL_OPTION
@_VERSION_OPTION
def import_command(
    config: Path, output: Path, force: bool, provider: str | None, model: str | None, openclaw_version: str
) -> None:
    """Write governance policies equivalent to CONFIG's tool policy (openclaw.json, JSON5)."""
    from claw_governance_openclaw.translate import policy_from_openclaw_config, policy_yaml

    data = _config(config)
    policies = policy_from_openclaw_config(data, provider=provider, model=model, catalog=_catalog(openclaw_version))
    targets = [(output / f"{p['agent']}.yaml", p) for p in policies]
    existing = [str(t) for t, _ in targets if t.exists()]
    if existing and not force:
        fail(f"{existing[0]} exists (use --force to overwrite)")
    output.mkdir(parents=True, exist_ok=True)
    for target, policy in targets:
        header = (
            f"# Imported by `claw-gov openclaw import` from {config}\n"
            f"# OpenClaw {openclaw_version}; actions are tool:<OpenClaw tool name>.\n"
        )
        target.write_text(header + policy_yaml(policy), encoding="utf-8")
        allowed = len(policy["permissions"]["allow"])
        click.echo(f"{target}: agent {policy['agent']}, {allowed} allowed")


@openclaw_group.command("export")
@click.argument("policies", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the fragment to this file instead of stdout.",
)
@_VERSION_OPTION
def export_command(policies: Path, output: Path | None, openclaw_version: str) -> None:
    """Print the openclaw.json fragment (tools + agents.entries.<id>.tools) matching POLICIES."""
    from claw_governance_openclaw.translate import export_openclaw_config

    if not policies.exists():
        fail(f"{policies}: policy path does not exist")
    result = export_openclaw_config(policies, catalog=_catalog(openclaw_version))
    text = json.dumps(result.fragment, indent=2) + "\n"
    if output is not None:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)


@openclaw_group.command("drift")
@click.argument("config", type=click.Path(path_type=Path))
@click.argument("policies", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_PROVIDER_OPTION
@_MODEL_OPTION
@_VERSION_OPTION
def drift_command(
    config: Path, policies: Path, as_json: bool, provider: str | None, model: str | None, openclaw_version: str
) -> None:
    """Compare what OpenClaw offers (CONFIG) with what governance allows (POLICIES). Exit 1 on drift."""
    from claw_governance_openclaw.translate import drift

    data = _config(config)
    if not policies.exists():
        fail(f"{policies}: policy path does not exist")
    report = drift(data, policies, provider=provider, model=model, catalog=_catalog(openclaw_version))
    drifted = [d for d in report if d.drifted]
    if as_json:
        echo_json({"drift": bool(drifted), "agents": [d.as_dict() for d in report]})
    else:
        for d in report:
            if not d.drifted:
                click.echo(f"{d.agent_id}: in sync")
                continue
            if d.offered_but_denied:
                click.echo(f"{d.agent_id}: OpenClaw offers, governance denies: {', '.join(d.offered_but_denied)}")
            if d.allowed_but_withheld:
                click.echo(f"{d.agent_id}: governance allows, OpenClaw withholds: {', '.join(d.allowed_but_withheld)}")
        if drifted:
            click.echo(
                f"drift in {len(drifted)} of {len(report)} agents; `claw-gov openclaw export {policies}` "
                "prints the OpenClaw settings that match governance"
            )
    sys.exit(1 if drifted else 0)


@openclaw_group.command("tools")
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--agent", "agent_id", default="main", show_default=True, help="OpenClaw agent id.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_PROVIDER_OPTION
@_MODEL_OPTION
@_VERSION_OPTION
def tools_command(
    config: Path, agent_id: str, as_json: bool, provider: str | None, model: str | None, openclaw_version: str
) -> None:
    """List the tools OpenClaw would offer an agent under CONFIG, and which layer removes each other tool."""
    from claw_governance_openclaw.toolpolicy import resolve_tool_policy

    catalog = _catalog(openclaw_version)
    resolved = resolve_tool_policy(_config(config), agent_id, provider, model, catalog=catalog)
    offered = resolved.filter(catalog.tools)
    removed = {t: layer.label for t in catalog.tools if (layer := resolved.blocking_layer(t)) is not None}
    if as_json:
        echo_json({"agent": resolved.agent_id, "offered": offered, "removed": removed})
        return
    click.echo(f"agent {resolved.agent_id}: {len(offered)} tools: {', '.join(offered)}")
    for tool, label in removed.items():
        click.echo(f"  - {tool}: removed by {label}")


def _secret(path: Path | None, env: str, what: str, hint: str) -> str:
    """A credential from a file (``-`` for stdin) or else the environment; a missing one is a one-line error."""
    if path is not None:
        try:
            text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"{path}: cannot read the {what} ({exc.strerror or exc})")
    else:
        text = os.environ.get(env, "")
    if not text.strip():
        fail(f"no {what}: {hint}")
    return text.strip()


@openclaw_group.command("bind")
@click.option("--session-key", default=None, help="Bind every run of this OpenClaw session (agent:<id>:<key>).")
@click.option("--run-id", default=None, help="Bind this one OpenClaw run id.")
@click.option(
    "--job-token-file",
    type=click.Path(path_type=Path, allow_dash=True),
    default=None,
    help="File with the job token from `claw-gov job start` (- for stdin; else $CLAW_JOB_TOKEN).",
)
@click.option(
    "--bridge", "bridge_url", default="http://127.0.0.1:8787", show_default=True, help="The bridge's base URL."
)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path),
    default=None,
    help="File holding the bridge's bearer token (else $CLAW_BRIDGE_TOKEN).",
)
@click.option(
    "--operator-token-file",
    type=click.Path(path_type=Path),
    default=None,
    help="File holding your reviewer token from `claw-gov reviewer add` (else $CLAW_OPERATOR_TOKEN).",
)
@click.option("--timeout", default=10.0, show_default=True, type=float, help="Seconds to wait for the bridge.")
@click.option("--json", "as_json", is_flag=True, help="Print the bridge's answer as JSON.")
def bind_command(
    session_key: str | None,
    run_id: str | None,
    job_token_file: Path | None,
    bridge_url: str,
    token_file: Path | None,
    operator_token_file: Path | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Bind a job token to an OpenClaw session or run on a running bridge: every tool call and model run of it
    is then checked under the job (scope, expiry, revocation, pinned policy), whatever the plugin sends.

    Exit 0 when bound, 1 when the bridge refused (the reason is printed), 2 on a usage or connection error.
    """
    import httpx

    from claw_governance_openclaw.bridge import OPERATOR_TOKEN_HEADER

    if session_key is None and run_id is None:
        fail("name what to bind: --session-key agent:<id>:<key> and/or --run-id RUN")
    job_token = _secret(
        job_token_file,
        "CLAW_JOB_TOKEN",
        "job token",
        "pass --job-token-file (from `claw-gov job start`) or set CLAW_JOB_TOKEN",
    )
    bridge_token = _secret(
        token_file, "CLAW_BRIDGE_TOKEN", "bridge token", "pass --token-file or set CLAW_BRIDGE_TOKEN"
    )
    operator = _secret(
        operator_token_file,
        "CLAW_OPERATOR_TOKEN",
        "operator token",
        "pass --operator-token-file (a reviewer token from `claw-gov reviewer add`) or set CLAW_OPERATOR_TOKEN",
    )
    body: dict[str, Any] = {"jobToken": job_token}
    if session_key is not None:
        body["sessionKey"] = session_key
    if run_id is not None:
        body["runId"] = run_id
    url = bridge_url.rstrip("/") + "/v1/openclaw/jobs/bind"
    try:
        # Redirects are not followed: the credentials go to the bridge named here and nowhere else.
        response = httpx.post(
            url,
            json=body,
            headers={"authorization": f"Bearer {bridge_token}", OPERATOR_TOKEN_HEADER: operator},
            timeout=timeout,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        fail(f"cannot reach the bridge at {bridge_url} ({type(exc).__name__}: {exc}); is `claw-gov serve` running?")
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code != 200 or not isinstance(answer, dict) or answer.get("ok") is not True:
        reason = answer.get("error") if isinstance(answer, dict) else None
        fail(f"the bridge refused the binding (HTTP {response.status_code}): {reason or response.text[:200]}", 1)
    if as_json:
        echo_json(answer)
        return
    bound = " and ".join(f"{k} {v}" for k, v in (("session", session_key), ("run", run_id)) if v is not None)
    click.echo(
        f"bound job {answer.get('jobId')} (agent {answer.get('agentId')}, token {answer.get('tokenId')}) to {bound}"
    )


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8787, show_default=True, type=int, help="TCP port.")
@click.option(
    "--token-file",
    type=click.Path(path_type=Path),
    default=None,
    help="File holding the shared bearer token (else $CLAW_BRIDGE_TOKEN).",
)
@click.option(
    "--agent-keys",
    "agent_keys",
    type=click.Path(path_type=Path),
    default=None,
    help="JSON file {agent id: secret} for per-agent request signatures.",
)
@click.option(
    "--require-signature/--no-require-signature",
    default=None,
    help="Require per-agent signatures (default: the governor's IDENTITY_REQUIRE_SIGNATURE).",
)
@click.option(
    "--approval-timeout-max",
    default=3600.0,
    show_default=True,
    type=float,
    help="Longest OpenClaw approval wait to ask for, in seconds.",
)
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@governor_options
def serve_command(
    host: str,
    port: int,
    token_file: Path | None,
    agent_keys: Path | None,
    require_signature: bool | None,
    approval_timeout_max: float,
    log_level: str,
    **paths: Any,
) -> None:
    """Run the governance bridge the OpenClaw plugin calls (before/after_tool_call, approvals, /health)."""
    from claw_governance_openclaw.bridge import BridgeSettings, create_app, load_agent_keys
    from claw_governance_openclaw.limits import server_config, token_problem

    token = _secret(
        token_file,
        "CLAW_BRIDGE_TOKEN",
        "bridge token",
        "the bridge needs a shared token: set CLAW_BRIDGE_TOKEN or pass --token-file "
        "(e.g. `openssl rand -hex 32 > bridge.token`)",
    )
    weak = token_problem(token)
    if weak is not None:
        fail(weak)
    keys: dict[str, str] = {}
    if agent_keys is not None:
        try:
            keys = load_agent_keys(agent_keys)
        except (OSError, ValueError) as exc:
            fail(f"{agent_keys}: {exc}")
    if not paths["policy_path"].exists():
        fail(f"{paths['policy_path']}: policy path does not exist")
    try:
        gov = open_governor(**paths)
    except ClawGovernanceError as exc:
        fail(str(exc))
    signature = gov.config.require_signature if require_signature is None else require_signature
    if signature and not keys:
        gov.close()
        fail("signatures are required but no --agent-keys file was given")
    settings = BridgeSettings(
        token=token, agent_keys=keys, require_signature=signature, approval_timeout_max_seconds=approval_timeout_max
    )
    app = create_app(gov, settings)
    import uvicorn

    sock = _listen(host, port, gov)  # bound here, so a port in use is one line, not uvicorn's log
    click.echo(
        f"claw-governance bridge on http://{host}:{sock.getsockname()[1]} (policy {gov.policy.hash[:12]}, "
        f"signatures {'required' if signature else 'off'})",
        err=True,
    )
    try:
        uvicorn.Server(server_config(app, host, port, log_level=log_level, fd=sock.fileno())).run()
    finally:
        sock.close()
        gov.close()


def _listen(host: str, port: int, gov: Any) -> Any:
    """A listening socket on host:port; a port in use (or any bind error) is a one-line error, exit 2."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        gov.close()
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {port} on {host} is already in use (another `claw-gov serve`? pick one with --port)")
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    return sock


@hookimpl
def claw_register_commands(cli: click.Group) -> None:
    """Add ``openclaw`` and ``serve`` to ``claw-gov``."""
    cli.add_command(openclaw_group)
    cli.add_command(serve_command)
