"""``claw-gov audit``: verify, query, report, export. Works on the trail folder alone (no policies needed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from claw_governance.audit.bundle import latest_checkpoint
from claw_governance.audit.redaction import DEFAULT_REDACTOR
from claw_governance.cli._common import ErrorGuard, audit_option, echo, fail, state_dir, trail_options
from claw_governance.hookspecs import hookimpl
from claw_governance.terminal import safe_json, safe_text
from claw_governance.timeparse import table_utc


def _reader(
    audit_path: Path,
    state_path: Path | None,
    identity_path: Path | None,
    public_key: str | None,
    witnesses: Any = None,
    store_url: str | None = None,
) -> Any:
    from claw_governance.audit.reader import TrailReader
    from claw_governance.audit.trust import load_public_key

    # several keys (a fleet, one per host) are given comma-separated: no key format contains a comma
    keys = (
        [load_public_key(part.strip()) for part in public_key.split(",") if part.strip()]
        if public_key is not None
        else None
    )
    if store_url is not None:  # the fleet view (issue 17): every trail copied to the audit sink
        from claw_governance.audit.sink import FleetReader

        if not store_url.startswith(("postgresql://", "postgres://")):
            fail(f"--store must be a postgresql:// URL, not {store_url.split(':', 1)[0]!r}")
        return FleetReader(store_url, public_keys=keys)
    state = state_dir(state_path, identity_path)
    store = None
    state_url = os.environ.get("STATE_URL") or None  # a fleet keeps the checkpoint copies in PostgreSQL
    if state_url is not None or (state is not None and state.exists()):
        from claw_governance.config import GovernorConfig
        from claw_governance.state import open_state_store

        store = open_state_store(GovernorConfig(state_path=state, state_url=state_url))
    return TrailReader(
        audit_path,
        public_keys=keys,
        state_path=state if state and state.exists() else None,
        store=store,
        witnesses=witnesses,
    )


@click.group("audit", cls=ErrorGuard)
def audit_group() -> None:
    """Verify, search, report on and export the audit trail."""


def _print_report(report: Any, as_json: bool) -> None:
    if as_json:
        click.echo(safe_json(report.as_dict()))
        return
    status = "VALID" if report.valid else "INVALID"
    echo(
        f"{status}: {report.entries} entries, seq {report.first_seq}..{report.last_seq}, "
        f"{report.segments} segments, {report.checkpoints} checkpoints (keys: {report.key_source})"
    )
    echo(
        f"  origin {report.origin}; anchored by trusted checkpoints up to seq {report.anchored_size}; "
        f"unanchored tail: {report.unanchored} entries"
    )
    if report.min_witnesses or report.witnessed_size:
        echo(f"  witnessed up to seq {report.witnessed_size}; unwitnessed tail: {report.unwitnessed} entries")
    for err in report.errors:
        echo(f"  error: segment {safe_text(err['segment'])} seq {err['seq']}: {safe_text(err['message'])}")
    for warning in report.warnings:
        echo(f"  warning: {safe_text(warning)}")


@audit_group.command("verify")
@trail_options
@click.option(
    "--witness",
    "witness_specs",
    multiple=True,
    help="A trusted witness: its verifier key, optionally @URL to compare with its latest checkpoint.",
)
@click.option(
    "--min-witnesses",
    type=int,
    default=0,
    show_default=True,
    help="A checkpoint anchors entries only if this many trusted witnesses cosigned it.",
)
@click.option("--require-anchored", is_flag=True, help="INVALID if any entry is after the last trusted checkpoint.")
@click.option(
    "--bundle",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Verify an evidence bundle (from `audit export`) offline instead of a trail folder.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_cmd(
    audit_path: Path,
    state_path: Path | None,
    identity_path: Path | None,
    public_key: str | None,
    witness_specs: tuple[str, ...],
    min_witnesses: int,
    require_anchored: bool,
    bundle: Path | None,
    as_json: bool,
    store_url: str | None = None,
) -> None:
    """Recompute the hash chain and Merkle tree and check every checkpoint against trusted keys only.

    Exit 0 if intact, 1 if not."""
    from claw_governance.audit.trust import parse_witness

    specs = [parse_witness(w) for w in witness_specs]
    if min_witnesses > len(specs):
        fail(f"--min-witnesses {min_witnesses} needs at least that many --witness keys")
    witnesses = [s.witness for s in specs]
    if bundle is not None:
        from claw_governance.audit.bundle import verify_bundle
        from claw_governance.audit.trust import load_public_key

        if public_key is None:
            fail("--bundle needs --public-key (the governor's key, obtained independently)")
        report = verify_bundle(
            bundle,
            [load_public_key(str(public_key))],
            witnesses=witnesses,
            min_witnesses=min_witnesses,
            require_anchored=require_anchored,
        )
    else:
        client = None
        if any(s.url for s in specs):
            from claw_governance.audit.witness_client import WitnessClient

            client = WitnessClient(specs)
        reader = _reader(audit_path, state_path, identity_path, public_key, client, store_url)
        if not reader.public_keys:
            fail("no trusted key: give --public-key, or --state/--identities where the governor's key is")
        report = reader.verify(witnesses=witnesses, min_witnesses=min_witnesses, require_anchored=require_anchored)
        state = state_dir(state_path, identity_path)
        if store_url is None and state is not None and state.is_dir():  # for /metrics and `claw-gov doctor`
            from claw_governance.metrics import write_last_verify

            write_last_verify(state, report.valid, report.entries, report.trail_id)
    _print_report(report, as_json)
    sys.exit(0 if report.valid else 1)


@audit_group.command("checkpoint")
@audit_option
def checkpoint_cmd(audit_path: Path) -> None:
    """Print the latest checkpoint (a C2SP signed note, with every cosignature it has)."""
    click.echo(latest_checkpoint(audit_path).note(), nl=False)


@audit_group.command("public-key")
@trail_options
@click.option("--format", "fmt", type=click.Choice(["pem", "hex", "note"]), default="pem", show_default=True)
def public_key_cmd(
    audit_path: Path,
    state_path: Path | None,
    identity_path: Path | None,
    public_key: str | None,
    fmt: str,
    store_url: str | None = None,
) -> None:
    """Print the governor's public key; ``--format note``: the signed-note verifier key for this trail."""
    from claw_governance.audit.keys import KEY_FILE, public_key_from_text
    from claw_governance.audit.layout import origin_for
    from claw_governance.audit.note import vkey
    from claw_governance.audit.verify import load_trail_meta

    state = state_dir(state_path, identity_path)
    if state is None or not (state / KEY_FILE).exists():
        fail(f"no governor key in {state}: give --state or --identities")
    assert state is not None
    key = public_key_from_text((state / KEY_FILE).read_bytes())
    if fmt == "pem":
        click.echo(key.pem().decode(), nl=False)
    elif fmt == "hex":
        click.echo(key.hex)
    else:
        origin = origin_for(load_trail_meta(audit_path)["trail_id"])
        click.echo(vkey(origin, key))


@audit_group.command("prove")
@audit_option
@click.option("--seq", type=int, required=True, help="The entry to prove.")
@click.option("--size", type=int, default=None, help="Prove against an older checkpoint size (default: latest).")
def prove_cmd(audit_path: Path, seq: int, size: int | None) -> None:
    """Print a c2sp.org/tlog-proof@v1 inclusion proof of entry SEQ against the latest checkpoint."""
    from claw_governance.audit.bundle import tlog_proof

    cp = latest_checkpoint(audit_path)
    click.echo(tlog_proof(audit_path, cp, seq), nl=False)


@audit_group.command("reset")
@trail_options
@click.option("--reason", required=True, help="Why the old trail is abandoned (recorded forever).")
def reset_cmd(
    audit_path: Path,
    state_path: Path | None,
    identity_path: Path | None,
    public_key: str | None,
    reason: str,
    store_url: str | None = None,
) -> None:
    """Start a new trail at AUDIT whose first entry records the old trail's origin and last checkpoint.

    An existing folder is moved aside (``<audit>.replaced-<time>``), never deleted."""
    from claw_governance.audit.trail import reset_trail
    from claw_governance.config import GovernorConfig
    from claw_governance.state import open_state_store

    state = state_dir(state_path, identity_path)
    config = GovernorConfig(audit_path=audit_path, state_path=state)
    store = open_state_store(config)
    try:
        moved, origin = reset_trail(config, store, reason)
    finally:
        store.close()
    click.echo(f"new trail {origin}" + (f"; the old folder is now {moved}" if moved else ""))


@audit_group.command("query")
@trail_options
@click.option("--agent", "agent_id", default=None, help="Agent id.")
@click.option("--type", "entry_type", default=None, help="Entry type, e.g. policy_decision.")
@click.option("--action", default=None, help="Action glob (* matches anything).")
@click.option("--outcome", type=click.Choice(["allow", "deny", "escalate"]), default=None)
@click.option("--since", default=None, help="From (inclusive): ISO date/timestamp, Unix seconds, 7d, 12h, yesterday.")
@click.option("--until", default=None, help="Until (exclusive): same forms as --since.")
@click.option("--limit", type=int, default=None)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "table"]), default="jsonl", show_default=True)
def query_cmd(
    audit_path: Path,
    state_path: Path | None,
    identity_path: Path | None,
    public_key: str | None,
    agent_id: str | None,
    entry_type: str | None,
    action: str | None,
    outcome: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    fmt: str,
    store_url: str | None = None,
) -> None:
    """Print matching entries, oldest first."""
    reader = _reader(audit_path, state_path, identity_path, None, store_url=store_url)
    found = reader.query(
        agent_id=agent_id, type=entry_type, action=action, outcome=outcome, since=since, until=until, limit=limit
    )
    # What was written before a redaction rule existed is redacted again on the way out; values are escaped.
    if fmt == "jsonl":
        for entry in found:
            click.echo(safe_json(DEFAULT_REDACTOR(entry, echoes=False), indent=None, sort_keys=True))
        return
    rows = [("seq", "time (UTC)", "type", "agent", "action", "outcome")]
    for entry in found:
        entry = DEFAULT_REDACTOR(entry, echoes=False)
        decision = entry.get("decision") if isinstance(entry.get("decision"), dict) else {}
        ts = entry.get("timestamp")
        when = table_utc(ts) if isinstance(ts, int | float) else "?"
        rows.append(
            (
                safe_text(entry.get("seq")),
                when,
                safe_text(entry.get("type")),
                safe_text(entry.get("agent_id") or "-"),
                safe_text(entry.get("action") or "-"),
                safe_text(decision.get("outcome") or "-"),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@audit_group.command("report")
@trail_options
@click.option("--from", "start", required=True, help="First day (YYYY-MM-DD, yesterday, 7d), included.")
@click.option("--to", "end", required=True, help="Last day (YYYY-MM-DD, today), included.")
@click.option("--format", "fmt", type=click.Choice(["json", "md", "html"]), default="json", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option(
    "--policies",
    "policy_path",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="Policy file or folder whose metadata (name, version, owner) the report shows.",
)
def report_cmd(
    audit_path: Path,
    state_path: Path | None,
    identity_path: Path | None,
    public_key: str | None,
    start: str,
    end: str,
    fmt: str,
    output: Path | None,
    policy_path: Path | None,
    store_url: str | None = None,
) -> None:
    """Compliance report for a period: totals, escalations, trust changes, policy versions, chain result."""
    from claw_governance.audit.report import compliance_report, render_markdown

    metadata = None
    if policy_path is not None:
        from claw_governance.policy import load_policy_set

        metadata = load_policy_set(policy_path).metadata_by_agent
    reader = _reader(audit_path, state_path, identity_path, public_key, store_url=store_url)
    if fmt == "html":  # the styled, printable page (Jinja2 autoescapes every value; inline SVG charts)
        from claw_governance.audit.html_report import build_report, render_report_html

        text = render_report_html(build_report(reader, start, end, store=reader.store, origin=str(audit_path)))
    else:
        report = DEFAULT_REDACTOR(compliance_report(reader, start, end, metadata), echoes=False)
        text = safe_json(report) if fmt == "json" else safe_text(render_markdown(report), keep_newlines=True)
    if output is not None:
        output.write_text(text + "\n")
    else:
        click.echo(text)


@audit_group.command("export")
@trail_options
@click.option("--from", "start", required=True, help="First day (YYYY-MM-DD, yesterday, 7d), included.")
@click.option("--to", "end", required=True, help="Last day (YYYY-MM-DD, today), included.")
@click.argument("destination", type=click.Path(path_type=Path, file_okay=False))
def export_cmd(
    audit_path: Path,
    state_path: Path | None,
    identity_path: Path | None,
    public_key: str | None,
    start: str,
    end: str,
    destination: Path,
    store_url: str | None = None,
) -> None:
    """Write a self-contained evidence bundle (entries, checkpoints, public key, README) to DESTINATION."""
    from claw_governance.audit.export import export_bundle

    if store_url is not None:
        fail("export reads one local trail: pass --audit, not --store")

    manifest = export_bundle(_reader(audit_path, state_path, identity_path, public_key), start, end, destination)
    state = state_dir(state_path, identity_path)
    if state is not None and state.is_dir():  # for `claw-gov doctor` (last evidence export)
        from claw_governance.metrics import write_run_marker

        write_run_marker(
            state,
            "last-export.json",
            destination=str(destination),
            start=start,
            end=end,
            entries=manifest.get("entries_in_period"),
        )
    echo(
        f"wrote {destination}: {manifest['entries_in_period']} entries in the period, chain "
        f"{'valid' if manifest['chain_valid'] else 'INVALID'}; verify with: cd {destination} && "
        "claw-gov audit verify --audit trail --public-key governor_public_key.pem"
    )


@hookimpl
def claw_register_commands(cli: click.Group) -> None:
    """Add ``claw-gov audit``."""
    cli.add_command(audit_group)
