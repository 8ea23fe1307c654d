"""Fixtures for the OpenClaw integration tests (see ``openclaw_support``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from openclaw_support import INSTALL_SCRIPT, OpenClawInstall


@pytest.fixture(scope="session")
def openclaw_install() -> OpenClawInstall:
    """Install (first run, ~40 s) or reuse the cached Node 26 + openclaw@2026.9.6."""
    proc = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"install-openclaw.sh failed ({proc.returncode}): {proc.stderr[-2000:]}")
    root = Path(proc.stdout.strip().splitlines()[-1])
    install = OpenClawInstall(root)
    assert install.cli.is_file(), install.cli
    return install
