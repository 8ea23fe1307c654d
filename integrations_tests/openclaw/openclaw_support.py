"""Helpers for the OpenClaw integration tests: a real openclaw@2026.9.6 on Node 26, installed once into a
cache outside the repository by ``adapters/openclaw/scripts/install-openclaw.sh`` (idempotent, locked)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ADAPTER = REPO / "adapters" / "openclaw"
INSTALL_SCRIPT = ADAPTER / "scripts" / "install-openclaw.sh"
PROBE = ADAPTER / "scripts" / "openclaw-policy-probe.mjs"
PLUGIN_DIR = ADAPTER / "openclaw-plugin"
OPENCLAW_VERSION = "2026.9.6"
# Set for `openclaw gateway run` and the `openclaw agent` turns against it, on top of ``OpenClawInstall.env``:
# no Bonjour, no channels, no respawn, no exec shell snapshot, no auto-update.
GATEWAY_ENV = {
    "OPENCLAW_DISABLE_BONJOUR": "1",
    "OPENCLAW_NO_RESPAWN": "1",
    "OPENCLAW_SKIP_CHANNELS": "1",
    "OPENCLAW_EXEC_SHELL_SNAPSHOT": "0",
    "OPENCLAW_NO_AUTO_UPDATE": "1",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[Any], seconds: float, log: Path) -> None:
    """Return once ``port`` accepts connections; fail with the end of ``log`` if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gateway exited {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"gateway not listening after {seconds} s: {log.read_text()[-3000:]}")


@dataclass(frozen=True)
class OpenClawInstall:
    """Where the cached Node 26 and OpenClaw live."""

    root: Path

    @property
    def node(self) -> Path:
        """The Node 26 binary."""
        return next((self.root / "node" / "node_modules").glob("node-linux-*/bin/node"))

    @property
    def package(self) -> Path:
        """The installed ``openclaw`` package folder."""
        return self.root / "app" / "node_modules" / "openclaw"

    @property
    def cli(self) -> Path:
        """OpenClaw's CLI entry script."""
        return self.package / "openclaw.mjs"

    def env(self, home: Path) -> dict[str, str]:
        """An isolated, offline environment for OpenClaw commands."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCLAW_", "OPENAI_", "ANTHROPIC_"))}
        env.update(
            {
                "PATH": f"{self.node.parent}:{env.get('PATH', '/usr/bin:/bin')}",
                "HOME": str(home),
                "OPENCLAW_STATE_DIR": str(home / ".openclaw"),
                "OPENCLAW_CONFIG_PATH": str(home / ".openclaw" / "openclaw.json"),
                # no outbound calls: no update checks, telemetry, or auto-installs
                "OPENCLAW_NO_UPDATE_CHECK": "1",
                "OPENCLAW_DISABLE_UPDATE_CHECK": "1",
                "OPENCLAW_TELEMETRY": "0",
                "OPENCLAW_DISABLE_TELEMETRY": "1",
                "DO_NOT_TRACK": "1",
                "NO_UPDATE_NOTIFIER": "1",
                "npm_config_update_notifier": "false",
                "CI": "1",
            }
        )
        return env


@contextlib.contextmanager
def running_gateway(install: OpenClawInstall, home: Path, port: int, log: Path) -> Iterator[dict[str, str]]:
    """``openclaw gateway run --port PORT`` from ``home`` (its config in ``home/.openclaw``), its output in
    ``log``; returns once it listens (180 s at most) and stops it when the block ends. Yields the environment it
    runs in, for the ``openclaw agent`` turns that go through it."""
    env = install.env(home) | GATEWAY_ENV
    with log.open("w") as out:
        gateway = subprocess.Popen(
            [str(install.node), str(install.cli), "gateway", "run", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=home,
        )
    try:
        wait_port(port, gateway, 180, log)
        yield env
    finally:
        gateway.terminate()
        try:
            gateway.wait(30)
        except subprocess.TimeoutExpired:
            gateway.kill()
            gateway.wait(10)
