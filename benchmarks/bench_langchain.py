"""Overhead of claw-governance on a LangChain tool call: a governed versus an ungoverned ``tool.invoke(ToolCall)``.

Both sides go through LangChain's full tool path (input parsing and validation, callback manager, ToolMessage).
The governed side adds ``Governor.before_call`` (identity, trust gate, policy, audit entry written to the OS)
and ``Governor.after_call`` (trust update, ``agent_action`` audit entry). Runs offline; prints p50/p99 per
call for each side and the ratio of medians. To separate the adapter's own cost from the governor's, it also
times the governor alone and "a LangChain call, then the governor's calls" (the same work without the
adapter; note both code paths then share the CPU caches, which costs more than the governor alone).
``--check`` exits 1 when governance adds 10% or more to the bare ``tool.invoke``.

The floor: the same bare call through a GovernedTool whose governor allows everything and records nothing
(the adapter's glue), and a LangChain call followed by the least audit work DESIGN.md asks for (two
SHA-256-chained entries written to the OS under a thread lock and an flock, nothing else). Their sum is what
no implementation of this design in CPython gets under; it is printed beside the 10% budget.

It also measures the same tool called by an agent: one turn of langchain v1's ``create_agent`` (a scripted
model asks for the tool, the graph's ToolNode runs it, the model answers), governed (GovernedTool) versus
ungoverned. That is the cost of a tool call as a LangChain agent makes it.

    python benchmarks/bench_langchain.py [--calls 3000] [--rounds 5] [--check]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from claw_governance_langchain import GovernedTool
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, tool

from claw_governance import CallOutcome, Decision, Governor, Outcome, ToolCall

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # benchmarks/ is not a package
    sys.path.insert(0, str(HERE))
from floor import floor_entries  # noqa: E402

POLICY = """\
agent: bench-agent
permissions:
  allow: ["tool:lookup"]
  deny: ["tool:delete_*"]
"""


@tool
def lookup(customer_id: int, fields: list[str] | None = None) -> str:
    """Look up a customer record by id."""
    return f"customer {customer_id}: " + ",".join(fields or ["name"])


def _timings(invoke: Callable[[int], Any], calls: int) -> list[float]:
    """Per-call wall time in microseconds, GC paused during the timed loop."""
    out = []
    gc.collect()
    gc.disable()
    try:
        for i in range(calls):
            t0 = time.perf_counter_ns()
            invoke(i)
            out.append((time.perf_counter_ns() - t0) / 1000)
    finally:
        gc.enable()
    return out


def _interleaved(
    runners: dict[str, Callable[[int], Any]], calls: int, rounds: int, warmup: int
) -> dict[str, list[float]]:
    """Warm every side up, then time them in interleaved rounds, so drift on a shared machine hits all alike."""
    for runner in runners.values():
        _timings(runner, warmup)
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            samples[name].extend(_timings(runner, calls))
    return samples


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.contextmanager
def _bench_governor() -> Iterator[Governor]:
    """A Governor with the benchmark policy, its policy, trail and identities in a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "policies").mkdir()
        (base / "policies" / "bench.yaml").write_text(POLICY)
        with Governor(
            policy_path=base / "policies", audit_path=base / "audit", identity_path=base / "identities"
        ) as gov:
            yield gov


class _NoOpGovernor(Governor):
    """A Governor that allows every call and records nothing: what is left is the adapter's own glue."""

    def before_call(self, call: ToolCall) -> Decision:
        return Decision(Outcome.ALLOW, "no-op", call)

    def after_call(self, call: ToolCall, decision: Decision, outcome: CallOutcome) -> None:
        return None


def run(calls: int, rounds: int) -> dict[str, float]:
    """Measure both sides in interleaved rounds; return medians and p99s in microseconds and the ratio."""
    with _bench_governor() as gov:
        governed: BaseTool = GovernedTool(lookup, governor=gov, agent_id="bench-agent")
        sides: dict[str, BaseTool] = {"ungoverned": lookup, "governed": governed}

        def caller(t: BaseTool) -> Callable[[int], Any]:
            def call(i: int) -> Any:
                msg = t.invoke(
                    {
                        "type": "tool_call",
                        "name": "lookup",
                        "id": f"call_{i}",
                        "args": {"customer_id": i, "fields": ["name", "email"]},
                    }
                )
                assert isinstance(msg, ToolMessage) and msg.status == "success", msg
                return msg

            return call

        def core(i: int) -> None:  # the governor alone, same call shape: decision, run, outcome
            call = gov.make_call(
                "bench-agent",
                "tool:lookup",
                {"customer_id": i, "fields": ["name", "email"]},
                framework="langchain",
                call_id=f"call_{i}",
                metadata={"tool": "lookup"},
            )
            decision = gov.before_call(call)
            assert decision.allowed, decision.reason
            gov.after_call(call, decision, CallOutcome(True, "customer", None, 0.01))

        runners: dict[str, Callable[[int], Any]] = {name: caller(t) for name, t in sides.items()}
        runners["governor_only"] = core
        plain = runners["ungoverned"]

        def side_by_side(i: int) -> None:  # LangChain, then the governor, no adapter in between
            plain(i)
            core(i)

        runners["langchain_plus_governor"] = side_by_side
        # The floor: the adapter's glue (a GovernedTool over a governor that allows everything and records
        # nothing) and, separately, the least audit work DESIGN asks for, right after a LangChain call.
        with _NoOpGovernor() as noop, floor_entries() as floor:
            runners["noop_governor"] = caller(GovernedTool(lookup, governor=noop, agent_id="bench-agent"))

            def langchain_plus_floor(i: int) -> None:
                plain(i)
                floor(i)

            runners["langchain_plus_floor"] = langchain_plus_floor
            samples = _interleaved(runners, calls, rounds, warmup=200)  # warm-up: schemas, identity, segment
        entries = sum(1 for _ in gov.audit.entries())
    result = {
        f"{name}_{stat}": fn(values)
        for name, values in samples.items()
        for stat, fn in (("p50", statistics.median), ("p99", lambda v: _pct(v, 0.99)))
    }
    result["ratio_p50"] = result["governed_p50"] / result["ungoverned_p50"]
    result["added_p50_us"] = result["governed_p50"] - result["ungoverned_p50"]
    result["adapter_p50_us"] = result["governed_p50"] - result["langchain_plus_governor_p50"]
    result["floor_adapter_us"] = result["noop_governor_p50"] - result["ungoverned_p50"]
    result["floor_audit_us"] = result["langchain_plus_floor_p50"] - result["ungoverned_p50"]
    result["floor_p50_us"] = result["floor_adapter_us"] + result["floor_audit_us"]
    result["audit_entries"] = float(entries)
    return result


def run_agent(calls: int, rounds: int) -> dict[str, float]:
    """One create_agent turn that calls the tool once, governed versus ungoverned; medians in microseconds."""
    from claw_governance_langchain.testing import ScriptedChatModel
    from langchain.agents import create_agent
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

    ids = iter(range(10**9))

    def reply(messages: list[BaseMessage]) -> AIMessage:  # ask for the tool once, then answer
        if isinstance(messages[-1], HumanMessage):
            i = next(ids)
            return AIMessage(
                "",
                tool_calls=[
                    {
                        "name": "lookup",
                        "id": f"call_{i}",
                        "type": "tool_call",
                        "args": {"customer_id": i, "fields": ["name", "email"]},
                    }
                ],
            )
        return AIMessage("done")

    with _bench_governor() as gov:
        agents = {
            "ungoverned": create_agent(ScriptedChatModel(replies=[reply]), [lookup]),
            "governed": create_agent(
                ScriptedChatModel(replies=[reply]), [GovernedTool(lookup, governor=gov, agent_id="bench-agent")]
            ),
        }

        def turn(agent: Any) -> Callable[[int], Any]:
            def call(_i: int) -> Any:
                out = agent.invoke({"messages": [HumanMessage("look up a customer")]})
                assert out["messages"][2].status == "success", out["messages"][2]
                return out

            return call

        samples = _interleaved({name: turn(agent) for name, agent in agents.items()}, calls, rounds, warmup=50)
    result = {f"agent_{name}_p50": statistics.median(values) for name, values in samples.items()}
    result["agent_ratio_p50"] = result["agent_governed_p50"] / result["agent_ungoverned_p50"]
    result["agent_added_p50_us"] = result["agent_governed_p50"] - result["agent_ungoverned_p50"]
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls per side per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--check", action="store_true", help="exit 1 if governance adds >= 10%%")
    parser.add_argument("--agent-calls", type=int, default=300, help="agent turns per side per round")
    args = parser.parse_args(argv)
    r = run(args.calls, args.rounds)
    n = args.calls * args.rounds
    print(f"LangChain tool.invoke(ToolCall), {n} calls per side ({args.rounds} interleaved rounds)")
    print(f"  ungoverned  p50 {r['ungoverned_p50']:8.1f} us   p99 {r['ungoverned_p99']:8.1f} us")
    print(f"  governed    p50 {r['governed_p50']:8.1f} us   p99 {r['governed_p99']:8.1f} us")
    print(
        f"  governance adds {r['added_p50_us']:.1f} us at p50: ratio {r['ratio_p50']:.3f} "
        f"({(r['ratio_p50'] - 1) * 100:+.1f}%), {int(r['audit_entries'])} audit entries written"
    )
    print(
        f"  the governor alone (before_call + after_call, same call): p50 {r['governor_only_p50']:.1f} us, "
        f"p99 {r['governor_only_p99']:.1f} us"
    )
    print(
        f"  LangChain call then governor calls, no adapter: p50 {r['langchain_plus_governor_p50']:.1f} us "
        f"-> the adapter's own share ~{r['adapter_p50_us']:.1f} us "
        f"({r['adapter_p50_us'] / r['ungoverned_p50'] * 100:+.1f}% of LangChain's cost)"
    )
    budget = r["ungoverned_p50"] * 0.10
    print(
        f"  floor: the adapter over a no-op governor adds {r['floor_adapter_us']:.1f} us; the least audit work "
        f"DESIGN asks for (two chained entries to the OS) adds {r['floor_audit_us']:.1f} us after a LangChain call"
    )
    print(
        f"  -> floor {r['floor_p50_us']:.1f} us = {r['floor_p50_us'] / r['ungoverned_p50'] * 100:.1f}% of "
        f"LangChain's cost (the 10% budget is {budget:.1f} us)"
    )
    a = run_agent(args.agent_calls, args.rounds)
    print(f"create_agent turn calling the tool once, {args.agent_calls * args.rounds} turns per side")
    print(f"  ungoverned  p50 {a['agent_ungoverned_p50']:8.1f} us")
    print(f"  governed    p50 {a['agent_governed_p50']:8.1f} us")
    print(
        f"  governance adds {a['agent_added_p50_us']:.1f} us at p50: ratio {a['agent_ratio_p50']:.3f} "
        f"({(a['agent_ratio_p50'] - 1) * 100:+.1f}%)"
    )
    if args.check and r["ratio_p50"] >= 1.10:
        print("FAIL: governance adds 10% or more to LangChain's own per-call cost")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
