"""examples/langchain_agent.py runs offline and shows each path doing what it says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "langchain_agent.py"


def test_langchain_example_runs() -> None:
    proc = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "call_1 web_search: success: 3 articles about AI governance" in out
    assert "call_2 delete_files: error: Tool 'delete_files' was not run: denied by governance policy" in out
    assert "call_3 send_email: error: Tool 'send_email' was not run: it needs human approval (escalation " in out
    assert "deleted: []  sent: []" in out
    assert "retry: success: email sent to boss@example.com; sent: ['boss@example.com']" in out
    assert 'blocked: ToolCallDenied: Denied by deny rule "tool:delete_*"' in out
    assert "held: EscalationRequired: escalation " in out
    assert "== audit: decisions {'allow': 3, 'deny': 2, 'escalate': 2}, 3 actions, chain valid: True" in out
