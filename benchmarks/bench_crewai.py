# ruff: noqa: E402  (crewai reads its environment when imported: the settings below must come first)
"""Overhead of claw-governance on CrewAI tool calls: governed versus ungoverned, same process, same run.

Two measurements (``python benchmarks/bench_crewai.py [--calls N] [--kickoffs K]``):

1. **hook dispatch + tool run** (the figure to quote): exactly what crewai does per tool call on its tool
   paths (``crewai.utilities.tool_utils`` / ``agent_utils.execute_single_native_tool_call``): build a
   ``ToolCallHookContext``, ``run_before_tool_call_hooks``, ``tool.run(**args)``, build the after-context,
   ``run_after_tool_call_hooks``. Ungoverned = no hooks registered (crewai's fast path); governed = the
   adapter's hooks from ``enable_crewai_governance``: identity, trust gate, policy, a chained audit entry for
   the decision and one for the outcome, and the trust update. No model, so the difference is all ours.
2. **through a crew**: ``crew.kickoff()`` of a real crew whose scripted model makes ``--calls-per-kickoff``
   tool calls (text/ReAct path). Per-call difference = (governed - ungoverned) / calls. Noisier: a kickoff
   costs tens of milliseconds of crewai's own work.

Prints one line per measurement; median of repeated rounds. Runs offline (telemetry and tracing off,
crewai's storage in a temporary folder).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_TMP = Path(tempfile.mkdtemp(prefix="bench-crewai-"))
os.environ.update(
    {
        "CREWAI_DISABLE_TELEMETRY": "true",
        "OTEL_SDK_DISABLED": "true",
        "CREWAI_TRACING_ENABLED": "false",
        "CREWAI_STORAGE_DIR": "claw-bench",
        "XDG_DATA_HOME": str(_TMP / "xdg"),
    }
)

from claw_governance_crewai import disable_crewai_governance, enable_crewai_governance
from crewai import Agent, Crew, Task
from crewai.hooks.dispatch import InterceptionPoint, register, unregister
from crewai.hooks.tool_hooks import (
    ToolCallHookContext,
    run_after_tool_call_hooks,
    run_before_tool_call_hooks,
)
from crewai.llms.base_llm import BaseLLM
from crewai.tools import tool
from pydantic import PrivateAttr

from claw_governance import CallOutcome, Governor

POLICY = 'agent: bench-agent\npermissions:\n  allow: ["tool:lookup"]\n  deny: ["tool:delete_*"]\n'


@tool("Lookup")
def lookup(query: str) -> str:
    """Look a fact up."""
    return "42"


class _Role:
    role = "Bench Agent"
    verbose = False


def _noop(context: Any) -> None:
    return None


def one_call(structured: Any) -> Any:
    """One tool call the way crewai runs it: before-hooks, the tool, after-hooks."""
    args = {"query": "x"}
    before = ToolCallHookContext(tool_name="lookup", tool_input=args, tool=structured, agent=_Role())  # type: ignore[arg-type]
    if run_before_tool_call_hooks(before):
        return None
    result = lookup.run(**args)
    after = ToolCallHookContext(
        tool_name="lookup",
        tool_input=args,
        tool=structured,
        agent=_Role(),  # type: ignore[arg-type]
        tool_result=str(result),
        raw_tool_result=result,
    )
    return run_after_tool_call_hooks(after)


def per_call_us(fn: Callable[[], Any], calls: int, rounds: int) -> float:
    """Median over ``rounds`` of the mean time per call, in microseconds."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(samples)


class BenchLLM(BaseLLM):
    """Calls ``lookup`` ``n`` times (ReAct text), then answers."""

    n: int = 10
    _i: int = PrivateAttr(default=0)

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
        """The next scripted step."""
        self._i += 1
        if self._i <= self.n:
            return f'Thought: look.\nAction: lookup\nAction Input: {{"query": "q{self._i}"}}'
        return "Thought: done.\nFinal Answer: 42"

    def supports_stop_words(self) -> bool:
        """No stop words needed."""
        return False

    def get_input_tokens_count(self, messages: Any, tools: Any = None, response_model: Any = None) -> int:
        """Skip crewai's approximate-count warning."""
        return 1000


def kickoff_ms(n: int) -> float:
    """Wall time of one kickoff making ``n`` tool calls, in milliseconds."""
    agent = Agent(
        role="Bench Agent",
        goal="g",
        backstory="b",
        llm=BenchLLM(model="bench", n=n),
        tools=[lookup],
        verbose=False,
        max_iter=n + 5,
    )
    crew = Crew(
        agents=[agent], tasks=[Task(description="d", expected_output="e", agent=agent)], verbose=False, cache=False
    )
    started = time.perf_counter()
    crew.kickoff()
    return (time.perf_counter() - started) * 1000


def main() -> int:
    """Run both measurements and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000, help="tool calls per round (hook dispatch)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--kickoffs", type=int, default=7, help="kickoffs per variant (through a crew)")
    parser.add_argument("--calls-per-kickoff", type=int, default=20)
    args = parser.parse_args()
    (_TMP / "policies").mkdir()
    (_TMP / "policies" / "bench.yaml").write_text(POLICY)
    structured = lookup.to_structured_tool()

    with Governor(
        policy_path=_TMP / "policies",
        audit_path=_TMP / "audit",
        identity_path=_TMP / "ids",
        state_path=_TMP / "state",
        load_entry_points=False,
    ) as gov:

        def core_only() -> None:
            call = gov.make_call("bench-agent", "tool:lookup", {"query": "x"}, framework="crewai")
            decision = gov.before_call(call)
            gov.after_call(call, decision, CallOutcome(True, "42", None, 0.01))

        def measure(variant: str) -> float:
            if variant == "noop":
                register(InterceptionPoint.PRE_TOOL_CALL, _noop)
                register(InterceptionPoint.POST_TOOL_CALL, _noop)
            elif variant == "governed":
                enable_crewai_governance(gov)
            try:
                fn = core_only if variant == "core" else (lambda: one_call(structured))
                for _ in range(100):
                    fn()
                return per_call_us(fn, args.calls, 1)
            finally:
                unregister(InterceptionPoint.PRE_TOOL_CALL, _noop)
                unregister(InterceptionPoint.POST_TOOL_CALL, _noop)
                disable_crewai_governance(gov)

        # interleaved rounds, so load from other processes hits every variant alike; medians per variant
        variants = ("bare", "noop", "governed", "core")
        samples: dict[str, list[float]] = {v: [] for v in variants}
        for _ in range(args.rounds):
            for variant in variants:
                samples[variant].append(measure(variant))
        bare, noop, governed, core = (statistics.median(samples[v]) for v in variants)
        print(
            f"hook dispatch + tool run: ungoverned {bare:7.1f} us/call, governed {governed:7.1f} us/call, "
            f"overhead {governed - bare:7.1f} us/call ({args.rounds} interleaved rounds x {args.calls} calls, "
            "median)"
        )
        print(f"  crewai's own cost of having any tool hook (no-op before+after hooks): {noop - bare:7.1f} us/call")
        print(f"  claw-governance on top of that:                                       {governed - noop:7.1f} us/call")
        print(
            f"  the core pipeline alone (before_call + after_call: identity, trust, policy, 2 audit entries,"
            f" trust update): {core:7.1f} us/call"
        )

        n = args.calls_per_kickoff
        kickoff_ms(n)  # warm up crewai
        plain = statistics.median(kickoff_ms(n) for _ in range(args.kickoffs))
        enable_crewai_governance(gov)
        kickoff_ms(n)
        gov_ms = statistics.median(kickoff_ms(n) for _ in range(args.kickoffs))
        disable_crewai_governance(gov)
        print(
            f"through a crew (ReAct, {n} tool calls per kickoff): ungoverned {plain:7.1f} ms/kickoff, "
            f"governed {gov_ms:7.1f} ms/kickoff, overhead {(gov_ms - plain) * 1000 / n:8.1f} us/call "
            f"({args.kickoffs} kickoffs each, median)"
        )
        entries = sum(1 for _ in gov.audit.entries())
        print(f"audit entries written: {entries}; trust of bench-agent: {gov.trust_score('bench-agent')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
