"""Differential test: our Python model of OpenClaw's tool policy against OpenClaw 2026.9.6's own resolver.

OpenClaw's resolver functions (``resolveEffectiveToolPolicy``, the tool-policy pipeline, the catalog) are
internal dist chunks, loaded by glob by ``adapters/openclaw/scripts/openclaw-policy-probe.mjs`` and run on
the cached Node 26. Every config of the corpus is resolved by both; the tool sets must be identical.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from claw_governance_openclaw import effective_tools_ordered, load_catalog, policy_from_openclaw_config
from openclaw_support import PROBE, OpenClawInstall

E = "entries"

# issue 13: entries for both a provider and one of its models (OpenClaw falls back to the provider's entry)
BY_MODEL: dict[str, Any] = {
    "tools": {
        "byProvider": {
            "openai": {"deny": ["web_search", "web_fetch", "x_search"]},
            "openai/gpt-5": {"allow": ["read", "web_search"]},
        }
    }
}

CORPUS: list[tuple[str, dict[str, Any], str, str | None, str | None]] = [
    # (id, config, agent id, provider, model)
    ("empty", {}, "main", None, None),
    ("profile-minimal", {"tools": {"profile": "minimal"}}, "main", None, None),
    ("profile-coding", {"tools": {"profile": "coding"}}, "main", None, None),
    ("profile-messaging", {"tools": {"profile": "messaging"}}, "main", None, None),
    ("profile-full", {"tools": {"profile": "full"}}, "main", None, None),
    ("profile-unknown", {"tools": {"profile": "bogus"}}, "main", None, None),
    ("profile-empty-string", {"tools": {"profile": ""}}, "main", None, None),
    ("allow-exact", {"tools": {"allow": ["read", "exec"]}}, "main", None, None),
    ("allow-empty-means-all", {"tools": {"allow": [], "deny": ["exec"]}}, "main", None, None),
    ("deny-only", {"tools": {"deny": ["exec", "process", "browser"]}}, "main", None, None),
    ("deny-wins", {"tools": {"allow": ["exec", "read"], "deny": ["exec"]}}, "main", None, None),
    ("groups-allow", {"tools": {"allow": ["group:fs", "group:web"]}}, "main", None, None),
    ("groups-deny", {"tools": {"deny": ["group:openclaw"]}}, "main", None, None),
    ("group-case", {"tools": {"allow": ["Group:Memory", " GROUP:MESSAGING "]}}, "main", None, None),
    ("glob-prefix", {"tools": {"allow": ["sessions_*"]}}, "main", None, None),
    ("glob-suffix", {"tools": {"allow": ["*_search"]}}, "main", None, None),
    ("glob-middle", {"tools": {"allow": ["s*s", "*e*_g*"]}}, "main", None, None),
    ("glob-star-deny", {"tools": {"allow": ["*"], "deny": ["*_generate", "web_*"]}}, "main", None, None),
    ("glob-regex-chars", {"tools": {"allow": ["re.d", "(exec)", "ls+"]}}, "main", None, None),
    ("aliases", {"tools": {"allow": ["BASH", "apply-patch", "cron", "Read"]}}, "main", None, None),
    ("alias-deny", {"tools": {"profile": "coding", "deny": ["bash"]}}, "main", None, None),
    ("write-allows-apply-patch", {"tools": {"allow": ["write"]}}, "main", None, None),
    ("write-glob-apply-patch", {"tools": {"allow": ["wr*"]}}, "main", None, None),
    ("deny-write-keeps-apply-patch", {"tools": {"deny": ["write"]}}, "main", None, None),
    ("write-allowed-apply-patch-denied", {"tools": {"allow": ["write"], "deny": ["apply_patch"]}}, "main", None, None),
    ("renames-families", {"tools": {"allow": ["update_plan", "canvas"]}}, "main", None, None),
    ("canvas-deny", {"tools": {"deny": ["canvas"]}}, "main", None, None),
    ("also-allow-profile", {"tools": {"profile": "minimal", "alsoAllow": ["read", "group:web"]}}, "main", None, None),
    ("also-allow-alone", {"tools": {"alsoAllow": ["read"], "deny": ["exec"]}}, "main", None, None),
    ("also-allow-with-empty-allow", {"tools": {"allow": [], "alsoAllow": ["read"]}}, "main", None, None),
    ("plugin-group-only", {"tools": {"allow": ["group:plugins"]}}, "main", None, None),
    ("unknown-entries", {"tools": {"allow": ["read", "no_such_tool"]}}, "main", None, None),
    ("agent-entry-allow", {"agents": {E: {"ops": {"tools": {"allow": ["read", "write"]}}}}}, "ops", None, None),
    (
        "agent-narrows-global",
        {"tools": {"allow": ["read", "exec"]}, "agents": {E: {"ops": {"tools": {"allow": ["read", "write"]}}}}},
        "ops",
        None,
        None,
    ),
    (
        "agent-profile-overrides",
        {"tools": {"profile": "minimal"}, "agents": {E: {"dev": {"tools": {"profile": "coding"}}}}},
        "dev",
        None,
        None,
    ),
    (
        "agent-without-tools",
        {"tools": {"profile": "messaging"}, "agents": {E: {"ops": {}, "dev": {}}}},
        "ops",
        None,
        None,
    ),
    (
        "agent-also-allow",
        {
            "tools": {"profile": "minimal", "alsoAllow": ["read"]},
            "agents": {E: {"a": {"tools": {"alsoAllow": ["write"]}}}},
        },
        "a",
        None,
        None,
    ),
    (
        "agent-deny-global-allow",
        {"tools": {"profile": "coding"}, "agents": {E: {"a": {"tools": {"deny": ["group:runtime", "web_*"]}}}}},
        "a",
        None,
        None,
    ),
    ("agent-key-case", {"agents": {E: {"Ops": {"tools": {"allow": ["read"]}}}}}, "OPS", None, None),
    (
        "unknown-agent",
        {"tools": {"deny": ["exec"]}, "agents": {E: {"ops": {"tools": {"allow": ["read"]}}}}},
        "stranger",
        None,
        None,
    ),
    (
        "legacy-list",
        {
            "agents": {
                "list": [{"id": "main", "tools": {"deny": ["exec"]}}, {"id": "ro", "tools": {"allow": ["read", "ls"]}}]
            }
        },
        "ro",
        None,
        None,
    ),
    ("legacy-list-main", {"agents": {"list": [{"id": "main", "tools": {"deny": ["exec"]}}]}}, "main", None, None),
    (
        "entries-beat-list",
        {"agents": {E: {"x": {"tools": {"allow": ["read"]}}}, "list": [{"id": "x", "tools": {"allow": ["exec"]}}]}},
        "x",
        None,
        None,
    ),
    ("defaults-tools-no-roster", {"agents": {"defaults": {"tools": {"deny": ["exec"]}}}}, "main", None, None),
    (
        "defaults-tools-with-roster",
        {"agents": {"defaults": {"tools": {"deny": ["exec"]}}, E: {"main": {}}}},
        "main",
        None,
        None,
    ),
    (
        "by-provider-deny",
        {"tools": {"profile": "coding", "byProvider": {"openai": {"deny": ["exec"]}}}},
        "main",
        "openai",
        None,
    ),
    (
        "by-provider-other",
        {"tools": {"profile": "coding", "byProvider": {"openai": {"deny": ["exec"]}}}},
        "main",
        "anthropic",
        None,
    ),
    (
        "by-provider-model-profile",
        {"tools": {"byProvider": {"openai/gpt-5": {"profile": "minimal"}, "openai": {"allow": ["read"]}}}},
        "main",
        "OpenAI",
        "GPT-5",
    ),
    (
        "by-provider-profile-also",
        {"tools": {"byProvider": {"openai": {"profile": "minimal", "alsoAllow": ["read"]}}}},
        "main",
        "openai",
        None,
    ),
    (
        "by-provider-key-case",
        {"tools": {"byProvider": {"OpenAI": {"deny": ["read"]}, "openai": {"deny": ["ls"]}}}},
        "main",
        "openai",
        None,
    ),
    (
        "agent-by-provider",
        {
            "tools": {"byProvider": {"openai": {"deny": ["exec"]}}},
            "agents": {
                E: {"a": {"tools": {"byProvider": {"openai": {"allow": ["read", "exec", "ls"]}}, "deny": ["ls"]}}}
            },
        },
        "a",
        "openai",
        None,
    ),
    (
        "agent-by-provider-profile",
        {
            "tools": {"profile": "full", "byProvider": {"openai": {"profile": "coding"}}},
            "agents": {E: {"a": {"tools": {"byProvider": {"openai": {"profile": "minimal"}}}}}},
        },
        "a",
        "openai",
        None,
    ),
    # provider/model fallback: an "openai/gpt-4o" model (no entry of its own) falls back to the "openai" entry
    ("by-provider-model-ref-fallback", BY_MODEL, "main", "openai/gpt-4o", None),
    ("by-provider-model-ref-exact", BY_MODEL, "main", "openai/gpt-5", None),
    ("by-provider-model-fallback", BY_MODEL, "main", "openai", "gpt-4o"),
    ("by-provider-model-ref-case", BY_MODEL, "main", " OpenAI/GPT-5 ", None),
    ("by-provider-model-ref-other", BY_MODEL, "main", "anthropic/claude-opus-4", None),
    (
        "by-provider-model-ref-only-model-entry",
        {"tools": {"byProvider": {"openai/gpt-5": {"deny": ["exec"]}}}},
        "main",
        "openai/gpt-4o",
        None,
    ),
    (
        "agent-by-provider-model-ref-fallback",
        {
            "tools": {"byProvider": {"openai/gpt-5": {"deny": ["exec"]}}},
            "agents": {
                E: {
                    "a": {
                        "tools": {
                            "byProvider": {"openai": {"deny": ["read", "write"]}, "openai/gpt-5": {"deny": ["ls"]}}
                        }
                    }
                }
            },
        },
        "a",
        "openai/gpt-4o",
        None,
    ),
    (
        "by-provider-model-ref-profile-fallback",
        {"tools": {"byProvider": {"openai": {"profile": "minimal"}, "openai/gpt-5": {"profile": "coding"}}}},
        "main",
        "openai/gpt-4o",
        None,
    ),
    (
        "everything",
        {
            "tools": {
                "profile": "coding",
                "alsoAllow": ["message"],
                "deny": ["process"],
                "byProvider": {"openai": {"deny": ["x_search"]}},
            },
            "agents": {
                E: {
                    "full": {"tools": {"profile": "full", "deny": ["nodes"]}},
                    "ro": {"tools": {"allow": ["group:fs", "group:memory", "message"], "deny": ["write"]}},
                }
            },
        },
        "ro",
        "openai",
        None,
    ),
]


def run_probe(install: OpenClawInstall, mode: str, tmp_path: Path, stdin: str | None = None) -> Any:
    """Run the probe on Node 26 in an isolated, offline HOME."""
    home = tmp_path / "home"
    (home / ".openclaw").mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [str(install.node), str(PROBE), str(install.package), mode],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        env=install.env(home),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30
    assert len({c[0] for c in CORPUS}) == len(CORPUS)


def test_catalog_matches_installed_openclaw(openclaw_install: OpenClawInstall, tmp_path: Path) -> None:
    live = run_probe(openclaw_install, "catalog", tmp_path)
    ours = load_catalog(live["openclaw_version"])
    assert live["openclaw_version"] == "2026.9.6"
    assert list(ours.tools) == live["tools"]
    assert {k: list(v) for k, v in ours.groups.items()} == live["groups"]
    assert {k: {"allow": list(p.allow or [])} for k, p in ours.profiles.items()} == {
        k: {"allow": v.get("allow", [])} for k, v in live["profiles"].items()
    }


def test_effective_tools_match_openclaw(openclaw_install: OpenClawInstall, tmp_path: Path) -> None:
    cases = [
        {"id": cid, "config": cfg, "agentId": agent, "provider": prov, "model": model}
        for cid, cfg, agent, prov, model in CORPUS
    ]
    theirs = {r["id"]: r for r in run_probe(openclaw_install, "resolve", tmp_path, json.dumps(cases))}
    mismatches: list[str] = []
    for cid, cfg, agent, prov, model in CORPUS:
        answer = theirs[cid]
        assert "error" not in answer, f"{cid}: OpenClaw raised {answer.get('error')}"
        ours = effective_tools_ordered(cfg, agent, prov, model=model)
        if ours != answer["tools"]:
            extra = sorted(set(ours) - set(answer["tools"]))
            missing = sorted(set(answer["tools"]) - set(ours))
            mismatches.append(f"{cid}: we offer extra {extra}, we miss {missing}")
    assert not mismatches, "\n".join(mismatches)
    # the corpus exercises distinct outcomes, not one answer many times
    assert len({tuple(r["tools"]) for r in theirs.values()}) >= 25


def test_imported_policies_allow_exactly_what_openclaw_offers(
    openclaw_install: OpenClawInstall, tmp_path: Path
) -> None:
    """The import's allow lists, checked against OpenClaw's own answer for every configured agent."""
    cases = []
    for cid, cfg, _agent, prov, model in CORPUS:
        for policy in policy_from_openclaw_config(cfg, provider=prov, model=model):
            cases.append(
                {
                    "id": f"{cid}/{policy['agent']}",
                    "config": cfg,
                    "agentId": policy["agent"],
                    "provider": prov,
                    "model": model,
                    "allow": policy["permissions"]["allow"],
                }
            )
    theirs = {
        r["id"]: r
        for r in run_probe(
            openclaw_install,
            "resolve",
            tmp_path,
            json.dumps([{k: v for k, v in c.items() if k != "allow"} for c in cases]),
        )
    }
    core = set(load_catalog().tools)
    for case in cases:
        allowed = {a[len("tool:") :] for a in case["allow"]} & core
        assert allowed == set(theirs[case["id"]]["tools"]), case["id"]


@pytest.mark.parametrize("agent", ["main"])
def test_probe_reports_normalised_agent(openclaw_install: OpenClawInstall, tmp_path: Path, agent: str) -> None:
    out = run_probe(
        openclaw_install,
        "resolve",
        tmp_path,
        json.dumps([{"id": "x", "config": {"agents": {E: {"Ops": {}}}}, "agentId": "OPS"}]),
    )
    assert out[0]["agentId"] == "ops"
