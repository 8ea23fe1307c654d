"""``claw-gov audit``: verify, query, report, export. Works on the trail folder alone (no policies needed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from claw_governance.errors import ClawGovernanceError
from claw_governance.hookspecs import hookimpl


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _trail_options(fn: Any) -> Any:
    for option in reversed([
        click.option("--audit", "audit_path", type=click.Path(path_type=Path), envvar="AUDIT_PATH",
                     default="logs/audit", show_default=True, help="Audit trail folder."),
        click.option("--state", "state_path", type=click.Path(path_type=Path), envvar="STATE_PATH", default=None,
                     help="State folder: its checkpoint and governor key are used (default <identities>/.state)."),
        click.option("--identities", "identity_path", type=click.Path(path_type=Path), envvar="IDENTITY_PATH",
                     default="identities", show_default=True, help="Identity folder (locates the state folder)."),
        click.option("--public-key", "public_key", type=click.Path(path_type=Path, dir_okay=False), default=None,
                     help="Trust only this Ed25519 public key (PEM or hex)."),
    ]):
        fn = option(fn)
    return fn


def _reader(audit_path: Path, state_path: Path | None, identity_path: Path | None, public_key: Path | None) -> Any:
    from claw_governance.audit.keys import PublicKey
    from claw_governance.audit.reader import TrailReader

    keys = None
    if public_key is not None:
        try:
            keys = [PublicKey.from_text(public_key.read_bytes())]
        except OSError as exc:
            _fail(f"{public_key}: {exc.strerror or exc}")
    state = state_path if state_path is not None else (identity_path / ".state" if identity_path else None)
    store = None
    if state is not None and state.exists():
        from claw_governance.config import GovernorConfig
        from claw_governance.state import open_state_store

        store = open_state_store(GovernorConfig(state_path=state))
    return TrailReader(audit_path, public_keys=keys, state_path=state if state and state.exists() else None,
                       store=store)


def _guard(fn: Any) -> Any:
    """One line on stderr and exit 2 for any error a user can act on (never a traceback)."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BrokenPipeError:  # `| head` closed our stdout: claw-gov's main ends quietly
            raise
        except ClawGovernanceError as exc:
            _fail(str(exc))
        except (OSError, ValueError) as exc:
            _fail(f"{type(exc).__name__}: {exc}")
        return None
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@click.group("audit")
def audit_group() -> None:
    """Verify, search, report on and export the audit trail."""


@audit_group.command("verify")
@_trail_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_guard
def verify_cmd(audit_path: Path, state_path: Path | None, identity_path: Path | None, public_key: Path | None,
               as_json: bool) -> None:
    """Recompute the hash chain and check every signature. Exit 0 if intact, 1 if not."""
    reader = _reader(audit_path, state_path, identity_path, public_key)
    report = reader.verify()
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        status = "VALID" if report.valid else "INVALID"
        click.echo(f"{status}: {report.entries} entries, seq {report.first_seq}..{report.last_seq}, "
                   f"{report.segments} segments, {report.checkpoints} checkpoints (keys: {report.key_source})")
        for err in report.errors:
            click.echo(f"  error: segment {err['segment']} seq {err['seq']}: {err['message']}")
        for warning in report.warnings:
            click.echo(f"  warning: {warning}")
    sys.exit(0 if report.valid else 1)


@audit_group.command("query")
@_trail_options
@click.option("--agent", "agent_id", default=None, help="Agent id.")
@click.option("--type", "entry_type", default=None, help="Entry type, e.g. policy_decision.")
@click.option("--action", default=None, help="Action glob (* matches anything).")
@click.option("--outcome", type=click.Choice(["allow", "deny", "escalate"]), default=None)
@click.option("--since", default=None, help="From (inclusive): ISO date/timestamp, Unix seconds, 7d, 12h, yesterday.")
@click.option("--until", default=None, help="Until (exclusive): same forms as --since.")
@click.option("--limit", type=int, default=None)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "table"]), default="jsonl", show_default=True)
@_guard
def query_cmd(audit_path: Path, state_path: Path | None, identity_path: Path | None, public_key: Path | None,
              agent_id: str | None, entry_type: str | None, action: str | None, outcome: str | None,
              since: str | None, until: str | None, limit: int | None, fmt: str) -> None:
    """Print matching entries, oldest first."""
    reader = _reader(audit_path, state_path, identity_path, None)
    found = reader.query(agent_id=agent_id, type=entry_type, action=action, outcome=outcome, since=since,
                         until=until, limit=limit)
    if fmt == "jsonl":
        for entry in found:
            click.echo(json.dumps(entry, ensure_ascii=False, sort_keys=True))
        return
    from datetime import UTC, datetime

    rows = [("seq", "time (UTC)", "type", "agent", "action", "outcome")]
    for entry in found:
        decision = entry.get("decision") if isinstance(entry.get("decision"), dict) else {}
        ts = entry.get("timestamp")
        when = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S") if isinstance(ts, int | float) else "?"
        rows.append((str(entry.get("seq")), when, str(entry.get("type")), str(entry.get("agent_id") or "-"),
                     str(entry.get("action") or "-"), str(decision.get("outcome") or "-")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@audit_group.command("report")
@_trail_options
@click.option("--from", "start", required=True, help="First day (YYYY-MM-DD, yesterday, 7d), included.")
@click.option("--to", "end", required=True, help="Last day (YYYY-MM-DD, today), included.")
@click.option("--format", "fmt", type=click.Choice(["json", "md", "html"]), default="json", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None)
@_guard
def report_cmd(audit_path: Path, state_path: Path | None, identity_path: Path | None, public_key: Path | None,
               start: str, end: str, fmt: str, output: Path | None) -> None:
    """Compliance report for a period: totals, escalations, trust changes, policy versions, chain result."""
    from claw_governance.audit.report import compliance_report, render_html, render_markdown

    report = compliance_report(_reader(audit_path, state_path, identity_path, public_key), start, end)
    text = (json.dumps(report, indent=2, ensure_ascii=False) if fmt == "json"
            else render_markdown(report) if fmt == "md" else render_html(report))
    if output is not None:
        output.write_text(text + "\n")
    else:
        click.echo(text)


@audit_group.command("export")
@_trail_options
@click.option("--from", "start", required=True, help="First day (YYYY-MM-DD, yesterday, 7d), included.")
@click.option("--to", "end", required=True, help="Last day (YYYY-MM-DD, today), included.")
@click.argument("destination", type=click.Path(path_type=Path, file_okay=False))
@_guard
def export_cmd(audit_path: Path, state_path: Path | None, identity_path: Path | None, public_key: Path | None,
               start: str, end: str, destination: Path) -> None:
    """Write a self-contained evidence bundle (entries, checkpoints, public key, README) to DESTINATION."""
    from claw_governance.audit.export import export_bundle

    manifest = export_bundle(_reader(audit_path, state_path, identity_path, public_key), start, end, destination)
    click.echo(f"wrote {destination}: {manifest['entries_in_period']} entries in the period, chain "
               f"{'valid' if manifest['chain_valid'] else 'INVALID'}; verify with: cd {destination} && "
               "claw-gov audit verify --audit trail --public-key governor_public_key.pem")


@hookimpl
def claw_register_commands(cli: click.Group) -> None:
    """Add ``claw-gov audit``."""
    cli.add_command(audit_group)
