"""Group commit for ``durability="fsync"``: callers wait for an fsync that covers their entry.

The first waiter starts one syncer thread; it fsyncs everything written so far while anyone waits, so
entries written during one fsync ride on the next (with N busy threads each fsync covers about N entries).
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable

from claw_governance.errors import AuditError

__all__ = ["GroupCommit"]


class GroupCommit:
    """Owns the syncer thread and its counters. ``fd()`` is the descriptor to sync, ``written()`` the seq
    written so far; ``on_error`` is told about a failed fsync (the trail then reports it in its health)."""

    def __init__(
        self, fd: Callable[[], int], written: Callable[[], int], on_error: Callable[[BaseException], None]
    ) -> None:
        self._fd = fd
        self._written = written
        self._on_error = on_error
        self.lock = threading.Lock()  # held while the descriptor is synced; rotation swaps it under this lock
        self.synced = 0
        self.fsyncs = 0  # group commits done (entries / fsyncs = mean group size)
        self.commit_delay = 0.0002  # seconds the syncer waits for more entries before each fsync
        self.last_error: str | None = None
        self._cond = threading.Condition(threading.Lock())
        self._wanted = 0
        self._errors = 0
        self._stop = False
        self._thread: threading.Thread | None = None
        self._last_group = 0

    def mark_synced(self, seq: int) -> None:
        """Everything up to ``seq`` is on disk (the rotating writer fsynced the old segment itself)."""
        with self._cond:
            self.synced = max(self.synced, seq)
            self._cond.notify_all()

    def wait(self, seq: int) -> None:
        """Block until an fsync covers ``seq``; AuditError if the fsync failed."""
        if self.synced >= seq:
            return
        cond = self._cond
        with cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="claw-audit-fsync", daemon=True)
                self._thread.start()
            if seq > self._wanted:
                self._wanted = seq
                cond.notify_all()
            errors = self._errors
            while self.synced < seq:
                if self._errors != errors:
                    raise AuditError(f"cannot fsync the audit trail: {self.last_error}")
                cond.wait()

    def _loop(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while not self._stop and self._wanted <= self.synced:
                    cond.wait()
                if self._wanted <= self.synced:
                    return
            if self.commit_delay and self._last_group > 1:
                # Like PostgreSQL's commit_delay, and only when several threads are committing (the last group
                # held more than one entry): let them add their entries to this group before the fsync.
                time.sleep(self.commit_delay)
            error: BaseException | None = None
            with self.lock:
                target = self._written()  # everything up to here was written before we read it
                try:
                    fd = self._fd()
                    if fd < 0:
                        raise OSError(errno.EBADF, "the audit trail is closed")
                    os.fsync(fd)
                except OSError as exc:
                    error = exc
            with cond:
                if error is None:
                    self._last_group = target - self.synced
                    self.synced = max(self.synced, target)
                    self.fsyncs += 1
                else:
                    self.last_error = f"{type(error).__name__}: {error}"
                    self._on_error(error)
                    self._errors += 1
                    self._wanted = self.synced  # the waiters raise; new appends ask again
                cond.notify_all()

    def stop(self) -> None:
        """Let the syncer finish what is asked and end."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
