"""Unit tests of the translation between openclaw.json tool policy and claw-governance policies, and of the
``claw-gov openclaw`` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from claw_governance_openclaw import (
    drift,
    effective_tools,
    export_openclaw_config,
    load_catalog,
    openclaw_config_from_policy,
    policy_from_openclaw_config,
)
from claw_governance_openclaw.translate import governance_offers, policy_yaml
from click.testing import CliRunner

from claw_governance.cli import build_cli
from claw_governance.policy import load_policy_set

CAT = load_catalog()

CONFIG: dict[str, Any] = {
    "tools": {"profile": "coding", "deny": ["group:runtime", "mcp_danger_*"]},
    "agents": {
        "entries": {
            "ops": {"tools": {"allow": ["read", "write", "mcp_*"], "deny": ["edit"]}},
            "chat": {"tools": {"profile": "messaging"}},
            "open": {"tools": {"profile": "full"}},
        }
    },
}


def _write(folder: Path, policies: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for p in policies:
        (folder / f"{p['agent']}.yaml").write_text(policy_yaml(p), encoding="utf-8")
    return folder


def test_import_policy_shape() -> None:
    policies = policy_from_openclaw_config(CONFIG)
    assert [p["agent"] for p in policies] == ["ops", "chat", "open"]
    ops = policies[0]
    assert set(ops) == {"agent", "description", "permissions"}
    assert ops["permissions"]["allow"] == ["tool:read", "tool:write", "tool:apply_patch"]
    assert "tool:exec" in ops["permissions"]["deny"] and "tool:mcp_danger_*" in ops["permissions"]["deny"]
    # the profile (coding) does not admit mcp_* tools, so the import does not either
    assert "tool:mcp_*" not in ops["permissions"]["allow"]
    # "full" admits unlisted (plugin) tools: tool:* plus the denies
    open_ = policies[2]
    assert "tool:*" in open_["permissions"]["allow"]
    assert "tool:exec" in open_["permissions"]["deny"]


def test_imported_policies_load_and_agree_with_openclaw(tmp_path: Path) -> None:
    folder = _write(tmp_path / "p", policy_from_openclaw_config(CONFIG))
    policy = load_policy_set(folder)
    for agent in ("ops", "chat", "open"):
        offered = effective_tools(CONFIG, agent)
        for tool in CAT.tools:
            assert governance_offers(policy, agent, tool) == (tool in offered), (agent, tool)
    assert all(not d.drifted for d in drift(CONFIG, folder))


def test_noncore_allow_entries_are_kept_when_every_layer_admits_them() -> None:
    config = {
        "tools": {"allow": ["read", "mcp_fs_*", "myplugin_tool"]},
        "agents": {"entries": {"a": {"tools": {"allow": ["mcp_fs_read", "read", "myplugin_tool"]}}}},
    }
    allow = policy_from_openclaw_config(config)[0]["permissions"]["allow"]
    assert allow == ["tool:read", "tool:myplugin_tool", "tool:mcp_fs_read"]


def test_legacy_list_and_default_agent() -> None:
    assert [p["agent"] for p in policy_from_openclaw_config({})] == ["main"]
    legacy = {"agents": {"list": [{"id": "Main", "tools": {"allow": ["read"]}}]}}
    assert policy_from_openclaw_config(legacy)[0]["permissions"]["allow"] == ["tool:read"]


def test_provider_specific_import() -> None:
    config = {"tools": {"byProvider": {"openai": {"deny": ["exec"]}}}}
    assert "tool:exec" in policy_from_openclaw_config(config)[0]["permissions"]["allow"]
    assert "tool:exec" in policy_from_openclaw_config(config, provider="openai")[0]["permissions"]["deny"]


GOV = [
    {
        "agent": "ops",
        "permissions": {
            "allow": ["tool:read", "tool:write", "tool:mcp_*"],
            "deny": ["tool:exec"],
            "escalate": ["tool:message", {"action": "tool:web_fetch", "condition": 'url == "x"'}],
        },
    },
    {
        "agent": "*",
        "permissions": {
            "allow": ["tool:session_status"],
            "deny": [{"action": "tool:read", "condition": 'path == "/etc/shadow"'}],
        },
    },
]


def test_export_fragment_makes_openclaw_match_governance(tmp_path: Path) -> None:
    result = export_openclaw_config(GOV)
    fragment = result.fragment
    ops_tools = fragment["agents"]["entries"]["ops"]["tools"]
    assert ops_tools["profile"] == "full"
    # allow + escalate (also conditional) + the conditional deny's tool are offered; mcp_* kept as a pattern
    assert set(ops_tools["allow"]) == {"read", "write", "message", "web_fetch", "session_status", "mcp_*"}
    # governance does not allow apply_patch: the explicit deny beats OpenClaw's write -> apply_patch quirk
    assert "exec" in ops_tools["deny"] and "apply_patch" in ops_tools["deny"]
    # applying the fragment to OpenClaw yields exactly what governance may allow
    assert effective_tools(fragment, "ops") == {"read", "write", "message", "web_fetch", "session_status"}
    # agents outside agents.entries get the union (noted); the bridge still applies the '*' policy per call
    assert effective_tools(fragment, "someone-else") == {"read", "session_status", "write", "message", "web_fetch"}
    assert result.notes
    folder = _write(tmp_path / "g", GOV)
    assert not next(d for d in drift(fragment, folder) if d.agent_id == "ops").drifted
    assert openclaw_config_from_policy(folder) == fragment


def test_drift_both_directions(tmp_path: Path) -> None:
    folder = _write(tmp_path / "g", [{"agent": "ops", "permissions": {"allow": ["tool:read", "tool:exec"]}}])
    config = {"agents": {"entries": {"ops": {"tools": {"allow": ["read", "write"]}}, "extra": {}}}}
    report = {d.agent_id: d for d in drift(config, folder)}
    assert report["ops"].offered_but_denied == ("write", "apply_patch")
    assert report["ops"].allowed_but_withheld == ("exec",)
    assert report["extra"].in_openclaw and not report["extra"].in_governance
    assert len(report["extra"].offered_but_denied) == len(CAT.tools)


# -------------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_cli_import_export_drift(runner: CliRunner, tmp_path: Path) -> None:
    cli = build_cli()
    config = tmp_path / "openclaw.json"
    config.write_text("// JSON5\n" + json.dumps(CONFIG))
    out = tmp_path / "policies"
    result = runner.invoke(cli, ["openclaw", "import", str(config), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["chat.yaml", "open.yaml", "ops.yaml"]
    doc = yaml.safe_load((out / "ops.yaml").read_text())
    assert doc["agent"] == "ops" and "tool:read" in doc["permissions"]["allow"]
    again = runner.invoke(cli, ["openclaw", "import", str(config), "-o", str(out)])
    assert again.exit_code == 2 and "exists" in again.output and "Traceback" not in again.output

    result = runner.invoke(cli, ["openclaw", "drift", str(config), str(out)])
    assert result.exit_code == 0, result.output
    assert "ops: in sync" in result.output

    result = runner.invoke(cli, ["openclaw", "export", str(out)])
    assert result.exit_code == 0, result.output
    fragment = json.loads(result.stdout)
    assert set(fragment["agents"]["entries"]) == {"ops", "chat", "open"}

    (out / "ops.yaml").write_text(policy_yaml({"agent": "ops", "permissions": {"allow": ["tool:read"]}}))
    result = runner.invoke(cli, ["openclaw", "drift", str(config), str(out), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    ops = next(a for a in data["agents"] if a["agent"] == "ops")
    assert data["drift"] and ops["offered_but_denied"] == ["write", "apply_patch"]


def test_cli_tools_and_errors(runner: CliRunner, tmp_path: Path) -> None:
    cli = build_cli()
    config = tmp_path / "openclaw.json"
    config.write_text("{ tools: { profile: 'minimal' } }")
    result = runner.invoke(cli, ["openclaw", "tools", str(config), "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["offered"] == ["session_status", "gateway"]
    assert data["removed"]["exec"] == "tools.profile (minimal)"
    config.write_text("{ tools: ")
    result = runner.invoke(cli, ["openclaw", "tools", str(config)])
    assert result.exit_code == 2 and result.output.startswith("error: ") and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(cli, ["openclaw", "drift", str(tmp_path / "nope.json"), str(tmp_path)])
    assert result.exit_code == 2 and "cannot read" in result.output
    result = runner.invoke(cli, ["openclaw", "export", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(cli, ["openclaw", "tools", str(config), "--openclaw-version", "1.0"])
    assert result.exit_code == 2 and "no tool catalog" in result.output
