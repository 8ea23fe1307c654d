"""A real crew (scripted LLM) under claw-governance with the OpenTelemetry SDK's in-memory exporter.

``python crewai_tracing.py OUT_FILE``: for both tool paths, one crew run inside an application span; writes the
governed spans (name, parent, attributes, events) as JSON. Run by test_crewai_tracing.py in the isolated
crewai environment (conftest.py).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from crewai_scenarios import PATHS, Scene, enabled, kickoff

# crewai is imported (with its own telemetry off); the SDK must not be disabled for OUR spans.
os.environ.pop("OTEL_SDK_DISABLED", None)

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def main(out_file: str) -> int:
    root = Path(out_file).parent
    result: dict[str, Any] = {}
    for path in PATHS:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        scene = Scene(root, f"tracing-{path}", tracer_provider=provider)
        with enabled(scene.gov), provider.get_tracer("app").start_as_current_span(f"crew {path}") as run:
            crew = kickoff(
                path,
                [scene.tools["lookup"], scene.tools["delete_records"]],
                [("lookup", {"query": "tides"}), ("delete_records", {"table": "users"})],
            )
        scene.gov.close()
        spans = [
            {
                "name": s.name,
                "parent": s.parent.span_id if s.parent else None,
                "trace": s.context.trace_id,
                "attributes": dict(s.attributes or {}),
                "events": [e.name for e in s.events],
            }
            for s in exporter.get_finished_spans()
            if s.name.startswith("claw.govern")
        ]
        result[path] = {
            "run_span": run.get_span_context().span_id,
            "run_trace": run.get_span_context().trace_id,
            "ran": scene.ran,
            "spans": spans,
            "error": crew["error"],
        }
    Path(out_file).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
