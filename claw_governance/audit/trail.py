"""A minimal hash-chained JSON Lines trail (to be replaced by the full implementation of issue 3)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from claw_governance.audit.redaction import DEFAULT_REDACTOR
from claw_governance.config import GovernorConfig
from claw_governance.model import AuditEvent

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Result of ``verify()``: ``valid``, number of ``entries``, and ``errors`` (segment, seq, message)."""

    valid: bool
    entries: int
    errors: tuple[dict[str, Any], ...] = field(default_factory=tuple)


def _canonical(entry: dict[str, Any]) -> bytes:
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=repr)


class AuditTrail:
    """Appends entries with ``seq``/``prev_hash``/``hash``; in memory when ``path`` is None."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._memory: list[bytes] = []
        self._seq = 0
        self._prev = GENESIS
        self._file = None
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
            self._file = open(path / "audit.jsonl", "ab")  # noqa: SIM115 - held open for the trail's life

    def append(self, event: AuditEvent) -> int:
        """Write one entry (reaches the OS before returning); return its seq."""
        redact = DEFAULT_REDACTOR.with_keys(event.sensitive_fields)
        context = redact(dict(event.context)) if event.context is not None else None
        details = redact(dict(event.details)) if event.details is not None else None
        with self._lock:
            entry = {
                "seq": self._seq + 1, "type": event.type, "timestamp": time.time(),
                "agent_id": event.agent_id, "action": event.action,
                "context": context,
                "decision": dict(event.decision) if event.decision is not None else None,
                "policy_hash": event.policy_hash,
                "details": details,
                "prev_hash": self._prev,
            }
            digest = hashlib.sha256(_canonical(entry)).hexdigest()
            entry["hash"] = digest
            line = _canonical(entry) + b"\n"
            if self._file is not None:
                self._file.write(line)
                self._file.flush()
            else:
                self._memory.append(line)
            self._seq += 1
            self._prev = digest
            return self._seq

    def _lines(self) -> Iterator[bytes]:
        if self.path is None:
            yield from list(self._memory)
            return
        with open(self.path / "audit.jsonl", "rb") as fh:
            yield from fh

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every entry, oldest first."""
        for line in self._lines():
            yield orjson.loads(line)

    def verify(self) -> VerifyReport:
        """Recompute the chain."""
        prev, count = GENESIS, 0
        for entry in self.entries():
            count += 1
            claimed = entry.pop("hash", None)
            if entry.get("prev_hash") != prev or hashlib.sha256(_canonical(entry)).hexdigest() != claimed:
                return VerifyReport(False, count, ({"segment": "audit.jsonl", "seq": entry.get("seq"),
                                                    "message": "hash mismatch"},))
            prev = claimed
        return VerifyReport(True, count)

    def query(self, **filters: Any) -> list[dict[str, Any]]:
        """Entries whose fields equal the given filters."""
        return [e for e in self.entries() if all(e.get(k) == v for k, v in filters.items() if v is not None)]

    def health(self) -> dict[str, Any]:
        """Status for health_check()."""
        return {"status": "ok", "entries": self._seq}

    def close(self) -> None:
        """Flush and close."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def open_trail(config: GovernorConfig, store: object = None) -> AuditTrail:
    """The trail for a governor's settings."""
    return AuditTrail(config.audit_path)
