"""OpenTelemetry spans, recorded by the real SDK's in-memory exporter: one span per governed call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from claw_governance import Governor

POLICY = """\
agent: bot
permissions:
  allow: ["read:*", "work"]
  deny: ["delete:*"]
  escalate:
    - action: refund
      reason: Refunds need finance
      timeout: 1h
"""


@pytest.fixture
def traced() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def test_one_span_per_call_with_the_decision(
    make_governor: Callable[..., Governor], traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = traced
    gov = make_governor(POLICY, tracer_provider=provider)
    agent = gov.agent("bot")
    parent_tracer = provider.get_tracer("app")
    with parent_tracer.start_as_current_span("agent run") as parent:
        assert agent.execute("read:file", {"path": "/a"}, lambda ctx: "ok").success
        assert not agent.check("delete:users").allowed
        escalated = agent.check("refund", {"amount": 9})
        failed = agent.execute("work", {}, lambda ctx: 1 / 0)
    spans = {s.name: s for s in exporter.get_finished_spans() if s.name.startswith("claw.govern")}
    assert set(spans) == {"claw.govern read:file", "claw.govern delete:users", "claw.govern refund", "claw.govern work"}
    for span in spans.values():  # children of the application's span
        assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
        assert span.context.trace_id == parent.get_span_context().trace_id
        assert span.attributes["claw.agent_id"] == "bot"
        assert len(span.attributes["claw.policy_hash"]) == 64
        assert span.attributes["claw.decision.duration_ms"] >= 0 and span.attributes["claw.audit.duration_ms"] > 0
    ok = spans["claw.govern read:file"]
    assert ok.attributes["claw.outcome"] == "allow" and ok.attributes["claw.tool.success"] is True
    assert ok.attributes["claw.rule.pattern"] == "read:*" and ok.attributes["claw.rule"].endswith(":3")
    assert ok.attributes["claw.tool.duration_ms"] >= 0 and not ok.events
    denied = spans["claw.govern delete:users"]
    assert denied.attributes["claw.outcome"] == "deny" and [e.name for e in denied.events] == ["claw.denied"]
    assert 'deny rule "delete:*"' in denied.events[0].attributes["claw.reason"]
    assert denied.status.status_code is StatusCode.UNSET  # a policy answer is not an error
    esc = spans["claw.govern refund"]
    assert esc.attributes["claw.escalation_id"] == escalated.escalation_id
    assert [e.name for e in esc.events] == ["claw.escalated"]
    assert esc.events[0].attributes["claw.escalation_id"] == escalated.escalation_id
    bad = spans["claw.govern work"]
    assert not failed.success and bad.status.status_code is StatusCode.ERROR
    assert bad.attributes["claw.tool.success"] is False and "ZeroDivisionError" in bad.attributes["claw.tool.error"]


def test_a_governance_fault_is_an_error_span(
    make_governor: Callable[..., Governor], traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    from claw_governance.hookspecs import hookimpl

    class Broken:
        @hookimpl
        def claw_decide(self, call: object, policy: object) -> None:
            raise RuntimeError("bug")

    provider, exporter = traced
    gov = make_governor(POLICY, tracer_provider=provider)
    gov.register_plugin(Broken())
    assert not gov.agent("bot").check("read:x").allowed
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR and span.attributes["claw.stage"] == "plugin"


def test_open_spans_end_at_close_and_no_provider_means_no_spans(
    make_governor: Callable[..., Governor], traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = traced
    gov = make_governor(POLICY, tracer_provider=provider)
    gov.agent("bot")
    call = gov.make_call("bot", "read:x", {})
    assert gov.before_call(call).allowed  # the tool never reports back
    assert exporter.get_finished_spans() == ()
    gov.close()
    (span,) = exporter.get_finished_spans()
    assert span.attributes["claw.tool.outcome_unknown"] is True
    plain = make_governor(POLICY)  # no SDK provider anywhere: the API's no-op, nothing recorded
    assert not plain.tracer.enabled()
    assert plain.agent("bot").check("read:x").allowed


GLOBAL_PROVIDER = """
import sys
from pathlib import Path
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from claw_governance import Governor
root = Path(sys.argv[1])
with Governor(root / "policies", root / "audit", root / "ids", load_entry_points=False) as gov:
    agent = gov.agent("bot")
    agent.check("read:before")                      # no SDK yet: nothing recorded
    assert not gov.tracer.enabled()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)             # the application sets it up later, globally
    assert gov.tracer.enabled()
    agent.check("read:after")
    print(",".join(s.name for s in exporter.get_finished_spans()))
"""


def test_the_global_provider_is_picked_up_when_the_application_sets_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "bot.yaml").write_text(POLICY)
    done = subprocess.run(
        [sys.executable, "-c", GLOBAL_PROVIDER, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "claw.govern read:after"
