"""Read-only access to a trail folder (for the CLI, exports and auditors): never writes, never locks out writers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from claw_governance.audit.keys import KEY_FILE, PUBLIC_KEY_FILE, PublicKey, public_key_from_text
from claw_governance.audit.layout import (
    GENERATION_SHIFT,
    iter_lines,
    latest_for_path,
    list_segments,
    origin_for,
    parse_entry,
    path_keys,
)
from claw_governance.audit.note import parse_checkpoint
from claw_governance.audit.trail import query_entries
from claw_governance.audit.verify import (
    Anchor,
    VerifyReport,
    Witness,
    anchor_from_dict,
    load_trail_meta,
    verify_directory,
)
from claw_governance.errors import AuditError


class TrailReader:
    """A trail folder opened for reading; ``entries``, ``query`` and ``verify`` as on ``AuditTrail``.

    ``public_keys``: the keys to trust; else the governor key found in ``state_path``. Keys listed in the
    folder's ``trail.json`` are never trusted. ``store``: a state store whose checkpoints (for this trail and
    for this folder) are checked as anchors outside the log. ``witnesses``: a WitnessClient whose latest
    checkpoints for this trail's origin are fetched and checked.
    """

    def __init__(
        self,
        path: Path,
        *,
        public_keys: list[PublicKey] | None = None,
        state_path: Path | None = None,
        store: Any = None,
        witnesses: Any = None,
    ) -> None:
        self.path = path
        if not path.is_dir():
            raise AuditError(f"{path}: no such audit trail folder")
        try:
            self.meta = load_trail_meta(path)
        except ValueError as exc:
            raise AuditError(str(exc)) from None
        self.trail_id: str = self.meta["trail_id"]
        self.origin = origin_for(self.trail_id)
        self.public_keys: list[PublicKey] = list(public_keys or [])
        self.key_note = "given" if public_keys else "none"
        if not public_keys and state_path is not None and (state_path / KEY_FILE).exists():
            self.public_keys = [public_key_from_text((state_path / KEY_FILE).read_bytes())]
            self.key_note = str(state_path / KEY_FILE)
        elif not public_keys and state_path is not None and (state_path / PUBLIC_KEY_FILE).exists():
            self.public_keys = [public_key_from_text((state_path / PUBLIC_KEY_FILE).read_bytes())]  # encrypted key
            self.key_note = str(state_path / PUBLIC_KEY_FILE)
        self.store = store
        self.witnesses = witnesses

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

    def lines(self) -> Iterator[bytes]:
        """Every complete line, oldest first (the Merkle tree's leaves, with their newline)."""
        for _, segment in list_segments(self.path):
            for line in iter_lines(segment):
                if line.endswith(b"\n"):
                    yield line

    def query(
        self,
        agent_id: str | None = None,
        type: str | None = None,
        action: str | None = None,
        allowed: bool | None = None,
        outcome: str | None = None,
        since: float | str | date | datetime | None = None,
        until: float | str | date | datetime | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """See ``AuditTrail.query``."""
        return list(
            query_entries(
                self.entries(),
                agent_id=agent_id,
                type=type,
                action=action,
                allowed=allowed,
                outcome=outcome,
                since=since,
                until=until,
                limit=limit,
            )
        )

    def known_origin(self) -> str | None:
        """The origin the state store knows for this folder (None if it knows none)."""
        if self.store is None:
            return None
        anchor = anchor_from_dict(latest_for_path(self.store, self.path), "the state store")
        if anchor is None or anchor.note is None:
            return None
        try:
            return parse_checkpoint(anchor.note).origin
        except ValueError:
            return None

    def outside_anchors(self) -> list[Anchor]:
        """The state store's checkpoints for this trail (and for this folder, when it is the same trail)."""
        anchors: list[Anchor] = []
        if self.store is not None:
            for key in (self.trail_id, *path_keys(self.path)):
                anchor = anchor_from_dict(self.store.latest_checkpoint(key), "the state store")
                if anchor is not None:
                    anchors.append(
                        Anchor(anchor.seq & ((1 << GENERATION_SHIFT) - 1), anchor.hash, anchor.source, anchor.note)
                    )
        if self.witnesses is not None:
            anchors.extend(self.witnesses.latest_anchors(self.origin))
        return anchors

    def verify(
        self, *, witnesses: list[Witness] | None = None, min_witnesses: int = 0, require_anchored: bool = False
    ) -> VerifyReport:
        """Verify the folder with the trusted keys, the state store's checkpoints and the witnesses'."""
        known = self.known_origin()
        anchors = self.outside_anchors()
        if known is not None and known != self.origin:
            anchors = [a for a in anchors if a.source != "the state store" or self.origin in (a.note or "")]
        wit = witnesses if witnesses is not None else (self.witnesses.trusted() if self.witnesses else [])
        report = verify_directory(
            self.path,
            trusted_keys=self.public_keys,
            anchors=anchors,
            witnesses=wit,
            min_witnesses=min_witnesses,
            require_anchored=require_anchored,
            key_source=self.key_note,
            expected_origin=known,
        )
        if self.witnesses is not None:
            report = self.witnesses.check_origins(report, self.public_keys, self.replaced_origins())
        return report

    def replaced_origins(self) -> set[str]:
        """The trails this one replaced, as its first (reset) entry names them."""
        for entry in self.entries():
            details = entry.get("details")
            if entry.get("type") != "reset" or not isinstance(details, dict):
                return set()
            found = {str(o) for o in details.get("previous_origins") or [] if isinstance(o, str)}
            if isinstance(details.get("old_origin"), str):
                found.add(details["old_origin"])
            return found
        return set()
