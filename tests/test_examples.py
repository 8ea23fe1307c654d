"""Every example runs, offline, and says what it should."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_example


def test_demo_shows_allowed_denied_escalated_with_reasons(tmp_path: Path) -> None:
    out = run_example("demo.py", tmp_path)
    assert 'ALLOW  Allowed by allow rule "read:customer_data"' in out
    assert 'DENY  Denied by deny rule "delete:*"' in out
    assert 'ESCALATE  Needs human approval under escalate rule "refund_requests" when amount > 500' in out
    assert "tool ran once: refunds issued [750.0]" in out
    assert "chain valid: True" in out
    assert "'total_decisions': 5" in out
    assert "\033[" not in out  # no colour codes when not on a terminal
    assert (tmp_path / "demo-output" / "audit").is_dir()


def test_basic_usage(tmp_path: Path) -> None:
    out = run_example("basic_usage.py", tmp_path)
    assert "Action completed: {'id': 12345" in out
    assert 'Action denied: Denied by deny rule "delete:*"' in out
    assert "this never prints" not in out
    assert "Audit chain valid: True" in out


def test_plugin_change_window(tmp_path: Path) -> None:
    out = run_example("plugin_change_window.py", tmp_path)
    lines = out.splitlines()
    assert lines[0].startswith("DENY     deploy:web   deploys need a change ticket")
    assert lines[1].startswith('ALLOW    deploy:web   Allowed by allow rule "deploy:*"')
    assert lines[3].startswith('DENY     delete:web   Denied by deny rule "delete:*"')  # the plugin cannot widen
    assert "'policy_decision': 4" in out and "chain valid: True" in out


def test_shadow_and_replay(tmp_path: Path) -> None:
    out = run_example("shadow_and_replay.py", tmp_path)
    assert "ALLOW    http:post {'url': 'https://paste.example.net/upload'}" in out  # the shadow rule did not decide
    assert (
        "http:post {'url': 'https://paste.example.net/upload'}: enforced allow, would_deny (support-bot.yaml:12)"
    ) in out
    assert out.count("would_deny") == 1  # the internal post would not change
    assert "allow -> deny      1" in out and "allow -> escalate  1" in out
    assert "replayed 6 decision(s)" in out and "2 would flip, 1 between allow and deny" in out
    assert "(exit 1)" in out


def test_budgets(tmp_path: Path) -> None:
    out = run_example("budgets.py", tmp_path)
    assert "one $900 refund: escalate" in out
    assert "the other process got 3 refunds of $400 through" in out
    assert "$400 refund #2 here: allow" in out  # 5 x 400 = 2000 over both processes
    assert "$400 refund #3 here: escalate (2000 of 2000 used by this agent in the last 1d" in out
    assert "after a human approved it: refunded" in out


def test_data_flow_labels(tmp_path: Path) -> None:
    out = run_example("data_flow_labels.py", tmp_path).splitlines()
    assert out[0].startswith("http:post") and out[0].endswith(" ran")  # nothing read yet
    assert out[2].startswith("http:post") and out[2].endswith(" deny")  # after reading customer records
    assert "internal.example.com" in out[3] and out[3].endswith(" ran")
    assert out[5].startswith("exec") and out[5].endswith(" escalate")  # after reading the web
    assert out[6] == "without session state: deny"
