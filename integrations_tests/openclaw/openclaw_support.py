"""Helpers for the OpenClaw integration tests: a real openclaw@2026.9.6 on Node 26, installed once into a
cache outside the repository by ``adapters/openclaw/scripts/install-openclaw.sh`` (idempotent, locked)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ADAPTER = REPO / "adapters" / "openclaw"
INSTALL_SCRIPT = ADAPTER / "scripts" / "install-openclaw.sh"
PROBE = ADAPTER / "scripts" / "openclaw-policy-probe.mjs"
PLUGIN_DIR = ADAPTER / "openclaw-plugin"
OPENCLAW_VERSION = "2026.9.6"


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
