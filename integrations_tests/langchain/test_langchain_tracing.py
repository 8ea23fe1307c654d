"""OpenTelemetry under real LangChain: a create_agent run (langgraph ToolNode, tools in worker threads) inside an
application span; every governed tool call is one span, a child of that span, recorded by the SDK."""

from __future__ import annotations

from pathlib import Path

from claw_governance_langchain import govern_tools
from claw_governance_langchain.testing import ScriptedChatModel, tool_call
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import BaseTool
from langchain_itest_support import AGENT, POLICY, Effects
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from claw_governance import Governor


def test_create_agent_spans_are_children_of_the_app_span(
    tmp_path: Path, tools: dict[str, BaseTool], effects: Effects
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "research.yaml").write_text(POLICY)
    model = ScriptedChatModel(
        replies=[
            AIMessage(
                "",
                tool_calls=[  # one turn, three calls: ToolNode runs them in parallel threads
                    tool_call("search", {"query": "governance"}, "k1"),
                    tool_call("delete_records", {"table": "customers"}, "k2"),
                    tool_call("send_email", {"to": "cfo@example.com", "body": "hi"}, "k3"),
                ],
            ),
            AIMessage("done"),
        ]
    )
    with Governor(tmp_path / "policies", tmp_path / "audit", tmp_path / "identities", tracer_provider=provider) as gov:
        inner = [tools[n] for n in ("search", "delete_records", "send_email")]
        agent = create_agent(model, govern_tools(inner, governor=gov, agent_id=AGENT))
        with provider.get_tracer("app").start_as_current_span("research run") as run:
            agent.invoke({"messages": [HumanMessage("research and clean up")]})
        escalation = gov.escalations.pending()[0].id
    assert effects.names() == ["search"]
    spans = {s.attributes["claw.call_id"]: s for s in exporter.get_finished_spans() if s.name.startswith("claw.govern")}
    assert set(spans) == {"k1", "k2", "k3"}
    for span in spans.values():
        assert span.parent is not None and span.parent.span_id == run.get_span_context().span_id
        assert span.attributes["claw.framework"] == "langchain" and span.attributes["claw.agent_id"] == AGENT
    assert spans["k1"].attributes["claw.outcome"] == "allow" and spans["k1"].attributes["claw.tool.success"]
    assert spans["k1"].name == "claw.govern tool:search"
    assert [e.name for e in spans["k2"].events] == ["claw.denied"]
    assert spans["k3"].attributes["claw.escalation_id"] == escalation
    assert [e.name for e in spans["k3"].events] == ["claw.escalated"]
