"""The checkpoint mirror: copies of each checkpoint outside the log, made off the append path.

For a checkpoint entry at seq ``c`` the mirror signs the tree of size ``c`` (the entry included) and stores
it in the state store (under the trail id and under the folder, see ``layout.path_key``), in
``checkpoint.json``, and at the witnesses. It never goes backwards: a checkpoint older than the one it
stored is skipped.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from claw_governance.audit.layout import CHECKPOINT_FILE, GENERATION_SHIFT, path_keys, write_json_atomic
from claw_governance.audit.merkle import CompactRange

if TYPE_CHECKING:
    from claw_governance.audit.trail import AuditTrail

__all__ = ["CheckpointMirror"]


class CheckpointMirror:
    """Owns the background thread, the pending checkpoint and the newest stored seq of one trail."""

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail
        self._lock = threading.Lock()
        self._pending: tuple[int, str, float, CompactRange] | None = None
        self.written = 0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop = False

    def offer(self, seq: int, digest: str, created: float, tree: CompactRange, *, defer: bool) -> None:
        """Store the checkpoint of ``tree`` (head entry ``seq`` with ``digest``): now, or in the background."""
        if not defer:
            self.persist(seq, digest, created, tree)
            return
        with self._lock:
            self._pending = (seq, digest, created, tree)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="claw-audit-checkpoint", daemon=True)
                self._thread.start()
        self._wake.set()

    def persist(self, seq: int, digest: str, created: float, tree: CompactRange) -> None:
        """Sign and store one checkpoint outside the log; a failure shows in the trail's health."""
        trail = self.trail
        with self._lock:
            if seq <= self.written:
                return
            cp = trail.signed_checkpoint(tree)
            note = cp.note()
            record: dict[str, Any] = {
                "trail_id": trail.trail_id,
                "origin": trail.origin,
                "seq": seq,
                "hash": digest,
                "note": note,
                "key_id": trail.key.public.key_id,
                "created": created,
            }
            try:
                if trail.store is not None:
                    trail.store.put_checkpoint(trail.trail_id, seq, digest, note, created)
                    for key in path_keys(trail.path) if trail.path is not None else ():
                        trail.store.put_checkpoint(
                            key, (trail.generation << GENERATION_SHIFT) | seq, digest, note, created
                        )
                if trail.path is not None:
                    write_json_atomic(trail.path / CHECKPOINT_FILE, record, sync=trail.durability == "fsync")
                self.written = seq
            except Exception as exc:  # the entry itself is safe; show the missing outside copy in health
                trail._last_error = f"checkpoint not stored outside the log: {type(exc).__name__}: {exc}"
        if trail.witnesses is not None:
            trail.witnesses.submit(cp, trail)

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                pending, self._pending = self._pending, None
            if pending is not None:
                self.persist(*pending)
            if self._stop:
                return

    def drain(self) -> None:
        """Stop the background thread and store any checkpoint it had not stored yet."""
        thread = self._thread
        if thread is not None:
            self._stop = True
            self._wake.set()
            thread.join(timeout=30)
            self._thread = None
            self._stop = False
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self.persist(*pending)
