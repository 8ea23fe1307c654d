"""One step of a governed create_agent run in its own process, checkpointed in SQLite (for the restart test).

``python middleware_restart_agent.py ROOT start|resume``: ROOT holds policies/, audit/, identities/,
checkpoints.sqlite and effects/ (the email tool writes effects/sent-<n> each time it runs). Prints one JSON
line: the pending interrupts' values and the ids of the tool calls answered so far.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from claw_governance_langchain import GovernanceMiddleware
from claw_governance_langchain.testing import ScriptedChatModel, tool_call
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from claw_governance import Governor

ROOT = Path(sys.argv[1])
EFFECTS = ROOT / "effects"


@tool
def send_email(to: str, body: str) -> str:
    """Send an email."""
    EFFECTS.mkdir(exist_ok=True)
    n = len(list(EFFECTS.iterdir()))
    (EFFECTS / f"sent-{n}").write_text(f"{to}: {body}", encoding="utf-8")
    return f"sent to {to}"


def reply(messages: list[BaseMessage]) -> AIMessage:
    if any(isinstance(m, ToolMessage) for m in messages):
        return AIMessage("done")
    return AIMessage("", tool_calls=[tool_call("send_email", {"to": "cfo@example.com", "body": "q3"}, "r1")])


def main() -> None:
    with Governor(policy_path=ROOT / "policies", audit_path=ROOT / "audit", identity_path=ROOT / "identities") as gov:
        conn = sqlite3.connect(ROOT / "checkpoints.sqlite", check_same_thread=False)
        agent = create_agent(
            ScriptedChatModel(replies=[reply]),
            [send_email],
            middleware=[GovernanceMiddleware(governor=gov, agent_id="research-agent")],
            checkpointer=SqliteSaver(conn),
        )
        config: Any = {"configurable": {"thread_id": "restart-thread"}}
        payload = {"messages": [HumanMessage("send it")]} if sys.argv[2] == "start" else Command(resume="approved!")
        state = agent.invoke(payload, config)
        conn.close()
    print(
        json.dumps(
            {
                "interrupts": [i.value for i in state.get("__interrupt__", ())],
                "answered": {m.tool_call_id: m.status for m in state["messages"] if isinstance(m, ToolMessage)},
            }
        )
    )


if __name__ == "__main__":
    main()
