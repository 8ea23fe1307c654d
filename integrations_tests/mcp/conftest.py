"""Fixtures for the MCP tests: a policy folder, a side-effect folder and the commands that start servers."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SERVER = HERE / "notes_server.py"
CLAW_GOV = str(Path(sys.executable).with_name("claw-gov"))
AGENT = "mcp-agent"

POLICY = """\
agent: mcp-agent
permissions:
  allow: ["mcp:notes/add_note", "mcp:notes/list_notes", "mcp:notes/fail_note", "mcp:notes/crash",
          "mcp:notes/ask_model"]
  deny: ["mcp:notes/delete_notes"]
  escalate:
    - action: "mcp:notes/send_note"
      reason: Sending a note needs a human
"""


@dataclass
class Env:
    """The folders of one test: policies, audit, identities, and where the server's tools leave effects."""

    root: Path
    effects: Path

    @property
    def governor_args(self) -> list[str]:
        """The claw-gov options naming this test's folders."""
        return [
            "--policies",
            str(self.root / "policies"),
            "--audit",
            str(self.root / "audit"),
            "--identities",
            str(self.root / "identities"),
        ]

    @property
    def server_command(self) -> list[str]:
        """The real MCP server's command line."""
        return [sys.executable, str(SERVER), str(self.effects)]

    def proxy_args(self, *extra: str, name: str | None = "notes") -> list[str]:
        """``claw-gov mcp proxy`` arguments (without the program) in front of the notes server."""
        named = ["--name", name] if name else []
        return ["mcp", "proxy", "--agent", AGENT, *named, *self.governor_args, *extra, "--", *self.server_command]


@pytest.fixture
def env(tmp_path: Path) -> Env:
    """A policy for mcp-agent, empty audit/identity folders and an empty effects folder."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "mcp.yaml").write_text(POLICY, encoding="utf-8")
    (tmp_path / "effects").mkdir()
    return Env(tmp_path, tmp_path / "effects")
