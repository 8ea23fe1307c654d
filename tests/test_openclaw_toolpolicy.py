"""Unit tests of the Python model of OpenClaw 2026.9.6 tool policy (matching, layering, config reading)."""

from __future__ import annotations

from pathlib import Path

import pytest
from claw_governance_openclaw import (
    OpenClawConfigError,
    ToolPolicy,
    agent_ids,
    compile_matcher,
    effective_tools,
    load_catalog,
    load_openclaw_config,
    normalize_agent_id,
    normalize_tool_name,
    resolve_tool_policy,
    supported_versions,
)

CAT = load_catalog()
ALL = frozenset(CAT.tools)


def test_catalog_2026_9_6_shape() -> None:
    assert "2026.9.6" in supported_versions()
    assert CAT.version == "2026.9.6"
    assert len(CAT.tools) == 61
    assert CAT.groups["group:fs"] == ("ls", "read", "write", "edit", "apply_patch")
    assert CAT.groups["group:runtime"] == ("exec", "process", "code_execution", "secrets")
    assert CAT.profiles["minimal"].allow == ("session_status", "gateway")
    assert CAT.profiles["full"].allow == ("*",)
    assert "bundle-mcp" in (CAT.profiles["coding"].allow or ())
    assert "canvas" not in CAT.groups["group:openclaw"]


def test_unknown_catalog_version() -> None:
    with pytest.raises(ValueError, match=r"no tool catalog for OpenClaw 1999\.1\.1"):
        load_catalog("1999.1.1")


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("Bash", "exec"),
        ("  EXEC ", "exec"),
        ("apply-patch", "apply_patch"),
        ("CRON", "automations"),
        ("read", "read"),
        ("", ""),
        (None, ""),
        (42, ""),
    ],
)
def test_normalize_tool_name(raw: object, norm: str) -> None:
    assert normalize_tool_name(raw) == norm


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("Ops", "ops"),
        ("ops team", "ops-team"),
        ("--x--", "x"),
        ("", "main"),
        (None, "main"),
        ("***", "main"),
    ],
)
def test_normalize_agent_id(raw: object, norm: str) -> None:
    assert normalize_agent_id(raw) == norm


def test_matcher_deny_wins_and_empty_allow_means_all() -> None:
    m = compile_matcher(ToolPolicy(allow=("*",), deny=("exec",)))
    assert m("read") and not m("exec") and not m("BASH")
    assert compile_matcher(ToolPolicy(allow=(), deny=None))("anything")
    assert compile_matcher(ToolPolicy(allow=None, deny=("r*",)))("exec")
    assert not compile_matcher(ToolPolicy(allow=None, deny=("r*",)))("read")


def test_matcher_globs_anywhere_anchored() -> None:
    m = compile_matcher(ToolPolicy(allow=("*_search", "web_*", "s*s*s")))
    assert m("memory_search") and m("web_fetch") and m("sessions")
    assert not m("memory_get") and not m("xweb_fetch")
    assert not compile_matcher(ToolPolicy(allow=("read",)))("read_more")
    # regex metacharacters are literal
    assert not compile_matcher(ToolPolicy(allow=("re.d",)))("read")


def test_matcher_groups_and_aliases() -> None:
    m = compile_matcher(ToolPolicy(allow=("group:fs", "bash")))
    assert all(m(t) for t in ("ls", "read", "write", "edit", "apply_patch", "exec"))
    assert not m("process")
    assert not compile_matcher(ToolPolicy(deny=("Group:Runtime",)))("exec")


def test_write_allows_apply_patch_but_deny_write_does_not_deny_it() -> None:
    assert compile_matcher(ToolPolicy(allow=("write",)))("apply_patch")
    assert compile_matcher(ToolPolicy(allow=("w*",)))("apply_patch")
    assert compile_matcher(ToolPolicy(deny=("write",)))("apply_patch")
    assert not compile_matcher(ToolPolicy(allow=("write",), deny=("apply_patch",)))("apply_patch")


def test_shipped_renames_and_families() -> None:
    m = compile_matcher(ToolPolicy(allow=("update_plan", "canvas")))
    assert m("progress_card") and m("canvas") and m("show_widget")
    assert not compile_matcher(ToolPolicy(deny=("canvas",)))("show_widget")


def test_no_config_offers_everything() -> None:
    assert effective_tools({}, "main") == ALL


def test_profiles() -> None:
    assert effective_tools({"tools": {"profile": "minimal"}}, "main") == {"session_status", "gateway"}
    assert effective_tools({"tools": {"profile": "full"}}, "main") == ALL
    coding = effective_tools({"tools": {"profile": "coding"}}, "main")
    assert "exec" in coding and "message" not in coding and "browser" not in coding
    assert "message" in effective_tools({"tools": {"profile": "messaging"}}, "main")
    # unknown profile: no profile filtering (config validation would reject it)
    assert effective_tools({"tools": {"profile": "bogus"}}, "main") == ALL


def test_also_allow_extends_profile() -> None:
    tools = effective_tools({"tools": {"profile": "minimal", "alsoAllow": ["read", "group:web"]}}, "main")
    assert tools == {"session_status", "gateway", "read", "web_search", "web_fetch", "x_search"}


def test_also_allow_without_allow_is_star_plus() -> None:
    assert effective_tools({"tools": {"alsoAllow": ["read"]}}, "main") == ALL


def test_global_allow_and_deny() -> None:
    assert effective_tools({"tools": {"allow": ["read", "exec"]}}, "main") == {"read", "exec"}
    assert effective_tools({"tools": {"deny": ["group:openclaw"]}}, "main") == {
        "ls",
        "read",
        "write",
        "edit",
        "apply_patch",
        "exec",
        "process",
        "canvas",
    }
    assert effective_tools({"tools": {"allow": []}}, "main") == ALL


def test_layers_only_narrow() -> None:
    config = {"tools": {"profile": "minimal"}, "agents": {"entries": {"ops": {"tools": {"allow": ["exec"]}}}}}
    assert effective_tools(config, "ops") == set()
    config = {"tools": {"allow": ["read"]}, "agents": {"entries": {"ops": {"tools": {"allow": ["read", "exec"]}}}}}
    assert effective_tools(config, "ops") == {"read"}


def test_agent_profile_overrides_global_profile() -> None:
    config = {
        "tools": {"profile": "minimal"},
        "agents": {"entries": {"dev": {"tools": {"profile": "coding"}}, "ops": {}}},
    }
    assert "exec" in effective_tools(config, "dev")
    assert effective_tools(config, "ops") == {"session_status", "gateway"}


def test_agent_also_allow_overrides_global_also_allow() -> None:
    config = {
        "tools": {"profile": "minimal", "alsoAllow": ["read"]},
        "agents": {"entries": {"a": {"tools": {"alsoAllow": ["write"]}}}},
    }
    # agent alsoAllow replaces the global one for the profile merge; the global layer ("*", read) admits all
    assert effective_tools(config, "a") == {"session_status", "gateway", "write", "apply_patch"}


def test_agent_ids_entries_and_legacy_list() -> None:
    assert agent_ids({}) == ["main"]
    assert agent_ids({"agents": {"entries": {"Ops": {}, "dev": {"tools": {}}}}}) == ["ops", "dev"]
    assert agent_ids({"agents": {"list": [{"id": "a"}, {"id": "B"}, "junk"]}}) == ["a", "b"]
    # entries win over list when both are present
    assert agent_ids({"agents": {"entries": {"x": {}}, "list": [{"id": "y"}]}}) == ["x"]


def test_legacy_agents_list() -> None:
    config = {
        "agents": {"list": [{"id": "main", "tools": {"deny": ["exec"]}}, {"id": "ro", "tools": {"allow": ["read"]}}]}
    }
    assert effective_tools(config, "ro") == {"read"}
    assert effective_tools(config, "main") == ALL - {"exec"}


def test_agents_defaults_tools_apply_only_without_roster() -> None:
    config = {"agents": {"defaults": {"tools": {"deny": ["exec"]}}}}
    assert "exec" not in effective_tools(config, "main")
    config = {"agents": {"defaults": {"tools": {"deny": ["exec"]}}, "entries": {"main": {}}}}
    assert "exec" in effective_tools(config, "main")


def test_unknown_agent_gets_global_layers_only() -> None:
    config = {"tools": {"deny": ["exec"]}, "agents": {"entries": {"ops": {"tools": {"allow": ["read"]}}}}}
    assert effective_tools(config, "stranger") == ALL - {"exec"}


def test_by_provider() -> None:
    config = {
        "tools": {
            "profile": "coding",
            "byProvider": {
                "OpenAI": {"deny": ["exec"]},
                "openai/gpt-5": {"profile": "minimal"},
                "anthropic": {"allow": ["read"]},
            },
        }
    }
    assert "exec" in effective_tools(config, "main")
    assert "exec" not in effective_tools(config, "main", "openai")
    assert effective_tools(config, "main", "openai", model="GPT-5") == {"session_status", "gateway"}
    assert effective_tools(config, "main", "anthropic") == {"read"}
    agent = {"agents": {"entries": {"a": {"tools": {"byProvider": {"openai": {"deny": ["read"]}}}}}}}
    assert "read" not in effective_tools(agent, "a", "openai")
    assert "read" in effective_tools(agent, "a", "anthropic")


def test_blocking_layer_names_the_layer() -> None:
    config = {
        "tools": {"profile": "coding", "deny": ["exec"]},
        "agents": {"entries": {"ops": {"tools": {"deny": ["read"]}}}},
    }
    resolved = resolve_tool_policy(config, "ops")
    assert resolved.blocking_layer("exec").label == "tools.allow"  # type: ignore[union-attr]
    assert resolved.blocking_layer("read").label == "agents.ops.tools.allow"  # type: ignore[union-attr]
    assert resolved.blocking_layer("message").label == "tools.profile (coding)"  # type: ignore[union-attr]
    assert resolved.blocking_layer("ls") is None


def test_extra_tool_names() -> None:
    assert effective_tools({"tools": {"allow": ["mcp_*"]}}, "main", tools=["mcp_fs", "read"]) == {"mcp_fs"}


def test_load_json5_with_includes_and_env(tmp_path: Path) -> None:
    (tmp_path / "agents.json5").write_text("{ entries: { ops: { tools: { allow: ['read'], }, }, }, }")
    (tmp_path / "a.json5").write_text("{ deny: ['exec'], profile: 'coding' }")
    (tmp_path / "b.json5").write_text("{ profile: 'minimal' }")
    (tmp_path / "openclaw.json").write_text("""
      // comments and trailing commas: JSON5
      {
        tools: { $include: ['./a.json5', './b.json5'], alsoAllow: ['${EXTRA_TOOL}'], },
        agents: { $include: './agents.json5' },
        gateway: { auth: { token: '$${NOT_ME}' } },
      }
    """)
    config = load_openclaw_config(tmp_path / "openclaw.json", env={"EXTRA_TOOL": "read"})
    assert config["tools"] == {"deny": ["exec"], "profile": "minimal", "alsoAllow": ["read"]}
    assert config["agents"]["entries"]["ops"]["tools"]["allow"] == ["read"]
    assert config["gateway"]["auth"]["token"] == "${NOT_ME}"
    assert load_openclaw_config(tmp_path, env={})["tools"]["alsoAllow"] == ["${EXTRA_TOOL}"]


def test_load_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "openclaw.json"
    bad.write_text("{\n tools: {\n  allow: [1,,]\n }\n}")
    with pytest.raises(OpenClawConfigError, match=r"openclaw.json:3: invalid JSON5"):
        load_openclaw_config(bad)
    with pytest.raises(OpenClawConfigError, match="cannot read"):
        load_openclaw_config(tmp_path / "missing.json")
    bad.write_text("{ tools: { $include: '../outside.json5' } }")
    with pytest.raises(OpenClawConfigError, match="outside the config folder"):
        load_openclaw_config(bad, env={})
    bad.write_text("{ tools: { $include: './openclaw.json' } }")
    with pytest.raises(OpenClawConfigError, match="circular"):
        load_openclaw_config(bad, env={})
    bad.write_text("[1, 2]")
    with pytest.raises(OpenClawConfigError, match="must be an object"):
        load_openclaw_config(bad, env={})
