"""A real FastMCP server for the proxy tests: each tool leaves a side effect in the folder given as argv[1].

Run as ``python notes_server.py FOLDER`` (stdio). ``add_note`` writes FOLDER/<title>.txt, ``delete_notes``
writes FOLDER/DELETED, ``send_note`` writes FOLDER/SENT-<to>, ``crash`` kills the server process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp.server.fastmcp import Context, FastMCP
from mcp.types import SamplingMessage, TextContent
from pydantic import BaseModel, Field

FOLDER = Path(sys.argv[1])
server = FastMCP("notes", instructions="Keeps notes in a folder.")


class Saved(BaseModel):
    """What add_note returns (a structured result, so the tool has an output schema)."""

    path: str
    size: int = Field(description="Bytes written")


@server.tool()
def add_note(title: str, text: str) -> Saved:
    """Save a note under a title."""
    target = FOLDER / f"{title}.txt"
    target.write_text(text, encoding="utf-8")
    return Saved(path=str(target), size=len(text.encode()))


@server.tool()
def list_notes() -> list[str]:
    """List the saved notes."""
    return sorted(p.stem for p in FOLDER.glob("*.txt"))


@server.tool()
def delete_notes(confirm: bool = False) -> str:
    """Delete every note."""
    (FOLDER / "DELETED").write_text("yes", encoding="utf-8")
    return "deleted"


@server.tool()
def send_note(title: str, to: str) -> str:
    """Send a note to someone."""
    (FOLDER / f"SENT-{to}").write_text(title, encoding="utf-8")
    return f"sent {title} to {to}"


@server.tool()
def fail_note() -> str:
    """A tool that fails."""
    raise RuntimeError("the disk is full")


@server.tool()
async def ask_model(question: str, ctx: Context) -> str:  # type: ignore[type-arg]
    """Ask the client's model (MCP sampling: a request from the server to the client)."""
    reply = await ctx.session.create_message(
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=question))], max_tokens=20
    )
    return f"the model says: {getattr(reply.content, 'text', reply.content)}"


@server.tool()
def crash() -> str:
    """Kill the server process (the proxy loses its server)."""
    os._exit(3)


@server.resource("notes://readme")
def readme() -> str:
    """A resource, forwarded unchanged."""
    return "notes server"


@server.prompt()
def summarise(title: str) -> str:
    """A prompt, forwarded unchanged."""
    return f"Summarise the note {title}."


if __name__ == "__main__":
    server.run("stdio")
