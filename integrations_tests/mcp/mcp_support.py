"""Helpers for the MCP tests: a test's folders and the commands that start servers, and the real MCP clients
(stdio, streamable HTTP) the tests drive them with. A module of its own, not ``conftest``: a test module that
imports ``conftest`` gets whichever conftest pytest loaded last (``tests/conftest.py`` when ``tests/`` is on
the same command line)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from claw_governance import Governor

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


@asynccontextmanager
async def stdio_session(command: str, args: list[str], **callbacks: Any) -> AsyncIterator[ClientSession]:
    """A real MCP client session over stdio with the process ``command args``."""
    params = StdioServerParameters(command=command, args=args, env=dict(os.environ))
    async with stdio_client(params) as (read, write), ClientSession(read, write, **callbacks) as session:
        await session.initialize()
        yield session


@contextmanager
def http_proxy(args: list[str]) -> Iterator[str]:
    """Start ``claw-gov ARGS`` (a ``mcp proxy --http`` command line) on a free port; yield its URL; stop it."""
    proc = subprocess.Popen(
        [CLAW_GOV, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            match = re.search(r"on (http://127\.0\.0\.1:\d+/mcp)", line)
            if match:
                threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep draining
                yield match.group(1)
                break
        else:
            raise AssertionError(f"the proxy did not start (exit {proc.wait()})")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@asynccontextmanager
async def http_session(url: str) -> AsyncIterator[ClientSession]:
    """A real MCP client session over streamable HTTP (each one its own connection)."""
    async with streamable_http_client(url) as (read, write, _), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def text_of(result: types.CallToolResult) -> str:
    """The text blocks of a tool result, joined by spaces."""
    return " ".join(b.text for b in result.content if isinstance(b, types.TextContent))


def trail(env: Env, **filters: Any) -> list[dict[str, Any]]:
    """The audit entries of this test's trail matching ``filters``."""
    with Governor(
        policy_path=env.root / "policies", audit_path=env.root / "audit", identity_path=env.root / "identities"
    ) as gov:
        return gov.audit.query(**filters)
