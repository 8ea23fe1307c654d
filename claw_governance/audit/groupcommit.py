"""Group commit for ``durability="fsync"``: callers wait for an fsync that covers their entry.

Leader/follower, no thread of its own: a caller whose entry is not yet synced and finds no fsync in flight
becomes the leader. It reads how far the trail has been written, fsyncs, publishes that seq as synced and
wakes the others. A caller that arrives while an fsync is in flight waits for it; if that fsync does not cover
its entry (it was written after the fsync began), it leads the next one when this one ends. One fsync
therefore covers every entry written before it began, and while it is in flight the next group gathers.

Before its fsync a leader may wait a little for more entries (like PostgreSQL's ``commit_delay``), only when
several threads are committing: until as many entries are written as the previous group held (the threads it
released have written again) or ``commit_delay`` has passed, whichever is first. Without it, every other
group would hold only the threads that happened to be awake when the fsync began.

Durability: ``wait(seq)`` returns only once ``synced >= seq``, and ``synced`` only ever takes a value read by a
leader *before* its successful fsync of the descriptor those entries were written to (or the seq a rotating
writer fsynced the old segment up to). A failed fsync raises ``AuditError`` in every caller waiting on it.
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
    """Group commit state of one trail. ``fd()`` is the descriptor to sync, ``written()`` the seq written so
    far; ``on_error`` is told about a failed fsync (the trail then reports it in its health)."""

    def __init__(
        self, fd: Callable[[], int], written: Callable[[], int], on_error: Callable[[BaseException], None]
    ) -> None:
        self._fd = fd
        self._written = written
        self._on_error = on_error
        self.lock = threading.Lock()  # held while the descriptor is synced; rotation swaps it under this lock
        self.synced = 0
        self.fsyncs = 0  # group commits done (entries / fsyncs = mean group size)
        self.commit_delay = 0.0005  # at most this long, a leader waits for the previous group to write again
        self.last_error: str | None = None
        self.last_fsync = 0.0  # seconds the last fsync took
        state = threading.Lock()
        self._cond = threading.Condition(state)  # followers wait here for the fsync in flight
        self._gather = threading.Condition(state)  # a gathering leader waits here for more entries
        self._leading = False
        self._gathering = False
        self._errors = 0
        self._last_group = 0

    def mark_synced(self, seq: int) -> None:
        """Everything up to ``seq`` is on disk (the rotating writer fsynced the old segment itself)."""
        with self._cond:
            if seq > self.synced:
                self.synced = seq
            self._cond.notify_all()

    def wait(self, seq: int) -> None:
        """Block until an fsync covers ``seq`` (leading one if none is in flight); AuditError if it failed."""
        if self.synced >= seq:
            return
        cond = self._cond
        with cond:
            errors = self._errors
            if self._gathering:
                self._gather.notify()  # a leader is waiting for the group to fill: one more entry is in
            while True:
                if self.synced >= seq:
                    return
                if self._errors != errors:
                    raise AuditError(f"cannot fsync the audit trail: {self.last_error}")
                if not self._leading:
                    self._leading = True
                    break
                cond.wait()
        self._lead()
        if self.synced < seq:  # (only after a failed fsync: the entry was written before it began)
            raise AuditError(f"cannot fsync the audit trail: {self.last_error}")

    def _lead(self) -> None:
        cond = self._cond
        error: BaseException | None = None
        synced_to = -1  # set only after a successful fsync
        try:
            group = self._last_group
            if group > 1 and self.commit_delay:
                deadline = time.monotonic() + self.commit_delay
                with cond:
                    self._gathering = True
                    try:
                        while self._written() - self.synced < group:
                            left = deadline - time.monotonic()
                            if left <= 0:
                                break
                            self._gather.wait(left)
                    finally:
                        self._gathering = False
            with self.lock:
                target = self._written()  # every entry up to here was written before the fsync begins
                started = time.monotonic()
                try:
                    fd = self._fd()
                    if fd < 0:
                        raise OSError(errno.EBADF, "the audit trail is closed")
                    os.fsync(fd)
                    synced_to = target
                except OSError as exc:
                    error = exc
                self.last_fsync = time.monotonic() - started
        finally:
            with cond:
                if synced_to >= 0:
                    if synced_to > self.synced:
                        self._last_group = synced_to - self.synced
                        self.synced = synced_to
                    self.fsyncs += 1
                elif error is not None:
                    self.last_error = f"{type(error).__name__}: {error}"
                    self._on_error(error)
                    self._errors += 1
                self._leading = False
                cond.notify_all()  # the covered return; the first uncovered one leads the next fsync

    def stop(self) -> None:
        """Wait for an fsync in flight to end (the trail closes its descriptor next)."""
        with self._cond:
            while self._leading:
                self._cond.wait(0.05)
