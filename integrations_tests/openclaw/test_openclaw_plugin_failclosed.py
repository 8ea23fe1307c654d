"""The OpenClaw plugin's ``before_tool_call`` handler (openclaw-plugin/index.js, run by the cached Node 26) fails
closed on every answer it cannot trust: only an explicit, well-formed ALLOW from the bridge lets a tool run.

A scripted HTTP server on 127.0.0.1 stands in for the bridge and answers each case differently (malformed JSON,
``{}``, ``block: "true"`` as a string, HTTP errors, redirects to an ALLOW, a slow answer, a stalled body, a
huge body). The handler returned by the plugin's own ``createHandlers`` decides; the test reads what it would
hand to OpenClaw. Anything but ``{block: true, blockReason}`` for a bad answer would let the tool run.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from openclaw_support import PLUGIN_DIR, OpenClawInstall

TOKEN = "plugin-test-token-0123456789"
ALLOW = {"decision": "allow", "reason": "ok", "result": {}}
DENY = {"decision": "deny", "reason": "no", "result": {"block": True, "blockReason": "claw-governance denied exec"}}

# case -> (status, body bytes or JSON-able, extra headers)
CASES: dict[str, tuple[int, Any, dict[str, str]]] = {
    "allow": (200, ALLOW, {}),
    "deny": (200, DENY, {}),
    "empty_object": (200, {}, {}),
    "allow_without_result": (200, {"decision": "allow"}, {}),
    "allow_with_string_block": (200, {"decision": "allow", "result": {"block": "true"}}, {}),
    "allow_with_approval": (200, {"decision": "allow", "result": {"requireApproval": {"title": "t"}}}, {}),
    "deny_with_string_block": (200, {"decision": "deny", "result": {"block": "true", "blockReason": "x"}}, {}),
    "deny_without_reason": (200, {"decision": "deny", "result": {"block": True}}, {}),
    "uppercase_decision": (200, {"decision": "ALLOW", "result": {}}, {}),
    "escalate_without_id": (
        200,
        {"decision": "escalate", "result": {"requireApproval": {"title": "t", "description": "d"}}},
        {},
    ),
    "not_json": (200, b"OK", {"Content-Type": "text/plain"}),
    "json_null": (200, b"null", {}),
    "json_array": (200, b"[]", {}),
    "huge_garbage": (200, b"x" * (3 * 1024 * 1024), {"Content-Type": "text/plain"}),
    "server_error": (500, {"error": "boom"}, {}),
    "unauthorized": (401, {"error": "missing or wrong bridge token"}, {}),
    "no_content": (204, b"", {}),
    # a redirect to an endpoint that answers ALLOW: the plugin must not follow it
    "redirect_307": (307, b"", {"Location": "/redirected/v1/openclaw/before_tool_call"}),
    "redirect_302": (302, b"", {"Location": "/redirected/v1/openclaw/before_tool_call"}),
    "redirect_308": (308, b"", {"Location": "/redirected/v1/openclaw/before_tool_call"}),
}
SLOW = ("slow_answer", "stalled_body")


class ScriptedBridge:
    """Answers ``POST /<case>/v1/openclaw/before_tool_call`` as CASES says; records what it was sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                case = self.path.strip("/").split("/", 1)[0]
                if case == "redirected":  # where the redirects point: an ALLOW
                    status, payload, headers = 200, ALLOW, {}
                elif case == "slow_answer":
                    time.sleep(2.5)
                    status, payload, headers = 200, ALLOW, {}
                elif case == "stalled_body":
                    data = json.dumps(ALLOW).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[:5])
                    self.wfile.flush()
                    time.sleep(2.5)
                    self.close_connection = True  # the plugin gave up long ago; never send the rest
                    return
                else:
                    status, payload, headers = CASES[case]
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                if "Content-Type" not in headers:
                    self.send_header("Content-Type", "application/json")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if status != 204:
                    self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


DRIVER = """
import { pathToFileURL } from "node:url";
const [pluginPath, casesJson] = process.argv.slice(2);
const { resolveSettings, createHandlers } = await import(pathToFileURL(pluginPath).href);
const cases = JSON.parse(casesJson);
const out = {};
const quiet = { warn: () => {}, info: () => {} };
for (const [name, cfg] of Object.entries(cases)) {
  const { beforeToolCall } = createHandlers(resolveSettings(cfg, {}), quiet);
  const event = { toolName: "exec", params: { command: "touch /tmp/pwned" }, toolCallId: "tc-" + name, runId: "r1" };
  const ctx = { agentId: "main", toolName: "exec", toolCallId: "tc-" + name, runId: "r1",
                sessionKey: "agent:main:main" };
  try {
    const result = await beforeToolCall(event, ctx);
    out[name] = result === undefined ? { ran: true } : JSON.parse(JSON.stringify(result));
  } catch (err) {
    out[name] = { threw: String(err) };
  }
}
process.stdout.write(JSON.stringify(out));
"""


@pytest.fixture
def bridge() -> Iterator[ScriptedBridge]:
    server = ScriptedBridge()
    try:
        yield server
    finally:
        server.close()


def run_plugin(install: OpenClawInstall, tmp_path: Path, cases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    driver = tmp_path / "driver.mjs"
    driver.write_text(DRIVER)
    proc = subprocess.run(
        [str(install.node), str(driver), str(PLUGIN_DIR / "index.js"), json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results: dict[str, Any] = json.loads(proc.stdout)
    return results


def test_only_a_well_formed_allow_lets_the_tool_run(
    openclaw_install: OpenClawInstall, bridge: ScriptedBridge, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{bridge.port}"
    cases = {name: {"bridgeUrl": f"{base}/{name}", "token": TOKEN, "timeoutMs": 1000} for name in (*CASES, *SLOW)}
    cases["unreachable"] = {"bridgeUrl": "http://127.0.0.1:9", "token": TOKEN, "timeoutMs": 1000}
    cases["no_token"] = {"bridgeUrl": f"{base}/allow", "timeoutMs": 1000}
    results = run_plugin(openclaw_install, tmp_path, cases)

    assert results.pop("allow") == {"ran": True}  # the control: a proper ALLOW does run
    assert results.pop("deny") == {"block": True, "blockReason": "claw-governance denied exec"}
    assert set(results) == {*CASES, *SLOW, "unreachable", "no_token"} - {"allow", "deny"}
    for name, result in results.items():
        assert result.get("block") is True, (name, result)
        assert isinstance(result.get("blockReason"), str) and "claw-governance" in result["blockReason"], name
        assert "requireApproval" not in result, name
    assert "did not answer within 1000 ms" in results["slow_answer"]["blockReason"]
    assert "unreachable" in results["unreachable"]["blockReason"]
    assert "no bridge token" in results["no_token"]["blockReason"]
    assert "refused this plugin" in results["unauthorized"]["blockReason"]
    assert "redirect" in results["redirect_307"]["blockReason"]

    # every request carried the bearer token; no redirect was followed to the ALLOW endpoint
    followed = [path for path, _, _ in bridge.requests if path.startswith("/redirected/")]
    assert followed == [], followed
    assert all(h.get("authorization") == f"Bearer {TOKEN}" for _, h, _ in bridge.requests)


def test_escalation_answer_becomes_an_approval_request(
    openclaw_install: OpenClawInstall, bridge: ScriptedBridge, tmp_path: Path
) -> None:
    """A well-formed ESCALATE becomes OpenClaw's requireApproval (a human decides), never a plain pass."""
    CASES["escalate"] = (
        200,
        {
            "decision": "escalate",
            "escalationId": "esc-1",
            "reason": "needs a human",
            "result": {
                "requireApproval": {
                    "title": "Approve exec?",
                    "description": "d",
                    "severity": "warning",
                    "timeoutMs": 60000,
                    "allowedDecisions": ["allow-once", "deny"],
                }
            },
        },
        {},
    )
    try:
        base = f"http://127.0.0.1:{bridge.port}"
        results = run_plugin(
            openclaw_install,
            tmp_path,
            {"escalate": {"bridgeUrl": f"{base}/escalate", "token": TOKEN, "timeoutMs": 1000}},
        )
    finally:
        del CASES["escalate"]
    approval = results["escalate"]["requireApproval"]
    assert approval["title"] == "Approve exec?" and approval["timeoutMs"] == 60000
    assert approval["allowedDecisions"] == ["allow-once", "deny"]
    assert results["escalate"].get("block") is None
