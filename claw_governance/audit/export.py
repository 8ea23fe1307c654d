"""Evidence bundles: a self-contained copy of a trail for auditors, with the one command that verifies it."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson

from claw_governance.audit.keys import PublicKey
from claw_governance.audit.layout import CHECKPOINT_FILE, RETENTION_FILE, TRAIL_FILE, list_segments
from claw_governance.audit.reader import TrailReader
from claw_governance.audit.report import compliance_report, day_range, render_markdown
from claw_governance.errors import AuditError

README = """# Audit evidence bundle

Trail `{trail_id}`, entries from {start} to {end} (UTC; the end day included).

Verify it (needs `pip install claw-governance`, no network, no policies):

    claw-gov audit verify --audit trail --public-key governor_public_key.pem

run from this folder. It recomputes every hash of the chain, checks every signed checkpoint and retention
record against the governor's public key, and exits 0 only if nothing was changed, removed or inserted.

Contents:

- `trail/`: the trail as written ({segments} segments, `trail.json`, `checkpoint.json`, `retention.jsonl`).
  The whole chain is included, because every entry's hash depends on the one before it.
- `entries.jsonl`: the {count} entries of the period, for reading (the same lines as in `trail/`).
- `governor_public_key.pem`: the Ed25519 key that signed the checkpoints (key id `{key_id}`).
  Compare it with a copy you obtained independently before trusting the result.
- `report.md`, `report.json`: the compliance report for the period.
- `manifest.json`: SHA-256 of every file above.
"""


def export_bundle(reader: TrailReader, start: str | date | datetime, end: str | date | datetime,
                  destination: Path, public_key: PublicKey | None = None) -> dict[str, Any]:
    """Write the bundle into ``destination`` (must be empty or missing); return its manifest."""
    lo, hi = day_range(start, end)
    if destination.exists() and any(destination.iterdir()):
        raise AuditError(f"{destination} is not empty")
    keys = reader.public_keys or []
    key = public_key or (keys[0] if keys else None)
    if key is None:
        from claw_governance.audit.verify import trail_keys

        listed = list(trail_keys(reader.meta).values())
        if not listed:
            raise AuditError("no public key to put in the bundle (give --public-key)")
        key = listed[-1]
    trail_dir = destination / "trail"
    trail_dir.mkdir(parents=True)
    segments = list_segments(reader.path)
    for _, path in segments:
        shutil.copyfile(path, trail_dir / path.name)
    for name in (TRAIL_FILE, CHECKPOINT_FILE, RETENTION_FILE):
        if (reader.path / name).exists():
            shutil.copyfile(reader.path / name, trail_dir / name)
    count = 0
    with open(destination / "entries.jsonl", "wb") as out:
        for entry in reader.entries():
            ts = entry.get("timestamp")
            if isinstance(ts, int | float) and lo <= ts < hi:
                out.write(orjson.dumps(entry) + b"\n")
                count += 1
    (destination / "governor_public_key.pem").write_bytes(key.pem())
    report = compliance_report(TrailReader(trail_dir, public_keys=[key]), start, end)
    (destination / "report.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    (destination / "report.md").write_text(render_markdown(report))
    (destination / "README.md").write_text(README.format(
        trail_id=reader.trail_id, start=report["period"]["start"], end=report["period"]["end"],
        segments=len(segments), count=count, key_id=key.key_id))
    manifest = {"trail_id": reader.trail_id, "entries_in_period": count, "chain_valid": report["chain"]["valid"],
                "files": {str(p.relative_to(destination)): hashlib.sha256(p.read_bytes()).hexdigest()
                          for p in sorted(destination.rglob("*")) if p.is_file()}}
    (destination / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest
