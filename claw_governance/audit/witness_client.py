"""The governor's side of c2sp.org/tlog-witness: send each checkpoint to the configured witnesses.

Runs on the trail's background checkpoint thread, never on a tool call's path: a witness that is down
costs a timeout on that thread, shows in ``health()`` (and so in ``health_check()``), and leaves the
entries after the last cosigned checkpoint as an *unwitnessed tail* in ``verify``.

To prove consistency from whatever size a witness last cosigned, the client keeps the leaf hashes since the
oldest size any witness still needs (32 bytes per entry; a compact range stands in for everything before).
"""

from __future__ import annotations

import base64
import dataclasses
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from claw_governance.audit.keys import PublicKey
from claw_governance.audit.layout import CHECKPOINT_FILE, WITNESSED_FILE
from claw_governance.audit.merkle import CompactRange, LeafHashes, consistency_proof
from claw_governance.audit.note import Checkpoint, parse_checkpoint, parse_note
from claw_governance.audit.trust import WitnessSpec
from claw_governance.audit.verify import Anchor, VerifyReport, Witness


class WitnessClient:
    """Submits checkpoints to ``specs`` (those with a URL) and fetches their latest for verification."""

    def __init__(self, specs: list[WitnessSpec], *, timeout: float = 2.0) -> None:
        self.specs = specs
        self.timeout = timeout
        self._lock = threading.Lock()
        # One submission at a time: the mirror thread (a checkpoint made during an append) and a caller of
        # checkpoint() may both submit; unserialised, both would start from the same old size and the older
        # checkpoint would get a 409 naming the newer size, reported as a "conflict" (a false alarm).
        self._submitting = threading.Lock()
        self._leaves = LeafHashes()
        self._sizes: dict[str, int] = {}
        self._status: dict[str, dict[str, Any]] = {
            s.witness.name: {"name": s.witness.name, "url": s.url, "status": "unknown", "size": 0, "last_error": None}
            for s in specs
        }

    # ------------------------------------------------------------------------------------ tree feed

    def attach(self, tree: CompactRange) -> None:
        """Start keeping leaves from the tree the writer opened with."""
        with self._lock:
            self._leaves = LeafHashes(tree.copy())

    def add_leaves(self, leaves: list[bytes]) -> None:
        """The writer merged these leaf hashes into its tree."""
        with self._lock:
            for leaf in leaves:
                self._leaves.add(leaf)

    # ------------------------------------------------------------------------------------ submission

    def _post(self, url: str, body: bytes) -> tuple[int, bytes]:
        request = urllib.request.Request(
            url + "/add-checkpoint", data=body, method="POST", headers={"Content-Type": "text/plain"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def submit(self, cp: Checkpoint, trail: Any) -> None:
        """Send ``cp`` to every witness with a URL; keep the cosignatures in the trail folder."""
        with self._submitting:
            self._submit_all(cp, trail)

    def _submit_all(self, cp: Checkpoint, trail: Any) -> None:
        got: list[Any] = []
        for spec in self.specs:
            if spec.url is None:
                continue
            status = self._status[spec.witness.name]
            try:
                sig = self._submit_one(spec, cp)
            except (OSError, ValueError) as exc:
                status.update(status="down", last_error=f"{type(exc).__name__}: {exc}", checked=time.time())
                continue
            if sig is None:
                continue
            status.update(status="ok", size=cp.size, last_error=None, checked=time.time())
            got.extend(sig)
        if got:
            self._store(cp.with_signatures(got), trail)
        self._trim()

    def _submit_one(self, spec: WitnessSpec, cp: Checkpoint) -> list[Any] | None:
        assert spec.url is not None
        status = self._status[spec.witness.name]
        old = self._sizes.get(spec.witness.name, 0)
        if old and cp.size <= old:
            return None  # older than what this witness already cosigned for us (it came in late): nothing to do
        for _attempt in range(2):
            with self._lock:
                try:
                    proof = consistency_proof(old, cp.size, self._leaves) if old else []
                except (ValueError, IndexError):
                    status.update(status="behind", last_error=f"cannot prove consistency from size {old}")
                    return None
            body = (
                f"old {old}\n" + "".join(base64.b64encode(p).decode() + "\n" for p in proof) + "\n" + cp.note()
            ).encode()
            code, reply = self._post(spec.url, body)
            if code == 200:
                _body, sigs = parse_note(cp.text + "\n" + reply.decode())
                good = [s for s in sigs if s.name == spec.witness.name]
                checked = cp.with_signatures(good)
                if checked.cosigned_by(spec.witness.name, spec.witness.key) is None:
                    raise ValueError(f"witness {spec.witness.name} returned no valid cosignature")
                self._sizes[spec.witness.name] = cp.size
                return good
            if code == 409 and reply.strip().isdigit():
                seen = int(reply.strip())
                if seen > cp.size or seen == old:
                    status.update(
                        status="conflict",
                        last_error=(
                            f"witness {spec.witness.name} has cosigned {seen} entries of this trail, more than the "
                            f"{cp.size} it holds now: the trail was cut or rolled back"
                            if seen > cp.size
                            else f"witness {spec.witness.name} holds a different tree of size {seen}: the trail forked"
                        ),
                    )
                    return None
                old = seen
                continue
            status.update(status="refused", last_error=f"HTTP {code}: {reply[:200].decode(errors='replace')}")
            return None
        return None

    def _store(self, cp: Checkpoint, trail: Any) -> None:
        path: Path | None = getattr(trail, "path", None)
        if path is None:
            return
        try:
            with open(path / WITNESSED_FILE, "ab") as fh:
                fh.write(orjson.dumps({"size": cp.size, "note": cp.note()}) + b"\n")
            record = orjson.loads((path / CHECKPOINT_FILE).read_bytes())
            if isinstance(record, dict) and isinstance(record.get("note"), str):
                mine = parse_checkpoint(record["note"])
                if mine.size == cp.size and mine.root == cp.root:
                    from claw_governance.audit.layout import write_json_atomic

                    write_json_atomic(path / CHECKPOINT_FILE, {**record, "note": cp.note()})
        except (OSError, ValueError):
            pass

    def _trim(self) -> None:
        """Forget leaves no witness needs any more (all are at or past them)."""
        with self._lock:
            if not self._sizes or len(self._sizes) < sum(1 for s in self.specs if s.url):
                return
            keep = min(self._sizes.values())
            leaves = self._leaves
            if keep - leaves.first < 4096:
                return
            base = leaves.base.copy()
            for i in range(leaves.first, keep):
                base.append(leaves.leaf(i))
            fresh = LeafHashes(base)
            fresh.data = leaves.data[(keep - leaves.first) * 32 :]
            self._leaves = fresh

    # ------------------------------------------------------------------------------------ reading

    def trusted(self) -> list[Witness]:
        """The witnesses a verification trusts."""
        return [s.witness for s in self.specs]

    def health(self) -> list[dict[str, Any]]:
        """Each witness: name, url, status (ok/down/conflict/refused/behind/unknown), size, last_error."""
        return [dict(v) for v in self._status.values()]

    def any_down(self) -> bool:
        """True if a witness with a URL is not answering or refused our last checkpoint."""
        return any(v["status"] not in ("ok", "unknown") for v in self._status.values() if v["url"])

    def _get(self, url: str) -> bytes | None:
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def latest(self, origin: str) -> list[tuple[WitnessSpec, Checkpoint]]:
        """Each reachable witness's latest cosigned checkpoint for ``origin`` (OSError if one is down)."""
        out = []
        for spec in self.specs:
            if spec.url is None:
                continue
            data = self._get(spec.url + "/latest?origin=" + urllib.parse.quote(origin, safe=""))
            if data is not None:
                out.append((spec, parse_checkpoint(data)))
        return out

    def latest_anchors(self, origin: str) -> list[Anchor]:
        """The witnesses' latest checkpoints as anchors (a witness that cannot be reached is skipped)."""
        anchors = []
        for spec in self.specs:
            if spec.url is None:
                continue
            try:
                data = self._get(spec.url + "/latest?origin=" + urllib.parse.quote(origin, safe=""))
            except (OSError, ValueError) as exc:
                self._status[spec.witness.name].update(status="down", last_error=f"{type(exc).__name__}: {exc}")
                continue
            if data is not None:
                anchors.append(Anchor(0, None, f"witness {spec.witness.name}", data.decode()))
        return anchors

    def origins_signed_by(self, key: PublicKey) -> list[tuple[str, Checkpoint]]:
        """(witness name, checkpoint) of every trail a reachable witness holds that ``key`` signed."""
        found = []
        for spec in self.specs:
            if spec.url is None:
                continue
            items = orjson.loads(self._get(spec.url + "/origins") or b"[]")
            for item in items if isinstance(items, list) else []:
                try:
                    cp = parse_checkpoint(item["note"])
                except (KeyError, TypeError, ValueError):
                    continue
                if cp.signed_by(key):
                    found.append((spec.witness.name, cp))
        return found

    def check_origins(self, report: VerifyReport, keys: list[PublicKey], accounted: set[str]) -> VerifyReport:
        """INVALID if a witness holds another trail signed by a trusted key that this trail does not account
        for (its reset entry names the trails it replaced): the folder was swapped for a fresh trail."""
        errors = list(report.errors)
        for spec in self.specs:
            if spec.url is None:
                continue
            try:
                data = self._get(spec.url + "/origins")
                items = orjson.loads(data or b"[]")
            except (OSError, ValueError):
                errors.append(
                    {
                        "segment": None,
                        "seq": None,
                        "message": f"witness {spec.witness.name} cannot be reached to compare trails",
                    }
                )
                continue
            for item in items if isinstance(items, list) else []:
                origin = item.get("origin") if isinstance(item, dict) else None
                if not isinstance(origin, str) or origin == report.origin or origin in accounted:
                    continue
                try:
                    cp = parse_checkpoint(item["note"])
                except (KeyError, ValueError):
                    continue
                if any(cp.signed_by(k) for k in keys):
                    errors.append(
                        {
                            "segment": None,
                            "seq": None,
                            "message": (
                                f"witness {spec.witness.name} holds trail {origin} ({cp.size} entries) signed by the "
                                f"same key, which this trail does not account for: the trail was deleted or replaced"
                            ),
                        }
                    )
        if len(errors) == len(report.errors):
            return report
        return dataclasses.replace(report, valid=False, errors=tuple(errors))
