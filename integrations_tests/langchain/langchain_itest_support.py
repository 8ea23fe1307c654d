"""Support for the LangChain integration tests: the policy and one real tool of each kind.

Every tool records what it did in ``effects`` (a list of ``(tool, args)``), so a test can prove a refused
tool's body never ran.
"""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.tools import BaseTool, InjectedToolCallId, StructuredTool, ToolException, tool
from pydantic import BaseModel, Field

AGENT = "research-agent"

POLICY = """\
agent: research-agent
permissions:
  allow: ["tool:search", "tool:read_file", "tool:fetch_page", "tool:whoami", "tool:lookup", "tool:flaky",
          "tool:crash", "search:*"]
  deny: ["tool:delete_*"]
  escalate:
    - action: "tool:send_email"
      reason: Outbound email needs a human
"""


class Effects(list[tuple[str, dict[str, Any]]]):
    """What the tools did, in order."""

    def names(self) -> list[str]:
        """The tool names, in order."""
        return [name for name, _ in self]


class ReadFileArgs(BaseModel):
    """Arguments of read_file."""

    path: str = Field(description="the file to read")


def make_tools(effects: Effects) -> dict[str, BaseTool]:
    """One tool of each kind GovernedTool must handle, each recording its runs in ``effects``."""

    @tool
    def search(query: str, limit: int = 3) -> str:
        """Search the web for a query."""
        effects.append(("search", {"query": query, "limit": limit}))
        return f"3 results for {query!r}"

    @tool
    def send_email(to: str, body: str) -> str:
        """Send an email."""
        effects.append(("send_email", {"to": to, "body": body}))
        return f"sent to {to}"

    def delete_records(table: str) -> str:
        effects.append(("delete_records", {"table": table}))
        return f"deleted {table}"

    class ReadFile(BaseTool):
        name: str = "read_file"
        description: str = "Read a file from the workspace."
        args_schema: type[BaseModel] = ReadFileArgs

        def _run(self, path: str) -> str:
            effects.append(("read_file", {"path": path}))
            return f"contents of {path}"

    @tool(response_format="content_and_artifact")
    def fetch_page(url: str) -> tuple[str, dict[str, Any]]:
        """Fetch a web page; the raw page is the artifact."""
        effects.append(("fetch_page", {"url": url}))
        return f"page {url} (120 words)", {"url": url, "html": "<p>hello</p>"}

    @tool
    def whoami(note: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> str:
        """Echo a note with the id of this tool call."""
        effects.append(("whoami", {"note": note, "tool_call_id": tool_call_id}))
        return f"{note} from {tool_call_id}"

    async def _lookup(customer_id: int) -> str:
        effects.append(("lookup", {"customer_id": customer_id}))
        return f"customer {customer_id}"

    async def _delete_account(customer_id: int) -> str:
        effects.append(("delete_account", {"customer_id": customer_id}))
        return f"deleted {customer_id}"

    def flaky(n: int) -> str:
        """Fail with a handled ToolException."""
        effects.append(("flaky", {"n": n}))
        raise ToolException(f"backend unavailable for {n}")

    @tool
    def crash(n: int) -> str:
        """Raise an unhandled error."""
        effects.append(("crash", {"n": n}))
        raise RuntimeError(f"crashed on {n}")

    return {
        "search": search,
        "send_email": send_email,
        "delete_records": StructuredTool.from_function(delete_records, description="Delete every record."),
        "read_file": ReadFile(),
        "fetch_page": fetch_page,
        "whoami": whoami,
        "lookup": StructuredTool.from_function(
            coroutine=_lookup, name="lookup", description="Look up a customer (async only)."
        ),
        "delete_account": StructuredTool.from_function(
            coroutine=_delete_account, name="delete_account", description="Delete a customer account (async only)."
        ),
        "flaky": StructuredTool.from_function(flaky, handle_tool_error=True),
        "crash": crash,
    }
