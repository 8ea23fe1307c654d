"""A CrewAI crew governed by claw-governance, offline: run ``python examples/crewai_crew.py [--native]``.

The crew is ordinary crewai code; the only governance line is ``gov.enable()``, which switches on the
installed CrewAI adapter (global before/after tool-call hooks). A scripted model stands in for an LLM,
so the example needs no API key and makes no network call; ``--native`` drives crewai's native
function-calling path instead of the text/ReAct path.

What happens: the researcher looks something up (allowed), tries to delete records (denied: the tool
body never runs, the model is told why), tries to send an e-mail (held for a human). A human approves
the e-mail, the crew runs again, and this time the e-mail goes out, once. The task's output passes a
governance guardrail, and the audit trail records every step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

# crewai reads these when it is imported: no telemetry, no tracing prompt, storage kept out of the project.
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("CREWAI_STORAGE_DIR", "claw-governance-example")

from claw_governance_crewai import governance_guardrail, task_audit_callback
from claw_governance_crewai.testing import ScriptedLLM, native_call, react_action
from crewai import Agent, Crew, Task
from crewai.tools import tool
from pydantic import Field

from claw_governance import Governor

POLICY = """\
agent: researcher                     # the crewai agent's role "Researcher", slugified
permissions:
  allow: ["tool:lookup", "task:*"]
  deny: ["tool:delete_*"]
  escalate:
    - action: "tool:send_email"
      reason: Outbound e-mail needs a human
"""

SENT: list[str] = []
DELETED: list[str] = []


@tool("Lookup")
def lookup(query: str) -> str:
    """Look a fact up."""
    return f"The answer to {query!r} is 42."


@tool("Delete Records")
def delete_records(table: str) -> str:
    """Delete every record of a table."""
    DELETED.append(table)
    return f"deleted {table}"


@tool("Send Email")
def send_email(to: str, body: str) -> str:
    """Send an e-mail."""
    SENT.append(to)
    return f"sent to {to}"


class NarratedModel(ScriptedLLM):
    """The adapter's scripted model, printing what it is told after each tool and what it calls next."""

    plan: list[tuple[str, dict[str, Any]]] = Field(default_factory=list)

    def call(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> Any:
        """Narrate, then play the next scripted step."""
        step = len(self.seen)
        if step:
            print(f"  model is told: {_last_observation(messages)}")
        if step < len(self.plan):
            name, args = self.plan[step]
            print(f"  model calls {name}({json.dumps(args)})")
        return super().call(messages, tools, callbacks, available_functions, from_task, from_agent, response_model)


def demo_model(native: bool, plan: list[tuple[str, dict[str, Any]]]) -> NarratedModel:
    """A model that calls the tools of ``plan`` in order, then answers "Done."."""
    steps = [
        native_call(name, args, f"call_{i}") if native else react_action(name, args)
        for i, (name, args) in enumerate(plan, 1)
    ]
    return NarratedModel(model="demo-model", native=native, plan=plan, steps=steps, fallback="Done.")


def _last_observation(messages: Any) -> str:
    for message in reversed(messages if isinstance(messages, list) else []):
        content = str(message.get("content", ""))
        if message.get("role") == "tool":
            return content
        if "Observation:" in content:
            return content.rsplit("Observation:", 1)[1].split("\n", 1)[0].strip()
    return "(nothing)"


def run_crew(gov: Governor, native: bool, plan: list[tuple[str, dict[str, Any]]]) -> str:
    """An ordinary crew: one agent, one task. Nothing in it mentions governance except the guardrail."""
    agent = Agent(
        role="Researcher",
        goal="Answer questions and report",
        backstory="Careful and brief.",
        llm=demo_model(native, plan),
        tools=[lookup, delete_records, send_email],
        verbose=False,
        max_iter=6,
    )
    task = Task(
        name="answer",
        description="Answer the question and tell the team.",
        expected_output="A short answer",
        agent=agent,
        guardrail=governance_guardrail(gov),
    )
    crew = Crew(agents=[agent], tasks=[task], verbose=False, task_callback=task_audit_callback(gov))
    return str(crew.kickoff().raw)


def main(argv: list[str] | None = None) -> int:
    """Run the example; returns 0 when every expectation held."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--native", action="store_true", help="use crewai's native function-calling path")
    parser.add_argument("--workdir", help="where policies, audit trail and identities go (default: a temp dir)")
    args = parser.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="claw-crewai-"))
    (work / "policies").mkdir(parents=True, exist_ok=True)
    (work / "policies" / "researcher.yaml").write_text(POLICY)
    path = "native function calling" if args.native else "text/ReAct"
    print(f"claw-governance + CrewAI ({path}); files in {work}")

    with Governor(
        policy_path=work / "policies",
        audit_path=work / "audit",
        identity_path=work / "identities",
        state_path=work / "state",
    ) as gov:
        gov.enable()  # the installed CrewAI adapter now governs every crewai tool call in this process
        mail = ("send_email", {"to": "team@example.com", "body": "The answer is 42."})
        print("\nRun 1")
        run_crew(gov, args.native, [("lookup", {"query": "life"}), ("delete_records", {"table": "users"}), mail])
        pending = gov.escalations.pending()
        print(
            f"\nrecords deleted: {DELETED or 'none'}; e-mails sent: {SENT or 'none'}; "
            f"escalations pending: {len(pending)}"
        )
        for escalation in pending:
            gov.resolve_escalation(
                escalation.id, "approved", notes="fine to send", resolver=gov.reviewers.ensure("alice@example.com")
            )
            print(f"a human approved escalation {escalation.id} ({escalation.action})")
        print("\nRun 2")
        run_crew(gov, args.native, [mail])
        print(f"\ne-mails sent: {SENT}; trust of researcher: {gov.trust_score('researcher')}")

        print("\nAudit trail:")
        for entry in gov.audit.entries():
            decision = entry.get("decision") or {}
            details = entry.get("details") or {}
            if entry["type"] in ("policy_decision", "agent_action", "escalation", "escalation_resolved"):
                what = decision.get("outcome") or details.get("event") or details.get("status") or ""
                print(f"  {entry['seq']:>3} {entry['type']:<20} {entry.get('action') or '':<22} {what}")
        verify = getattr(gov.audit, "verify", None)
        if verify is not None:
            print(f"audit chain valid: {verify().valid}")

    ok = DELETED == [] and SENT == ["team@example.com"]
    print("\nOK: the delete never ran, the e-mail went out once, after approval" if ok else "\nUNEXPECTED RESULT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
