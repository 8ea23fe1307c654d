"""Child-process script: real crews whose model calls are checked and receipted (see the test module)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from claw_governance_crewai.models import CrewAIModelReceipts
from claw_governance_crewai.testing import ScriptedLLM, react_action, react_final
from crewai import Agent, Crew, Task
from crewai.tools import tool

from claw_governance import Governor

POLICY = """\
agent: researcher
permissions:
  allow: ["tool:*"]
models:
  allow: ["openai/gpt-5*"]
receipts: required
"""


@tool("lookup")
def lookup(query: str) -> str:
    """Look something up."""
    return f"found {query}"


def run(root: Path, model: str, job: bool) -> dict[str, object]:
    (root / "p").mkdir(parents=True, exist_ok=True)
    (root / "p" / "a.yaml").write_text(POLICY)
    gov = Governor(root / "p", root / "audit", root / "ids", load_entry_points=False)
    token = gov.start_job("crew-job", agent_id="researcher", scope=["tool:*"]).token if job else None
    receipts = CrewAIModelReceipts(gov, job_token=token)
    receipts.register()
    llm = ScriptedLLM(model=model, steps=[react_action("lookup", {"query": "q"}), react_final("fine")])
    agent = Agent(role="Researcher", goal="g", backstory="b", llm=llm, tools=[lookup], verbose=False, max_iter=3)
    crew = Crew(agents=[agent], tasks=[Task(description="x", expected_output="y", agent=agent)], verbose=False)
    result: dict[str, object] = {"llm_calls": 0, "error": None, "output": None}
    try:
        result["output"] = crew.kickoff().raw
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        receipts.unregister()
    result["llm_calls"] = len(llm.seen)
    gov.close()
    result["audit"] = [
        json.loads(line)
        for p in sorted((root / "audit").rglob("*.jsonl"))
        for line in p.read_text().splitlines()
        if line.strip()
    ]
    return result


@tool("wipe")
def wipe(table: str) -> str:
    """Delete a table."""
    (Path.cwd() / "WIPED").write_text(table)
    return "wiped"


def run_enabled(root: Path) -> dict[str, object]:
    """enable_crewai_governance(job_token=...): tool calls checked against the job's scope, model calls
    receipted by the same switch."""
    from claw_governance_crewai import disable_crewai_governance, enable_crewai_governance

    (root / "p").mkdir(parents=True, exist_ok=True)
    (root / "p" / "a.yaml").write_text(POLICY)
    gov = Governor(root / "p", root / "audit", root / "ids", load_entry_points=False)
    token = gov.start_job("scoped-job", agent_id="researcher", scope=["tool:lookup"]).token
    enable_crewai_governance(gov, job_token=token)
    llm = ScriptedLLM(
        model="openai/gpt-5",
        steps=[react_action("lookup", {"query": "q"}), react_action("wipe", {"table": "users"}), react_final("fine")],
    )
    agent = Agent(role="Researcher", goal="g", backstory="b", llm=llm, tools=[lookup, wipe], verbose=False, max_iter=4)
    crew = Crew(agents=[agent], tasks=[Task(description="x", expected_output="y", agent=agent)], verbose=False)
    result: dict[str, object] = {"error": None}
    try:
        result["output"] = crew.kickoff().raw
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        disable_crewai_governance(gov)
    result["wiped"] = (Path.cwd() / "WIPED").exists()
    gov.close()
    result["audit"] = [
        json.loads(line)
        for p in sorted((root / "audit").rglob("*.jsonl"))
        for line in p.read_text().splitlines()
        if line.strip()
    ]
    return result


def main(out: str) -> int:
    root = Path(out)
    results = {
        "allowed": run(root / "allowed", "openai/gpt-5-mini", True),
        "blocked": run(root / "blocked", "openai/gpt-4o", False),
        "enabled": run_enabled(root / "enabled"),
    }
    (root / "results.json").write_text(json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
