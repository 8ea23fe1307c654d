"""Fixtures for the MCP tests: a policy folder and a side-effect folder (helpers in ``mcp_support``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp_support import POLICY, Env


@pytest.fixture
def env(tmp_path: Path) -> Env:
    """A policy for mcp-agent, empty audit/identity folders and an empty effects folder."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "mcp.yaml").write_text(POLICY, encoding="utf-8")
    (tmp_path / "effects").mkdir()
    return Env(tmp_path, tmp_path / "effects")
