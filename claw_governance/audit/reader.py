"""Read-only access to a trail folder (for the CLI, exports and auditors): never writes, never locks out writers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from claw_governance.audit.keys import KEY_FILE, PUBLIC_KEY_FILE, PublicKey
from claw_governance.audit.layout import iter_lines, list_segments, parse_entry
from claw_governance.audit.trail import query_entries
from claw_governance.audit.verify import Anchor, VerifyReport, anchor_from_dict, load_trail_meta, verify_directory
from claw_governance.errors import AuditError


class TrailReader:
    """A trail folder opened for reading; ``entries``, ``query`` and ``verify`` as on ``AuditTrail``.

    ``public_keys``: the keys to trust (else the governor key found in ``state_path``, else trail.json's).
    ``store``: a state store whose ``latest_checkpoint`` is checked as an anchor outside the log.
    """

    def __init__(self, path: Path, *, public_keys: list[PublicKey] | None = None, state_path: Path | None = None,
                 store: Any = None) -> None:
        self.path = path
        if not path.is_dir():
            raise AuditError(f"{path}: no such audit trail folder")
        try:
            self.meta = load_trail_meta(path)
        except ValueError as exc:
            raise AuditError(str(exc)) from None
        self.trail_id: str = self.meta["trail_id"]
        self.public_keys = public_keys
        self.key_note = "given" if public_keys else "trail.json"
        if public_keys is None and state_path is not None and (state_path / KEY_FILE).exists():
            self.public_keys = [PublicKey.from_text((state_path / KEY_FILE).read_bytes())]
            self.key_note = str(state_path / KEY_FILE)
        elif public_keys is None and state_path is not None and (state_path / PUBLIC_KEY_FILE).exists():
            self.public_keys = [PublicKey.from_text((state_path / PUBLIC_KEY_FILE).read_bytes())]  # encrypted key
            self.key_note = str(state_path / PUBLIC_KEY_FILE)
        self.store = store

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every complete entry, oldest first."""
        for _, segment in list_segments(self.path):
            try:
                for line in iter_lines(segment):
                    entry = parse_entry(line)
                    if entry is not None:
                        yield entry
            except FileNotFoundError:
                continue

    def query(self, agent_id: str | None = None, type: str | None = None, action: str | None = None,
              allowed: bool | None = None, outcome: str | None = None,
              since: float | str | date | datetime | None = None,
              until: float | str | date | datetime | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """See ``AuditTrail.query``."""
        return list(query_entries(self.entries(), agent_id=agent_id, type=type, action=action, allowed=allowed,
                                  outcome=outcome, since=since, until=until, limit=limit))

    def verify(self) -> VerifyReport:
        """Verify the folder with the configured keys and the state store's checkpoint."""
        anchors: list[Anchor] = []
        if self.store is not None:
            anchor = anchor_from_dict(self.store.latest_checkpoint(self.trail_id), "the state store")
            if anchor is not None:
                anchors.append(anchor)
        report = verify_directory(self.path, trusted_keys=self.public_keys, anchors=anchors)
        if self.public_keys is not None and report.key_source == "given":
            return VerifyReport(report.valid, report.entries, report.errors, report.warnings, report.trail_id,
                                report.first_seq, report.last_seq, report.last_hash, report.segments,
                                report.checkpoints, self.key_note)
        return report
