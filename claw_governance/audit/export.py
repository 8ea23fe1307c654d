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
from claw_governance.audit.report import compliance_report, render_markdown
from claw_governance.errors import AuditError
from claw_governance.timeparse import day_range

README = """# Audit evidence bundle

Trail `{trail_id}`, entries from {start} to {end} (UTC; the end day included).

Verify it (needs `pip install claw-governance`, no network, no policies), from this folder:

    claw-gov audit verify --bundle . --public-key governor_public_key.pem [--witness <vkey> --min-witnesses 1]

or just the trail copy:

    claw-gov audit verify --audit trail --public-key governor_public_key.pem

It recomputes every hash of the chain and the RFC 6962 Merkle tree, checks every checkpoint (C2SP signed
notes) and retention record against the key YOU give (never a key from the bundle itself: compare
`governor_public_key.pem` with a copy obtained independently), checks every inclusion proof in `proofs/`,
and exits 0 only if nothing was changed, removed or inserted.

Without our tool: the proofs are c2sp.org/tlog-proof@v1 files and the checkpoints C2SP signed notes, so the
Go reference implementation checks them. `tools/tlogverify/main.go` in the claw-governance source uses only
golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog (Debian: `apt-get install golang-go
golang-golang-x-mod-dev`):

    GOPATH=/usr/share/gocode GO111MODULE=off go build -o tlogverify tools/tlogverify/main.go
    ./tlogverify proof "$(cat verifier_key.txt)" proofs/seq-<N>.tlog-proof <entry line file>

Contents:

- `trail/`: the trail as written ({segments} segments, `trail.json`, `checkpoint.json`, `retention.jsonl`).
  The whole chain is included, because every entry's hash depends on the one before it.
- `entries.jsonl`: the {count} entries of the period, for reading (the same lines as in `trail/`).
- `governor_public_key.pem`: the Ed25519 key that signed the checkpoints (key id `{key_id}`);
  `verifier_key.txt`: the same key as a signed-note verifier key for origin `{origin}`.
- `checkpoints/latest.note`: the newest checkpoint with every witness cosignature it got.
- `proofs/seq-<N>.tlog-proof`: an inclusion proof of each entry of the period in that checkpoint.
  Compare it with a copy you obtained independently before trusting the result.
- `report.md`, `report.json`: the compliance report for the period.
- `manifest.json`: SHA-256 of every file above.
"""


def export_bundle(
    reader: TrailReader,
    start: str | date | datetime,
    end: str | date | datetime,
    destination: Path,
    public_key: PublicKey | None = None,
) -> dict[str, Any]:
    """Write the bundle into ``destination`` (must be empty or missing); return its manifest."""
    lo, hi = day_range(start, end)
    if destination.exists() and any(destination.iterdir()):
        raise AuditError(f"{destination} is not empty")
    keys = reader.public_keys or []
    key = public_key or (keys[0] if keys else None)
    if key is None:
        raise AuditError("no public key to put in the bundle (give --public-key, --state or --identities)")
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
    from claw_governance.audit.bundle import latest_checkpoint, make_proof, trail_leaves
    from claw_governance.audit.note import vkey

    (destination / "verifier_key.txt").write_text(vkey(reader.origin, key) + "\n")
    try:
        cp = latest_checkpoint(reader.path)
    except AuditError:
        cp = None
    if cp is not None:
        (destination / "checkpoints").mkdir()
        (destination / "checkpoints" / "latest.note").write_text(cp.note())
        leaves, lines = trail_leaves(trail_dir)
        (destination / "proofs").mkdir()
        for seq in sorted(lines):
            if seq > cp.size:
                break
            entry = orjson.loads(lines[seq])
            ts = entry.get("timestamp") if isinstance(entry, dict) else None
            if isinstance(ts, int | float) and lo <= ts < hi:
                (destination / "proofs" / f"seq-{seq}.tlog-proof").write_text(make_proof(leaves, cp, seq))
    report = compliance_report(TrailReader(trail_dir, public_keys=[key]), start, end)
    (destination / "report.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    (destination / "report.md").write_text(render_markdown(report))
    (destination / "README.md").write_text(
        README.format(
            trail_id=reader.trail_id,
            start=report["period"]["start"],
            end=report["period"]["end"],
            segments=len(segments),
            count=count,
            key_id=key.key_id,
            origin=reader.origin,
        )
    )
    manifest = {
        "trail_id": reader.trail_id,
        "entries_in_period": count,
        "chain_valid": report["chain"]["valid"],
        "files": {
            str(p.relative_to(destination)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(destination.rglob("*"))
            if p.is_file()
        },
    }
    (destination / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest
