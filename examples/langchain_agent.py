"""A governed LangChain agent, offline: a scripted tool-calling model drives real langchain-core tools.

Shows the three ways to govern LangChain tool calls:
  1. GovernedTool / govern_tools: the model sees the same tools; refusals come back as error ToolMessages.
  2. GovernanceCallbackHandler in config={"callbacks": [...]}: blocks refused calls by raising.
  3. gov.enable(): every LangChain tool run in the process is governed, no code change.

Run: .venv/bin/python examples/langchain_agent.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from claw_governance_langchain import GovernanceCallbackHandler, govern_tools
from claw_governance_langchain.testing import ScriptedChatModel, run_tool_loop, tool_call
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool

from claw_governance import EscalationRequired, Governor, ToolCallDenied

POLICY = """\
agent: research-agent
permissions:
  allow: ["tool:web_search"]
  deny: ["tool:delete_*"]
  escalate:
    - action: "tool:send_email"
      reason: Outbound email needs a human
"""

SENT: list[str] = []
DELETED: list[str] = []


@tool
def web_search(query: str) -> str:
    """Search the web."""
    return f"3 articles about {query}"


@tool
def send_email(to: str, body: str) -> str:
    """Send an email."""
    SENT.append(to)
    return f"email sent to {to}"


@tool
def delete_files(pattern: str) -> str:
    """Delete files matching a glob pattern."""
    DELETED.append(pattern)
    return f"deleted {pattern}"


def scripted_model() -> ScriptedChatModel:
    """Stands in for a real chat model: asks for one search, one deletion and one email, then answers."""
    return ScriptedChatModel(
        replies=[
            AIMessage(
                "",
                tool_calls=[
                    tool_call("web_search", {"query": "AI governance"}, "call_1"),
                    tool_call("delete_files", {"pattern": "*.log"}, "call_2"),
                    tool_call("send_email", {"to": "boss@example.com", "body": "summary"}, "call_3"),
                ],
            ),
            AIMessage("Summary ready. I could not delete the logs, and the email waits for approval."),
        ]
    )


def main(workdir: Path) -> None:
    (workdir / "policies").mkdir()
    (workdir / "policies" / "research-agent.yaml").write_text(POLICY)
    with Governor(
        policy_path=workdir / "policies", audit_path=workdir / "audit", identity_path=workdir / "identities"
    ) as gov:
        print("== 1. GovernedTool: swap BaseTool for GovernedTool")
        tools = govern_tools([web_search, delete_files, send_email], governor=gov, agent_id="research-agent")
        messages = run_tool_loop(scripted_model(), tools, "Research AI governance, tidy up, email my boss")
        escalation_id = ""
        for message in messages:
            if isinstance(message, ToolMessage):
                print(f"  {message.tool_call_id} {message.name}: {message.status}: {message.content}")
                info = message.response_metadata.get("claw_governance", {})
                escalation_id = info.get("escalation_id") or escalation_id
        print(f"  model: {messages[-1].content}")
        print(f"  deleted: {DELETED}  sent: {SENT}")

        gov.resolve_escalation(
            escalation_id, "approved", notes="fine", resolver=gov.reviewers.ensure("alice@example.com")
        )
        retry = tools[2].invoke(tool_call("send_email", {"to": "boss@example.com", "body": "summary"}, "call_4"))
        print(f"  approved {escalation_id}; retry: {retry.status}: {retry.content}; sent: {SENT}")

        print("== 2. GovernanceCallbackHandler: add the callback handler")
        handler = GovernanceCallbackHandler(gov, "research-agent")
        print("  " + web_search.invoke({"query": "policy engines"}, config={"callbacks": [handler]}))
        try:
            delete_files.invoke({"pattern": "*"}, config={"callbacks": [handler]})
        except ToolCallDenied as exc:
            print(f"  blocked: ToolCallDenied: {exc.reason}")

        print("== 3. gov.enable(): govern every LangChain tool run, no code change")
        os.environ["CLAW_AGENT_ID"] = "research-agent"
        gov.enable()
        try:
            send_email.invoke({"to": "all@example.com", "body": "hello"})
        except EscalationRequired as exc:
            print(f"  held: EscalationRequired: escalation {exc.escalation_id}")
        gov.disable()
        print(f"  deleted: {DELETED}  sent: {SENT}")

        counts: dict[str, int] = {}
        for entry in gov.audit.query(type="policy_decision"):
            outcome = entry["decision"]["outcome"]
            counts[outcome] = counts.get(outcome, 0) + 1
        report = gov.audit.verify()
        print(
            f"== audit: decisions {dict(sorted(counts.items()))}, "
            f"{len(gov.audit.query(type='agent_action'))} actions, chain valid: {report.valid}"
        )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(tmp))
