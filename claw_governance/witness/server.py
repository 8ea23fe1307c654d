"""The witness: c2sp.org/tlog-witness ``add-checkpoint`` over HTTP, with an Ed25519 ``cosignature/v1``.

For every origin it keeps only the latest checkpoint it cosigned (one JSON file per origin, replaced
atomically under a lock, persisted before it answers). It accepts a checkpoint only if it is signed by one of
the log keys it was given (under the checkpoint's origin as key name), its old size equals the size it last
cosigned for that origin, and the consistency proof from that size verifies: so it never cosigns a smaller
tree, a fork, or a rolled-back log, whatever the log's host says.

Read extensions (not part of tlog-witness, for auditors and for the governor's start-up check):
``GET /latest?origin=<origin>`` returns the latest cosigned checkpoint for that origin (404 if none), and
``GET /origins`` returns every one it holds, as JSON ``[{"origin", "size", "note"}]``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from claw_governance.audit.keys import PublicKey, SigningKey
from claw_governance.audit.merkle import verify_consistency
from claw_governance.audit.note import Checkpoint, cosign, parse_checkpoint

MAX_BODY = 64 * 1024


class WitnessState:
    """The latest cosigned checkpoint per origin, in ``directory`` (or in memory when None)."""

    def __init__(
        self, directory: Path | None, key: SigningKey, name: str, log_keys: list[PublicKey], origin_prefix: str = ""
    ) -> None:
        self.directory = directory
        self.key = key
        self.name = name
        self.log_keys = log_keys
        self.origin_prefix = origin_prefix
        self.lock = threading.Lock()
        self.memory: dict[str, dict[str, Any]] = {}
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def _file(self, origin: str) -> Path:
        assert self.directory is not None
        return self.directory / (hashlib.sha256(origin.encode()).hexdigest()[:32] + ".json")

    def get(self, origin: str) -> dict[str, Any] | None:
        """``{"origin", "size", "root", "note"}`` of the latest cosigned checkpoint, or None."""
        if self.directory is None:
            return self.memory.get(origin)
        try:
            data: dict[str, Any] = json.loads(self._file(origin).read_text())
        except FileNotFoundError:
            return None
        return data

    def all(self) -> list[dict[str, Any]]:
        """Every origin's latest."""
        if self.directory is None:
            return list(self.memory.values())
        out = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return out

    def _put(self, record: dict[str, Any]) -> None:
        if self.directory is None:
            self.memory[record["origin"]] = record
            return
        path = self._file(record["origin"])
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as fh:
            fh.write(json.dumps(record))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def add_checkpoint(self, body: bytes) -> tuple[int, str, str]:
        """Handle one ``add-checkpoint`` body: (HTTP status, content type, response body)."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return 400, "text/plain", "not UTF-8\n"
        head, sep, note = text.partition("\n\n")
        if not sep:
            return 400, "text/plain", "missing the blank line before the checkpoint\n"
        lines = head.split("\n")
        if not lines[0].startswith("old ") or not lines[0][4:].isdigit():
            return 400, "text/plain", "the first line must be 'old <size>'\n"
        old = int(lines[0][4:])
        if len(lines) - 1 > 63:
            return 400, "text/plain", "too many proof lines\n"
        try:
            proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
            cp = parse_checkpoint(note)
        except (binascii.Error, ValueError) as exc:
            return 400, "text/plain", f"malformed request: {exc}\n"
        if any(len(p) != 32 for p in proof):
            return 400, "text/plain", "a proof line is not a 32-byte hash\n"
        if not cp.origin.startswith(self.origin_prefix):
            return 404, "text/plain", "unknown origin\n"
        if not any(cp.signed_by(k) for k in self.log_keys):
            return 403, "text/plain", "no signature from a trusted log key\n"
        if old > cp.size:
            return 400, "text/plain", "old size is larger than the checkpoint size\n"
        with self.lock:
            latest = self.get(cp.origin)
            have = latest["size"] if latest else 0
            if old != have:
                return 409, "text/x.tlog.size", f"{have}\n"
            if latest is not None:
                stored_root = base64.b64decode(latest["root"])
                if old == cp.size:
                    if stored_root != cp.root:
                        return 409, "text/x.tlog.size", f"{have}\n"
                elif not verify_consistency(old, cp.size, stored_root, cp.root, proof):
                    return 422, "text/plain", "the consistency proof does not verify\n"
            elif proof:
                return 422, "text/plain", "the proof must be empty when the old size is 0\n"
            sig = cosign(cp.text, self.name, self.key, int(time.time()))
            signed = Checkpoint(cp.origin, cp.size, cp.root, cp.text, (*cp.signatures, sig))
            self._put(
                {
                    "origin": cp.origin,
                    "size": cp.size,
                    "root": base64.b64encode(cp.root).decode(),
                    "note": signed.note(),
                    "time": time.time(),
                }
            )
        return 200, "text/plain; charset=utf-8", sig.line()


def make_server(state: WitnessState, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server for ``state`` (call ``serve_forever``); ``server.server_address`` has the bound port."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, ctype: str, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if urlsplit(self.path).path.rstrip("/").split("/")[-1] != "add-checkpoint":
                self._send(404, "text/plain", "not found\n")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, "text/plain", "too large\n")
                return
            try:
                status, ctype, body = state.add_checkpoint(self.rfile.read(length))
            except Exception as exc:  # never a traceback to the client; fail closed (no cosignature)
                status, ctype, body = 500, "text/plain", f"{type(exc).__name__}\n"
            self._send(status, ctype, body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            last = url.path.rstrip("/").split("/")[-1]
            if last == "latest":
                origin = (parse_qs(url.query).get("origin") or [""])[0]
                found = state.get(origin)
                if found is None:
                    self._send(404, "text/plain", "unknown origin\n")
                else:
                    self._send(200, "text/plain; charset=utf-8", found["note"])
            elif last == "origins":
                items = [{"origin": r["origin"], "size": r["size"], "note": r["note"]} for r in state.all()]
                self._send(200, "application/json", json.dumps(items))
            else:
                self._send(404, "text/plain", "not found\n")

    return ThreadingHTTPServer((host, port), Handler)
