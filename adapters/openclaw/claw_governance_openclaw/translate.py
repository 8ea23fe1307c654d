"""Translation both ways between OpenClaw tool policy (``openclaw.json``) and claw-governance policies.

* ``policy_from_openclaw_config(config)``: one governance policy per OpenClaw agent, allowing exactly the
  tools OpenClaw offers it (actions ``tool:<name>``), as YAML-ready dicts in the policy file format.
* ``openclaw_config_from_policy(policies)``: the ``tools`` / ``agents.entries.<id>.tools`` fragment that
  makes OpenClaw's own (local) tool layer offer what governance allows or may approve, and nothing else.
* ``drift(config, policies)``: per agent, the tools OpenClaw would offer that governance denies, and the
  tools governance allows that OpenClaw would not offer.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from claw_governance.model import Outcome, ToolCall
from claw_governance.policy import PolicySet, load_policy_set, normalize
from claw_governance_openclaw.catalog import ToolCatalog, load_catalog
from claw_governance_openclaw.toolpolicy import (
    UNKNOWN_TOOL_PROBE,
    agent_ids,
    expand_groups,
    normalize_agent_id,
    resolve_tool_policy,
)

ACTION_PREFIX = "tool:"


def tool_action(tool_name: str) -> str:
    """The governance action for an OpenClaw tool: ``tool:<name>``."""
    return f"{ACTION_PREFIX}{tool_name}"


def _patterns_of(resolved: Any, which: str, catalog: ToolCatalog) -> list[str]:
    out: list[str] = []
    for layer in resolved.layers:
        if layer.policy is None:
            continue
        entries = getattr(layer.policy, which)
        if entries:
            out.extend(expand_groups(entries, catalog))
    return list(dict.fromkeys(out))


def policy_from_openclaw_config(
    config: Mapping[str, Any],
    *,
    provider: str | None = None,
    model: str | None = None,
    catalog: ToolCatalog | None = None,
    agents: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """Governance policies (one per OpenClaw agent) that allow what OpenClaw offers and deny the rest.

    ``allow`` lists ``tool:<name>`` for every core tool the agent is offered, plus the non-core names the
    config admits (plugin and MCP tools): ``tool:*`` when OpenClaw's layers admit unlisted tools at all
    (no allowlist, ``full``, ``*``), else each non-core allow entry every layer admits. ``deny`` lists every
    core tool OpenClaw withholds and every non-core deny pattern, so deny-wins carries over exactly.
    """
    cat = catalog or load_catalog()
    out: list[dict[str, Any]] = []
    for agent in list(agents) if agents is not None else agent_ids(config):
        resolved = resolve_tool_policy(config, agent, provider, model, catalog=cat)
        offered = resolved.filter(cat.tools)
        withheld = [t for t in cat.tools if t not in set(offered)]
        allow = [tool_action(t) for t in offered]
        if resolved.allows(UNKNOWN_TOOL_PROBE):
            allow.append(tool_action("*"))
        else:
            for pattern in _patterns_of(resolved, "allow", cat):
                if pattern != "*" and not cat.is_core_tool(pattern) and resolved.allows(pattern):
                    allow.append(tool_action(pattern))
        deny = [tool_action(t) for t in withheld]
        deny += [tool_action(p) for p in _patterns_of(resolved, "deny", cat) if not cat.is_core_tool(p)]
        layers = [layer.label for layer in resolved.layers if layer.policy is not None]
        out.append(
            {
                "agent": resolved.agent_id,
                "description": f"Imported from OpenClaw {cat.version} tool policy"
                + (f" for provider {provider}" if provider else "")
                + (f" (layers: {', '.join(layers)})" if layers else " (no tool policy: everything)"),
                "permissions": {"allow": list(dict.fromkeys(allow)), "deny": list(dict.fromkeys(deny))},
            }
        )
    return out


def policy_yaml(policy: Mapping[str, Any]) -> str:
    """One policy dict as the text of a policy file."""
    return yaml.safe_dump(dict(policy), sort_keys=False, default_flow_style=False, allow_unicode=True)


# ------------------------------------------------------------------------------- governance -> OpenClaw


def as_policy_set(policies: PolicySet | str | Path | Sequence[Mapping[str, Any]]) -> PolicySet:
    """A compiled PolicySet from a PolicySet, a policy file or folder, or policy dicts."""
    if isinstance(policies, PolicySet):
        return policies
    if isinstance(policies, str | Path):
        return load_policy_set(policies)
    with tempfile.TemporaryDirectory(prefix="claw-openclaw-") as tmp:
        path = Path(tmp) / "policies.yaml"
        path.write_text(yaml.safe_dump_all([dict(p) for p in policies], sort_keys=False), encoding="utf-8")
        return load_policy_set(path)


def governance_offers(policy: PolicySet, agent_id: str, tool: str) -> bool:
    """Whether governance may let ``agent_id`` run ``tool`` for some arguments (ALLOW or ESCALATE now, or a
    conditional rule that may allow it): such a tool must be offered so the bridge can decide per call."""
    decision = policy.decide(ToolCall(agent_id, tool_action(tool), {}, "openclaw"))
    if decision.outcome is not Outcome.DENY:
        return True
    if decision.rule is not None:
        return decision.rule.condition is not None  # a conditional deny: other arguments may pass
    agent_policy = policy.for_agent(agent_id)
    if agent_policy is None:
        return False
    found = agent_policy.matches(normalize(tool_action(tool)))
    return any(r.condition is not None for r in (*found.allow, *found.escalate))


def _noncore_patterns(policy: PolicySet, agent_id: str, cat: ToolCatalog) -> tuple[list[str], list[str]]:
    """Governance ``tool:`` patterns that name no core tool (plugin and MCP tools, ``tool:*``): the allow or
    escalate ones (OpenClaw must offer them) and the unconditional deny ones (OpenClaw may withhold them)."""
    agent_policy = policy.for_agent(agent_id)
    allow: list[str] = []
    deny: list[str] = []
    if agent_policy is None:
        return allow, deny
    for doc in agent_policy.documents:
        for rule in doc.rules:
            if not rule.pattern.startswith(ACTION_PREFIX):
                continue
            name = rule.pattern[len(ACTION_PREFIX) :]
            if not name or cat.is_core_tool(name) or name in cat.groups:
                continue
            if rule.effect is Outcome.DENY:
                if rule.condition is None:
                    deny.append(name)
            else:
                allow.append(name)
    return list(dict.fromkeys(allow)), list(dict.fromkeys(deny))


@dataclass(frozen=True, slots=True)
class ExportResult:
    """``openclaw_config_from_policy`` with the notes a human should read."""

    fragment: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def export_openclaw_config(
    policies: PolicySet | str | Path | Sequence[Mapping[str, Any]], *, catalog: ToolCatalog | None = None
) -> ExportResult:
    """The OpenClaw config fragment for a governance contract, with notes on what cannot be exact."""
    policy = as_policy_set(policies)
    cat = catalog or load_catalog()
    named = [a for a in policy.agents if a != "*"]
    unlisted = "claw-governance-unlisted-agent"
    per_agent: dict[str, list[str]] = {}
    extra: dict[str, tuple[list[str], list[str]]] = {}
    for agent in named:
        per_agent[normalize_agent_id(agent)] = [t for t in cat.tools if governance_offers(policy, agent, t)]
        extra[normalize_agent_id(agent)] = _noncore_patterns(policy, agent, cat)
    shared: list[str] | None = None
    shared_extra: tuple[list[str], list[str]] = ([], [])
    if policy.for_agent(unlisted) is not None:
        shared = [t for t in cat.tools if governance_offers(policy, unlisted, t)]
        shared_extra = _noncore_patterns(policy, unlisted, cat)
    notes: list[str] = []
    union = set(shared or [])
    for tools in per_agent.values():
        union.update(tools)
    global_allow = [t for t in cat.tools if t in union]
    if shared is not None and union - set(shared):
        notes.append(
            "agents not listed in agents.entries get the union of every agent's tools from OpenClaw "
            "(governance still decides each call: the bridge denies what their '*' policy does not allow)"
        )
    if shared is None:
        notes.append(
            "no '*' policy: governance denies every call of an agent without its own policy; OpenClaw "
            "agents outside agents.entries are limited to the union of the listed agents' tools"
        )
    extra_allow = list(dict.fromkeys([*shared_extra[0], *(p for a, _ in extra.values() for p in a)]))
    common_deny = (
        [p for p in shared_extra[1] if all(p in d for _, d in extra.values())]
        if shared is not None
        else [p for p in (extra[next(iter(extra))][1] if extra else []) if all(p in d for _, d in extra.values())]
    )
    tools_section: dict[str, Any] = {
        "profile": "full",
        "allow": global_allow + extra_allow,
        "deny": [t for t in cat.tools if t not in union] + common_deny,
    }
    if not global_allow and not extra_allow:
        notes.append("governance allows no tool to any agent; OpenClaw stops a run with zero tools")
    entries = {
        agent: {
            "tools": {
                "profile": "full",
                "allow": tools + extra[agent][0],
                "deny": [t for t in cat.tools if t not in set(tools)] + extra[agent][1],
            }
        }
        for agent, tools in sorted(per_agent.items())
    }
    fragment: dict[str, Any] = {"tools": tools_section}
    if entries:
        fragment["agents"] = {"entries": entries}
    return ExportResult(fragment, notes)


def openclaw_config_from_policy(
    policies: PolicySet | str | Path | Sequence[Mapping[str, Any]], *, catalog: ToolCatalog | None = None
) -> dict[str, Any]:
    """The ``tools`` fragment (``tools`` and ``agents.entries.<id>.tools``) under which OpenClaw offers each
    agent exactly the core tools governance allows or may approve; merge it into ``openclaw.json``."""
    return export_openclaw_config(policies, catalog=catalog).fragment


# -------------------------------------------------------------------------------------------------- drift


@dataclass(frozen=True, slots=True)
class AgentDrift:
    """Where OpenClaw's offer and the governance contract disagree for one agent."""

    agent_id: str
    offered_but_denied: tuple[str, ...]  # OpenClaw offers, governance denies (calls will be blocked)
    allowed_but_withheld: tuple[str, ...]  # governance allows, OpenClaw never offers
    in_openclaw: bool
    in_governance: bool

    @property
    def drifted(self) -> bool:
        """Whether there is any disagreement."""
        return bool(self.offered_but_denied or self.allowed_but_withheld)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "agent": self.agent_id,
            "offered_but_denied": list(self.offered_but_denied),
            "allowed_but_withheld": list(self.allowed_but_withheld),
            "in_openclaw": self.in_openclaw,
            "in_governance": self.in_governance,
        }


def drift(
    config: Mapping[str, Any],
    policies: PolicySet | str | Path | Sequence[Mapping[str, Any]],
    *,
    provider: str | None = None,
    model: str | None = None,
    catalog: ToolCatalog | None = None,
) -> list[AgentDrift]:
    """Compare, agent by agent, what OpenClaw offers with what governance allows (or may approve)."""
    policy = as_policy_set(policies)
    cat = catalog or load_catalog()
    openclaw_agents = agent_ids(config)
    governance_agents = [normalize_agent_id(a) for a in policy.agents if a != "*"]
    out: list[AgentDrift] = []
    for agent in dict.fromkeys([*openclaw_agents, *governance_agents]):
        offered = set(resolve_tool_policy(config, agent, provider, model, catalog=cat).filter(cat.tools))
        allowed = {t for t in cat.tools if governance_offers(policy, agent, t)}
        out.append(
            AgentDrift(
                agent,
                tuple(t for t in cat.tools if t in offered and t not in allowed),
                tuple(t for t in cat.tools if t in allowed and t not in offered),
                agent in openclaw_agents,
                agent in governance_agents,
            )
        )
    return out
