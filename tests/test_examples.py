"""Every example runs, offline, and says what it should."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_example(name: str, cwd: Path) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / name)], cwd=cwd, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_demo_shows_allowed_denied_escalated_with_reasons(tmp_path: Path) -> None:
    out = run_example("demo.py", tmp_path)
    assert 'ALLOW  Allowed by allow rule "read:customer_data"' in out
    assert 'DENY  Denied by deny rule "delete:*"' in out
    assert "ESCALATE  Needs human approval under escalate rule \"refund_requests\" when amount > 500" in out
    assert "tool ran once: refunds issued [750.0]" in out
    assert "chain valid: True" in out
    assert "'total_decisions': 5" in out
    assert "\033[" not in out  # no colour codes when not on a terminal
    assert (tmp_path / "demo-output" / "audit").is_dir()


def test_basic_usage(tmp_path: Path) -> None:
    out = run_example("basic_usage.py", tmp_path)
    assert "Action completed: {'id': 12345" in out
    assert "Action denied: Denied by deny rule \"delete:*\"" in out
    assert "this never prints" not in out
    assert "Audit chain valid: True" in out
