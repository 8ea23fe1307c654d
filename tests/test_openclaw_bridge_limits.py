"""The bridge cannot be exhausted or fooled (issue 13, classes 7 and 8), over real HTTP on 127.0.0.1.

Every test talks to ``claw-gov serve``'s own server (uvicorn with the guarded protocol of limits.py) on an
ephemeral port with raw sockets, so half-open connections, slow bodies and chunked floods are real. Waits
are bounded by generous deadlines (no timing assertions). On the previous code: half-open sockets stayed
open, the slow body got no answer, the chunked body was buffered before the 413, deep JSON was a 500, a
replayed signed request was accepted after a restart, a 16-character token was accepted, and a token holder
could post another agent's after_tool_call failure; these tests failed there.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from claw_governance_openclaw.bridge import BridgeSettings, create_app, sign_request
from claw_governance_openclaw.limits import ServerLimits, server_config, shannon_entropy, token_problem
from hypothesis import given, settings
from hypothesis import strategies as st

from claw_governance import Governor

TOKEN = secrets.token_hex(32)
POLICY = """\
agent: coder
permissions:
  allow: ["tool:read"]
  deny: ["tool:exec"]
"""
LIMITS = ServerLimits(header_timeout_seconds=1.0, keep_alive_seconds=1.0, max_connections=64)


class Server:
    """The bridge app behind the guarded uvicorn server, in a thread, on an ephemeral port."""

    def __init__(self, gov: Governor, limits: ServerLimits = LIMITS, **bridge: Any) -> None:
        app = create_app(gov, BridgeSettings(token=TOKEN, **bridge))
        self.server = uvicorn.Server(server_config(app, "127.0.0.1", 0, limits))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "bridge did not start"
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=30)


def make_gov(root: Path, **settings: Any) -> Governor:
    (root / "policies").mkdir(parents=True, exist_ok=True)
    (root / "policies" / "coder.yaml").write_text(textwrap.dedent(POLICY))
    return Governor(
        policy_path=root / "policies",
        audit_path=root / "audit",
        identity_path=root / "ids",
        state_path=root / "state",
        load_entry_points=False,
        **settings,
    )


@pytest.fixture
def gov(tmp_path: Path) -> Iterator[Governor]:
    with make_gov(tmp_path) as g:
        yield g


@pytest.fixture
def server(gov: Governor) -> Iterator[Server]:
    s = Server(gov, body_timeout_seconds=1.0, max_body_bytes=256 * 1024)
    yield s
    s.stop()


def closed_by_peer(sock: socket.socket, deadline: float) -> bool:
    """True once the server has closed ``sock`` (EOF or reset) before ``deadline``."""
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def request(body: bytes, path: str = "/v1/openclaw/before_tool_call", headers: dict[str, str] | None = None) -> bytes:
    head = {
        "Host": "bridge",
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        **(headers or {}),
    }
    lines = "".join(f"{k}: {v}\r\n" for k, v in head.items())
    return f"POST {path} HTTP/1.1\r\n{lines}\r\n".encode() + body


def response(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of one HTTP response read from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, json.loads(rest[:length] or b"{}")


# ------------------------------------------------------------------------------------------------ tokens


@pytest.mark.parametrize("token", ["a" * 16, "a" * 64, "abcd" * 8, "0123456789abcdef", "short"])
def test_weak_tokens_are_refused(token: str) -> None:
    problem = token_problem(token)
    assert problem is not None and "\n" not in problem


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=16, max_value=64))
def test_generated_tokens_are_accepted(nbytes: int) -> None:
    assert token_problem(secrets.token_hex(nbytes)) is None
    assert token_problem(secrets.token_urlsafe(nbytes + 8)) is None  # 24+ bytes: 32+ characters


def test_shannon_entropy() -> None:
    assert shannon_entropy("") == 0.0 and shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("ab" * 8) == 1.0


def test_serve_refuses_a_weak_token_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "coder.yaml").write_text(POLICY)
    env = {**os.environ, "CLAW_BRIDGE_TOKEN": "a" * 16}
    claw_gov = Path(sys.executable).with_name("claw-gov")
    result = subprocess.run(
        [
            str(claw_gov),
            "serve",
            "--policies",
            str(tmp_path / "policies"),
            "--audit",
            str(tmp_path / "audit"),
            "--port",
            "0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "bridge token" in lines[0], result.stderr


# ------------------------------------------------------------------------------------------ exhaustion


def test_half_open_connections_are_closed_within_the_header_timeout(server: Server) -> None:
    socks: list[socket.socket] = []
    try:
        for i in range(1000):
            sock = server.connect()
            if i % 2:
                sock.sendall(b"POST /v1/openclaw/before_tool_call HTTP/1.1\r\nHost: x\r\n")  # a head never ends
            socks.append(sock)
        deadline = time.monotonic() + 20  # header timeout 1 s; generous for a loaded machine
        still_open = [s for s in socks if not closed_by_peer(s, deadline)]
        assert still_open == []
    finally:
        for sock in socks:
            sock.close()
    # the server still answers afterwards
    with server.connect() as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert response(sock)[0] == 200


def test_a_slow_body_is_answered_408_in_time(server: Server) -> None:
    body = json.dumps({"event": {"toolName": "read"}, "ctx": {"agentId": "coder"}}).encode()
    with server.connect() as sock:
        sock.sendall(request(body)[: -len(body) + 5])  # the head and 5 bytes of the body, then nothing
        status, answer = response(sock)
        assert status == 408 and "not received within" in answer["error"]


def test_a_chunked_flood_is_refused_before_it_is_buffered(server: Server) -> None:
    head = (
        f"POST /v1/openclaw/before_tool_call HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"10000\r\n" + b"[" * 0x10000 + b"\r\n"  # 64 KiB per chunk, up to 200 MB
    sent = 0
    with server.connect() as sock:
        sock.sendall(head)
        try:
            while sent < 200 * 1024 * 1024:
                sock.sendall(chunk)
                sent += 0x10000
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: it stopped reading long before 200 MB
        try:
            status, answer = response(sock)
        except (ConnectionResetError, IndexError, ValueError):
            status, answer = 413, {"error": "request body too large (closed)"}
    assert status == 413 and "too large" in answer["error"]
    assert sent < 64 * 1024 * 1024  # the flood was cut off (limit 256 KiB)


DEEP_BUT_PARSEABLE = b'{"event": {"p": ' + b"[" * 100 + b"]" * 100 + b'}, "ctx": {}}'  # past the 64-level limit


@pytest.mark.parametrize("body", [b"[" * 1500 + b"]" * 1500, b'{"a":' * 1200 + b"1" + b"}" * 1200, DEEP_BUT_PARSEABLE])
def test_deep_json_is_a_400_with_one_line(server: Server, body: bytes) -> None:
    with server.connect() as sock:
        sock.sendall(request(body))
        status, answer = response(sock)
    assert status == 400 and answer["error"].startswith("request body is nested too deeply")


def test_malformed_json_is_a_400_with_one_line(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(request(b'{"event": {'))
        status, answer = response(sock)
    assert status == 400 and answer == {"error": "request body is not JSON"}


def test_connections_beyond_the_limit_are_refused(gov: Governor) -> None:
    s = Server(gov, ServerLimits(header_timeout_seconds=30, keep_alive_seconds=30, max_connections=8))
    socks = [s.connect() for _ in range(40)]
    try:
        deadline = time.monotonic() + 10
        refused = [sock for sock in socks[8:] if closed_by_peer(sock, deadline)]
        assert len(refused) >= 32 - 1  # every connection past the limit is closed at once
    finally:
        for sock in socks:
            sock.close()
        s.stop()


# --------------------------------------------------------------------------------------------- replay


def test_a_signed_request_replayed_after_a_restart_is_refused(tmp_path: Path) -> None:
    secret = secrets.token_hex(32)
    path = "/v1/openclaw/before_tool_call"
    body = json.dumps(
        {"event": {"toolName": "read", "params": {}, "toolCallId": "c1", "runId": "r1"}, "ctx": {"agentId": "coder"}}
    ).encode()
    headers = {"X-Claw-Agent": "coder", **sign_request(secret, path, body)}
    answers = []
    for _ in range(2):  # the same captured request, to a bridge restarted over the same state store
        with make_gov(tmp_path) as gov:
            s = Server(gov, require_signature=True, agent_keys={"coder": secret})
            try:
                with s.connect() as sock:
                    sock.sendall(request(body, path, headers))
                    answers.append(response(sock))
            finally:
                s.stop()
    assert answers[0][0] == 200 and answers[0][1]["decision"] == "allow"
    assert answers[1][0] == 401 and "replayed" in answers[1][1]["error"]


# --------------------------------------------------------------------------------- after_tool_call


def _hook(tool: str, agent: str, call_id: str, **event: Any) -> dict[str, Any]:
    return {
        "event": {"toolName": tool, "params": {}, "toolCallId": call_id, "runId": "r1", **event},
        "ctx": {"agentId": agent},
    }


def _post(server: Server, path: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    with server.connect() as sock:
        sock.sendall(request(json.dumps(payload).encode(), path))
        return response(sock)


def test_forged_and_repeated_after_tool_call_reports_are_refused_and_audited(gov: Governor, server: Server) -> None:
    before, after = "/v1/openclaw/before_tool_call", "/v1/openclaw/after_tool_call"
    gov.agent("victim")
    status, decision = _post(server, before, _hook("read", "coder", "c1"))
    assert status == 200 and decision["decision"] == "allow" and decision["receipt"]
    trust = gov.trust_score("coder")
    # forged: no receipt, a guessed receipt, another agent's name, an unknown call
    for forged in (
        {**_hook("read", "coder", "c1", error="boom")},
        {**_hook("read", "coder", "c1", error="boom"), "receipt": "guess"},
        {**_hook("read", "victim", "c1", error="boom"), "receipt": decision["receipt"]},
        {**_hook("read", "victim", "nope", error="boom"), "receipt": decision["receipt"]},
    ):
        status, answer = _post(server, after, forged)
        assert status == 409 and "refused" in answer["error"]
    assert gov.trust_score("coder") == trust and gov.trust_score("victim") == 100
    # the genuine report is accepted once; the same report again is refused
    genuine = {**_hook("read", "coder", "c1", result={"content": "ok"}), "receipt": decision["receipt"]}
    assert _post(server, after, genuine) == (200, {"ok": True, "recorded": "agent_action"})
    status, _ = _post(server, after, genuine)
    assert status == 409
    rejected = gov.audit.query(type="report_rejected")
    assert len(rejected) == 5 and {e["agent_id"] for e in rejected} == {"coder", "victim"}
    assert len(gov.audit.query(type="agent_action")) == 1


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


JSON_VALUES = st.recursive(
    # orjson reads integers beyond 64 bits as floats (lossy): hook payloads carry none, so the property is stated
    # for the integers a JSON parser keeps exactly
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, st.integers(min_value=1, max_value=8))
def test_parse_json_accepts_exactly_what_fits_the_depth(value: Any, limit: int) -> None:
    from claw_governance_openclaw.limits import BodyError, parse_json

    body = json.dumps(value).encode()
    if _depth(value) <= limit:
        assert parse_json(body, limit) == value
    else:
        with pytest.raises(BodyError) as refused:
            parse_json(body, limit)
        assert refused.value.status == 400 and "nested too deeply" in refused.value.message


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_parse_json_never_raises_anything_but_a_400(body: bytes) -> None:
    from claw_governance_openclaw.limits import BodyError, parse_json

    try:
        parse_json(body, 64)
    except BodyError as exc:
        assert exc.status == 400 and "\n" not in exc.message
