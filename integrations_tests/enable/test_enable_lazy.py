"""``gov.enable()`` imports no framework the process has not imported itself, yet governs one imported later.

Each scenario runs in a fresh interpreter, since what is imported is process state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

POLICY = """\
agent: research-agent
permissions:
  allow: ["tool:search"]
  deny: ["tool:delete_*"]
"""


def run(tmp_path: Path, body: str, env: dict[str, str] | None = None) -> dict[str, object]:
    (tmp_path / "policies").mkdir(exist_ok=True)
    (tmp_path / "policies" / "p.yaml").write_text(POLICY)
    script = (
        textwrap.dedent("""
        import json, sys
        from claw_governance import Governor
        gov = Governor(policy_path="policies", audit_path="audit", identity_path="identities")
        out = {}
    """)
        + textwrap.dedent(body)
        + "\nprint(json.dumps(out))\n"
    )
    full_env = {
        **os.environ,
        "CREWAI_DISABLE_TELEMETRY": "true",
        "OTEL_SDK_DISABLED": "true",
        "CREWAI_TRACING_ENABLED": "false",
        "HOME": str(tmp_path),
        **(env or {}),
    }
    full_env.pop("CLAW_AGENT_ID", None)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=full_env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_enabling_in_a_langchain_process_does_not_import_crewai(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        '''
        from langchain_core.tools import tool
        gov.enable()
        out["crewai_imported"] = "crewai" in sys.modules
        @tool
        def delete_rows(table: str) -> str:
            """Delete rows."""
            return "deleted"
        try:
            delete_rows.invoke({"table": "t"}, config={"metadata": {"claw_agent_id": "research-agent"}})
            out["ran"] = True
        except Exception as exc:
            out["ran"] = False
            out["error"] = type(exc).__name__
        out["crewai_imported_after"] = "crewai" in sys.modules
    ''',
    )
    assert out == {"crewai_imported": False, "ran": False, "error": "ToolCallDenied", "crewai_imported_after": False}


def test_enable_before_any_framework_import_governs_it_once_imported(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        """
        gov.enable()
        out["before"] = sorted(m for m in ("crewai", "langchain_core") if m in sys.modules)
        import crewai
        from claw_governance_crewai.hooks import is_enabled
        out["crewai_governed"] = is_enabled(gov)
        from langchain_core.tools import tool
        from claw_governance_langchain import active_handler
        out["langchain_governed"] = active_handler() is not None and active_handler().governor is gov
        gov.close()
        out["crewai_after_close"] = is_enabled(gov)
    """,
    )
    assert out["before"] == []
    assert out["crewai_governed"] is True and out["langchain_governed"] is True
    assert out["crewai_after_close"] is True  # closing never opens a door: the hooks stay, denying


def test_disable_before_the_import_cancels(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        """
        gov.enable()
        gov.disable()
        from langchain_core.tools import tool
        from claw_governance_langchain import active_handler
        out["governed"] = active_handler() is not None
    """,
    )
    assert out == {"governed": False}


def test_unnamed_agent_first_denial_says_how_to_name_it(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        '''
        from langchain_core.tools import tool
        gov.enable()
        @tool
        def search(query: str) -> str:
            """Search."""
            return "found"
        try:
            search.invoke({"query": "q"})
        except Exception as exc:
            out["error"] = str(exc)
        out["named"] = search.invoke({"query": "q"}, config={"metadata": {"lc_agent_name": "research-agent"}})
    ''',
    )
    assert "langchain-agent" in str(out["error"]) and "create_agent(name=...)" in str(out["error"])
    assert "$CLAW_AGENT_ID" in str(out["error"])
    assert out["named"] == "found"  # a create_agent(name="research-agent") run is governed as that agent
