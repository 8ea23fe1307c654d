"""Noticing, for the price of one ``epoll_wait``, that the segment being written was unlinked, replaced or sealed.

The writer must deny the next append once its segment is gone (the audit folder deleted while the governor
runs). An ``fstat`` per append tells (link count 0), but in CPython it costs 1.3-1.7 µs: it builds a
stat_result of twenty fields. On Linux an inotify watch on the segment for ``IN_ATTRIB`` does the same job:
the kernel queues the event synchronously inside the ``unlink(2)``, ``rename(2)`` over it, ``link(2)`` or
``chmod(2)`` that changes the link count or the mode, before that call returns to whoever made it. A
non-blocking ``epoll_wait`` on the inotify descriptor before each append therefore sees every such change made
before the append began; the writer then drains the events and does the full ``fstat`` check as before. A queue
overflow or a removed watch also makes the descriptor readable, so they too lead to the full check.

Other writers appending change the size, which the writer notices with an ``lseek`` (no event needed).

inotify only sees changes made through this kernel: on a network or FUSE file system another host could
delete the segment unseen. So the watch is used only on local file systems known to report them (ext4, XFS,
Btrfs, tmpfs, overlayfs, ZFS, F2FS); elsewhere, where inotify is missing (not Linux, no libc) or the
per-user limit of inotify instances is reached, :func:`open_watch` returns None and the writer keeps the
``fstat`` per append. A child process made by
``fork`` shares its parent's inotify descriptor (reading it there would steal the parent's events), so
:data:`FORKED` callbacks switch every watch inherited by a child to "always check".
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import sys
import weakref
from collections.abc import Callable
from pathlib import Path

__all__ = ["SegmentWatch", "open_watch"]

_IN_ATTRIB = 0x00000004
_IN_DELETE_SELF = 0x00000400
_IN_MOVE_SELF = 0x00000800
_IN_DONT_FOLLOW = 0x02000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

# statfs(2) f_type of the local file systems whose changes inotify reports (linux/magic.h).
_LOCAL_FS = frozenset(
    {
        0xEF53,  # ext2/3/4
        0x58465342,  # XFS
        0x9123683E,  # Btrfs
        0x01021994,  # tmpfs
        0x794C7630,  # overlayfs
        0x2FC12FC1,  # ZFS
        0xF2F52010,  # F2FS
    }
)

_libc: ctypes.CDLL | None = None
_LIVE: weakref.WeakSet[SegmentWatch] = weakref.WeakSet()


def _load_libc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name, use_errno=True)
            libc.inotify_init1.argtypes = [ctypes.c_int]
            libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
            libc.statfs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        except (OSError, AttributeError):
            return None
        _libc = libc
    return _libc


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _always(_timeout: float = 0) -> list[tuple[int, int]]:
    """The readiness answer of a watch that can no longer be trusted: always "something changed"."""
    return [(-1, 0)]


class SegmentWatch:
    """One inotify instance watching the segment being written. ``ready(0)`` is non-empty when something may
    have changed since the last :meth:`drain` (then do the full ``fstat`` check)."""

    def __init__(self, libc: ctypes.CDLL, fd: int) -> None:
        self._libc = libc
        self._fd = fd
        self._wd = -1
        # A trail dropped without close() must not keep its inotify instance (a per-user limit, 128 by default).
        self._release = weakref.finalize(self, _close_quietly, fd)
        self._epoll = select.epoll(1)
        self._epoll.register(fd, select.EPOLLIN)
        # A bound method, so the append path makes one call: epoll_wait(timeout 0, at most one event).
        self.ready: Callable[[float], list[tuple[int, int]]] = self._epoll.poll
        _LIVE.add(self)

    def watch(self, path: Path) -> bool:
        """Watch ``path`` (the new segment) instead of the previous one; False if the watch could not be added
        (the caller must then treat every append as "something changed")."""
        if self._fd < 0:
            self.ready = _always
            return False
        if self._wd >= 0:
            self._libc.inotify_rm_watch(self._fd, self._wd)  # queues IN_IGNORED: one full check follows
            self._wd = -1
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), _IN_ATTRIB | _IN_DELETE_SELF | _IN_MOVE_SELF)
        if wd < 0:
            self.ready = _always
            return False
        self._wd = wd
        return True

    def watch_place(self, folder: Path, lock_file: Path) -> bool:
        """Also watch the trail's lock file and the folder with each of its ancestors, for as long as the
        writer lives: a rename of the folder (``mv audit audit.x && cp -a audit.x audit``) or of any folder
        above it, a symlink on the way pointed elsewhere, and a lock file deleted or replaced, then lead to
        the full check too (the segment's own watch sees none of them: its name and link count stay the
        same). False if a watch could not be added (the caller must then check in full on every append)."""
        if self._fd < 0:
            return False
        places = [(lock_file, _IN_ATTRIB | _IN_DELETE_SELF | _IN_MOVE_SELF)]
        for d in (folder, *folder.parents):
            places.append((d, _IN_DELETE_SELF | _IN_MOVE_SELF))
            if d.is_symlink():  # the link itself too: pointing it elsewhere changes no folder it leads to
                places.append((d, _IN_ATTRIB | _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_DONT_FOLLOW))
        for place, mask in places:
            if self._libc.inotify_add_watch(self._fd, os.fsencode(place), mask) < 0:
                self.ready = _always
                return False
        return True

    def drain(self) -> None:
        """Read and drop every queued event (before the full check, so a change after it is not lost)."""
        if self.ready is _always:
            return
        while True:
            try:
                if not os.read(self._fd, 65536):
                    return
            except BlockingIOError:
                return
            except OSError:
                self.ready = _always
                return

    def _forked(self) -> None:
        # In a child the inotify instance is the parent's: reading it would steal the parent's events and
        # changing its watches would blind the parent. Drop the child's references; check every append here.
        self.close()

    def close(self) -> None:
        """Release the inotify descriptor."""
        self.ready = _always
        with contextlib.suppress(OSError, ValueError):
            self._epoll.close()
        if self._fd >= 0:
            self._release()  # closes the descriptor (once)
            self._fd = -1


def _local_fs(libc: ctypes.CDLL, folder: Path) -> bool:
    """True if ``folder`` is on a local file system whose changes inotify reports (see ``_LOCAL_FS``)."""
    buf = ctypes.create_string_buffer(256)  # struct statfs (120 bytes on 64-bit Linux); f_type comes first
    if libc.statfs(os.fsencode(folder), buf) != 0:
        return False
    f_type = ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF
    return f_type in _LOCAL_FS


def open_watch(folder: Path) -> SegmentWatch | None:
    """A new watch for segments in ``folder``, or None where inotify cannot be relied on (the caller then
    falls back to an fstat per append)."""
    if os.environ.get("CLAW_AUDIT_NO_INOTIFY"):
        return None
    libc = _load_libc()
    if libc is None:
        return None
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent  # (the writer creates the folder later; it lives on its parent's system)
    if not _local_fs(libc, existing):
        return None
    fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
    if fd < 0:
        return None  # EMFILE: the per-user limit of inotify instances (fs.inotify.max_user_instances)
    try:
        return SegmentWatch(libc, fd)
    except OSError:
        os.close(fd)
        return None


def _after_fork_in_child() -> None:
    for watch in list(_LIVE):
        watch._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
