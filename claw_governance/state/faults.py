"""State-store faults a user can act on: a locked, corrupt or unreadable database, in one line.

The SQLite store turns a driver error into a :class:`StateStoreError` whose text says what is wrong and
where ("state store is locked by another process (/srv/claw/state/state.db)"), so a denied call's reason
and ``health_check()`` tell the operator what to do instead of naming a driver exception class.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from claw_governance.errors import ClawGovernanceError


class StateStoreError(ClawGovernanceError):
    """The state store cannot be used right now; ``str(err)`` is one actionable line naming the file."""

    def __init__(self, message: str, *, kind: str) -> None:
        self.kind = kind  # "locked" | "corrupt" | "readonly" | "closed" | "io" | "error"
        super().__init__(message)


def describe(exc: sqlite3.Error, path: Path | str) -> StateStoreError:
    """The StateStoreError for a SQLite driver error on the database at ``path``."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return StateStoreError(f"state store is locked by another process ({path})", kind="locked")
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return StateStoreError(
            f"state store is corrupt ({path}): {exc}; restore it from a backup or move it "
            "away (a new one is created at the next start)",
            kind="corrupt",
        )
    if "readonly" in text or "read-only" in text:
        return StateStoreError(f"state store is read-only ({path}): check the file's owner and mode", kind="readonly")
    if "closed" in text:
        return StateStoreError(f"state store is closed ({path})", kind="closed")
    if "disk" in text or "i/o" in text or "unable to open" in text:
        return StateStoreError(f"state store cannot be read or written ({path}): {exc}", kind="io")
    return StateStoreError(f"state store error ({path}): {exc}", kind="error")


def translatable(exc: BaseException) -> bool:
    """True for driver errors that are a fault of the store (not a constraint our own code relies on)."""
    return isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError)
