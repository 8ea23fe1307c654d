"""End to end: a real OpenClaw 2026.9.6 gateway loads our plugin and runs agent turns whose model is a fake
OpenAI-compatible server on 127.0.0.1 answering with tool calls (``exec`` and ``read``).

Governance (through the bridge, served by uvicorn in this process) denies ``exec`` and allows ``read``:
the ``exec`` never runs, the ``read`` does, and both decisions are in the audit trail. Then the bridge is
stopped and another turn runs: every tool call is blocked (fail closed) with an actionable reason.
Nothing leaves 127.0.0.1: channels, update checks, the remote model catalog and Bonjour are off.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from claw_governance_openclaw.bridge import BridgeSettings, create_app
from openclaw_fake_model import MODEL_ID, FakeModel
from openclaw_support import PLUGIN_DIR, OpenClawInstall, free_port, running_gateway

from claw_governance import Governor

BRIDGE_TOKEN = "e2e-bridge-token-0123456789"
GATEWAY_TOKEN = "e2e-gateway-token-0123456789"
POLICY = """\
agent: main
permissions:
  allow: ["tool:read"]
  deny: ["tool:exec"]
"""


class BridgeServer:
    """The bridge on a uvicorn server in a thread of this process."""

    def __init__(self, gov: Governor) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            create_app(gov, BridgeSettings(token=BRIDGE_TOKEN)),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "bridge did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


@pytest.fixture
def governor(tmp_path: Path) -> Iterator[Governor]:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "main.yaml").write_text(textwrap.dedent(POLICY))
    with Governor(
        policy_path=tmp_path / "policies", audit_path=tmp_path / "audit", identity_path=tmp_path / "ids"
    ) as gov:
        yield gov


def _tool_results(request: dict[str, Any]) -> dict[str, str]:
    """tool_call_id -> text of the tool result messages the model was sent."""
    out: dict[str, str] = {}
    for message in request["body"].get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "tool":
            content = message.get("content")
            out[str(message.get("tool_call_id"))] = content if isinstance(content, str) else json.dumps(content)
    return out


def install_plugin(openclaw_install: OpenClawInstall, env: dict[str, str], home: Path, tmp_path: Path) -> None:
    """``npm pack`` the plugin folder and install the archive with ``openclaw plugins install``."""
    npm = shutil.which("npm")
    assert npm is not None, "npm is needed (adapters/openclaw/scripts/install-openclaw.sh needs it too)"
    packed = subprocess.run(
        [npm, "pack", "--json", "--pack-destination", str(tmp_path)],
        cwd=PLUGIN_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert packed.returncode == 0, packed.stderr
    archive = tmp_path / json.loads(packed.stdout)[0]["filename"]
    # --force: a local archive is outside ClawHub review, so OpenClaw asks for confirmation first;
    # --accept-capabilities: the plugin registers tool hooks, a capability OpenClaw asks consent for.
    done = subprocess.run(
        [
            str(openclaw_install.node),
            str(openclaw_install.cli),
            "plugins",
            "install",
            str(archive),
            "--force",
            "--accept-capabilities",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=home,
        check=False,
    )
    assert done.returncode == 0 and "Installed plugin: claw-governance" in done.stdout, done.stdout + done.stderr
    installed = home / ".openclaw" / "extensions" / "claw-governance"
    assert (installed / "index.js").read_bytes() == (PLUGIN_DIR / "index.js").read_bytes()


def test_gateway_turn_is_governed(openclaw_install: OpenClawInstall, governor: Governor, tmp_path: Path) -> None:
    home = tmp_path / "home"
    state = home / ".openclaw"
    state.mkdir(parents=True)
    workspace = home / "workspace"
    workspace.mkdir()
    notes = workspace / "notes.txt"
    notes.write_text("the notes say hello\n")
    marker = workspace / "PWNED"
    fake = FakeModel(
        [
            {"id": "call_exec", "name": "exec", "arguments": {"command": f"touch {marker}"}},
            {"id": "call_read", "name": "read", "arguments": {"path": str(notes)}},
        ]
    )
    bridge = BridgeServer(governor)
    port = free_port()
    config = {
        "gateway": {
            "mode": "local",
            "port": port,
            "bind": "loopback",
            "auth": {"mode": "token", "token": GATEWAY_TOKEN},
        },
        "update": {"checkOnStart": False},
        "models": {
            "mode": "replace",
            "catalogRefresh": {"enabled": False},
            "providers": {
                "fake": {
                    "baseUrl": fake.base_url,
                    "apiKey": "not-a-real-key",
                    "api": "openai-completions",
                    "models": [
                        {
                            "id": MODEL_ID,
                            "name": "Fake tool caller",
                            "reasoning": False,
                            "input": ["text"],
                            "contextWindow": 128000,
                            "maxTokens": 4096,
                            "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
                        }
                    ],
                }
            },
        },
        "agents": {
            "defaults": {
                "model": {"primary": f"fake/{MODEL_ID}"},
                "workspace": str(workspace),
                "sandbox": {"mode": "off"},
            }
        },
        "tools": {"profile": "coding"},
    }
    (state / "openclaw.json").write_text(json.dumps(config, indent=2))
    # Installed as a user installs it (docs/adapters/openclaw.md): `npm pack`, then `openclaw plugins install`.
    install_plugin(openclaw_install, openclaw_install.env(home), home, tmp_path)
    config = json.loads((state / "openclaw.json").read_text())
    assert config["plugins"]["entries"]["claw-governance"]["enabled"] is True
    config["plugins"]["entries"]["claw-governance"]["config"] = {
        "bridgeUrl": f"http://127.0.0.1:{bridge.port}",
        "token": BRIDGE_TOKEN,
        "timeoutMs": 5000,
    }
    (state / "openclaw.json").write_text(json.dumps(config, indent=2))
    log = tmp_path / "gateway.log"
    node, cli = str(openclaw_install.node), str(openclaw_install.cli)
    gateway = contextlib.ExitStack()  # stopped in the `finally` below, between the bridge and the fake model
    try:
        env = gateway.enter_context(running_gateway(openclaw_install, home, port, log))

        def turn(session: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [
                    node,
                    cli,
                    "agent",
                    "--agent",
                    "main",
                    "--session-id",
                    session,
                    "--message",
                    "Run the command, then read the notes.",
                    "--json",
                    "--timeout",
                    "150",
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=240,
                cwd=home,
                check=False,
            )

        first = turn("governed")
        assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
        assert "plugin=claw-governance" in log.read_text() or "claw-governance" in log.read_text()
        # the model got the results of its two tool calls
        followups = [r for r in fake.requests if _tool_results(r)]
        assert followups, fake.requests
        results = _tool_results(followups[0])
        assert len(results) == 2, results
        text = "\n".join(results.values())
        assert "the notes say hello" in text, results  # read ran
        assert "claw-governance denied exec" in text and "tool:exec" in text, results
        assert not marker.exists()  # exec never ran

        entries = [e if isinstance(e, dict) else e.__dict__ for e in governor.audit.entries()]
        decisions = {(e["action"], e["decision"]["outcome"]) for e in entries if e["type"] == "policy_decision"}
        assert ("tool:exec", "deny") in decisions and ("tool:read", "allow") in decisions
        actions = [e for e in entries if e["type"] == "agent_action" and e["action"] == "tool:read"]
        assert actions, entries
        assert not [e for e in entries if e["type"] == "agent_action" and e["action"] == "tool:exec"]
        # the plugin quotes each decision's receipt: OpenClaw's own reports are all accepted
        assert not [e for e in entries if e["type"] == "report_rejected"], entries
        assert all(e["details"]["framework"] == "openclaw" for e in entries if e["type"] == "policy_decision")
        assert governor.audit.verify().valid

        # fail closed: with the bridge gone, OpenClaw blocks every call with an actionable reason
        bridge.stop()
        before = len(fake.requests)
        second = turn("bridge-down")
        assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
        later = [r for r in fake.requests[before:] if _tool_results(r)]
        assert later, fake.requests[before:]
        blocked = "\n".join(_tool_results(later[0]).values())
        assert "the notes say hello" not in blocked, blocked
        assert blocked.count("unreachable") >= 2 and "claw-gov serve" in blocked, blocked
        assert not marker.exists()
    finally:
        bridge.stop()
        gateway.close()
        fake.close()
