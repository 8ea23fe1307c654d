"""OpenClaw's tool policy, modelled in Python: its matching and its layering, as OpenClaw 2026.9.6 does them.

Sources (npm ``openclaw@2026.9.6``, dist regions): ``src/agents/tool-policy-shared.ts`` (names, aliases,
groups), ``src/agents/glob-pattern.ts`` and ``src/agents/tool-policy-match.ts`` (matching),
``src/agents/sandbox-tool-policy.ts`` (allow/alsoAllow/deny -> policy), ``src/agents/tool-policy.ts``
(alsoAllow merge, shipped renames), ``src/agents/provider-tool-policy.ts`` (``byProvider`` lookup),
``src/agents/agent-tools.policy.ts`` (``resolveEffectiveToolPolicy``) and
``src/agents/tool-policy-pipeline.ts`` (the ordered layers). The differential test compares this module
with OpenClaw's own resolver on a corpus of configs.

Matching, per layer:

* names and patterns are trimmed and lowercased; ``bash`` -> ``exec``, ``apply-patch`` -> ``apply_patch``,
  ``cron`` -> ``automations``; ``update_plan`` is renamed ``progress_card`` and ``canvas`` also names
  ``show_widget``; ``group:*`` entries expand to their tools;
* ``*`` alone matches everything, otherwise each ``*`` is ``.*`` in an anchored pattern;
* deny wins; an empty (or absent) allow list allows everything not denied;
* an allow list that admits ``write`` also admits ``apply_patch`` (a deny of ``write`` does not deny it).

Layers (each narrows the previous one; none can re-grant): profile (+ ``alsoAllow``), ``byProvider``
profile, ``tools.allow/deny``, ``tools.byProvider[...]``, ``agents.entries.<id>.tools`` (or the legacy
``agents.list[]``), the agent's ``byProvider``. Session-dependent layers (channel groups, senders,
sandbox, sub-agents, runtime caps) are outside this model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from claw_governance_openclaw.catalog import ToolCatalog, load_catalog

DEFAULT_AGENT_ID = "main"
_VALID_AGENT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$", re.IGNORECASE)
_INVALID_AGENT_CHARS = re.compile(r"[^a-z0-9_-]+")

# A name no catalog, group or alias uses: if a policy admits it, it admits tools it does not name (plugins).
UNKNOWN_TOOL_PROBE = "claw_governance_unlisted_tool_probe"


# ------------------------------------------------------------------------------------------------ names


def _lower(value: object) -> str:
    """normalizeLowercaseStringOrEmpty: trim + lowercase strings; anything else is ''."""
    return value.strip().lower() if isinstance(value, str) else ""


def normalize_tool_name(name: object, catalog: ToolCatalog | None = None) -> str:
    """Trim, lowercase, resolve aliases (``bash`` -> ``exec`` ...), as ``normalizeToolPolicyName``."""
    cat = catalog or load_catalog()
    low = _lower(name)
    return cat.aliases.get(low, low)


def normalize_agent_id(value: object) -> str:
    """OpenClaw's canonical agent id: lowercase, ``[a-z0-9_-]``, at most 64 characters, else ``main``."""
    trimmed = value.strip() if isinstance(value, str) else ""
    low = trimmed.lower()
    if _VALID_AGENT_ID.match(trimmed):
        return low
    cleaned = _INVALID_AGENT_CHARS.sub("-", low).lstrip("-").rstrip("-")[:64]
    return cleaned or DEFAULT_AGENT_ID


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


# --------------------------------------------------------------------------------------------- matching


@dataclass(frozen=True, slots=True)
class ToolPolicy:
    """One layer's lists, as OpenClaw holds them (``None``: the list is absent)."""

    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] | None = None


_Pattern = tuple[str, Any]  # ("all", None) | ("exact", str) | ("regex", compiled)


def _compile(patterns: Iterable[str], catalog: ToolCatalog) -> list[_Pattern]:
    out: list[_Pattern] = []
    for raw in patterns:
        norm = normalize_tool_name(raw, catalog)
        if not norm:
            continue
        if norm == "*":
            out.append(("all", None))
        elif "*" not in norm:
            out.append(("exact", norm))
        else:
            body = ".*".join(re.escape(part) for part in norm.split("*"))
            out.append(("regex", re.compile(body)))
    return out


def _matches(value: str, patterns: Sequence[_Pattern]) -> bool:
    for kind, pattern in patterns:
        if kind == "all":
            return True
        if kind == "exact" and value == pattern:
            return True
        if kind == "regex" and pattern.fullmatch(value) is not None:
            return True
    return False


def expand_groups(entries: Iterable[str], catalog: ToolCatalog | None = None) -> list[str]:
    """Normalise a list and expand ``group:*`` entries into tool ids (``expandToolGroups``)."""
    cat = catalog or load_catalog()
    out: list[str] = []
    for entry in entries:
        norm = normalize_tool_name(entry, cat)
        if not norm:
            continue
        out.extend(cat.groups.get(norm, (norm,)))
    return _unique(out)


def _expand_shipped_names(entries: Iterable[str], catalog: ToolCatalog) -> list[str]:
    out: list[str] = []
    for entry in entries:
        norm = normalize_tool_name(entry, catalog)
        out.append(catalog.renames.get(norm, norm))
        out.extend(catalog.families.get(norm, ()))
    return _unique(out)


def compile_matcher(policy: ToolPolicy | None, catalog: ToolCatalog | None = None) -> Callable[[str], bool]:
    """A function ``name -> allowed`` for one layer (``createToolPolicyMatcher`` after plugin-group expansion)."""
    if policy is None:
        return lambda name: True
    cat = catalog or load_catalog()
    # expandPolicyWithPluginGroups: shipped renames/families, then (no plugin tools here) entries as they are.
    allow_list = _expand_shipped_names(policy.allow, cat) if policy.allow is not None else []
    deny_list = _expand_shipped_names(policy.deny, cat) if policy.deny is not None else []
    deny = _compile(expand_groups(deny_list, cat), cat)
    allow = _compile(expand_groups(allow_list, cat), cat)

    def matcher(name: str) -> bool:
        norm = normalize_tool_name(name, cat)
        if _matches(norm, deny):
            return False
        if not allow:
            return True
        if _matches(norm, allow):
            return True
        return norm == "apply_patch" and _matches("write", allow)

    return matcher


# ---------------------------------------------------------------------------------------------- layering


def _record(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _str_list(value: Any) -> list[str] | None:
    """An array from the config (non-strings kept out, as OpenClaw's normalisation drops them)."""
    if not isinstance(value, list):
        return None
    return [v for v in value if isinstance(v, str)]


def pick_policy(section: Any) -> ToolPolicy | None:
    """``pickSandboxToolPolicy``: turn a config section's allow/alsoAllow/deny into a layer policy."""
    section = _record(section)
    if section is None:
        return None
    allow_raw, also, deny_raw = (
        _str_list(section.get("allow")),
        _str_list(section.get("alsoAllow")),
        _str_list(section.get("deny")),
    )
    allow: list[str] | None
    if allow_raw is not None:
        if not also:
            allow = allow_raw
        elif not allow_raw:
            allow = _unique(["*", *also])
        else:
            allow = _unique([*allow_raw, *also])
    elif also:
        allow = _unique(["*", *also])
    else:
        allow = None
    if allow is None and deny_raw is None:
        return None
    return ToolPolicy(tuple(allow) if allow is not None else None, tuple(deny_raw) if deny_raw is not None else None)


def _merge_also_allow(policy: ToolPolicy | None, also: Sequence[str] | None) -> ToolPolicy | None:
    if policy is None or policy.allow is None or not also:
        return policy
    return ToolPolicy(tuple(_unique([*policy.allow, *also])), policy.deny)


def _provider_key(value: str) -> str:
    norm = _lower(value)
    slash = norm.find("/")
    if slash <= 0:
        return _lower(norm)
    provider = _lower(norm[:slash])
    model = norm[slash + 1 :]
    return f"{provider}/{model}" if model else provider


def split_model_ref(value: str) -> tuple[str, str | None]:
    """``"openai/gpt-4o"`` -> ``("openai", "gpt-4o")``; anything else -> ``(value, None)`` (OpenClaw's
    ``parseModelRef``: split at the first ``/``, both parts trimmed and non-empty)."""
    slash = value.find("/")
    if slash <= 0:
        return value, None
    provider, model = value[:slash].strip(), value[slash + 1 :].strip()
    return (provider, model) if provider and model else (value, None)


def provider_section(by_provider: Any, provider: str | None, model: str | None = None) -> dict[str, Any] | None:
    """The ``byProvider`` entry for a provider (``provider/model`` first), as OpenClaw looks it up."""
    table = _record(by_provider)
    prov = provider.strip() if isinstance(provider, str) else ""
    if not prov or table is None:
        return None
    lookup: dict[str, tuple[dict[str, Any], bool]] = {}
    for key, value in table.items():
        section = _record(value)
        if section is None:
            continue
        norm = _provider_key(key)
        if not norm:
            continue
        canonical = _lower(key) == norm
        existing = lookup.get(norm)
        if existing is None or (canonical and not existing[1]):
            lookup[norm] = (section, canonical)
    if not (isinstance(model, str) and model.strip()):
        # A model reference "openai/gpt-4o" (how OpenClaw configs name a model): OpenClaw's runtime parses it
        # (parseModelRef) into provider "openai" and model "gpt-4o" before it looks the policy up, so the
        # "openai/gpt-4o" entry is tried first and the "openai" entry is the fallback.
        ref_provider, ref_model = split_model_ref(prov)
        if ref_model:
            prov, model = ref_provider, ref_model
    base = _provider_key(prov)
    model_id = _lower(model) if model else ""
    for key in ([f"{base}/{model_id}"] if model_id else []) + [base]:
        if key in lookup:
            return lookup[key][0]
    return None


def _roster(config: Mapping[str, Any]) -> tuple[str, Any] | None:
    agents = _record(config.get("agents"))
    if agents is None:
        return None
    if "entries" in agents:
        return ("entries", agents["entries"])
    if "list" in agents:
        return ("list", agents["list"])
    return None


def agent_ids(config: Mapping[str, Any]) -> list[str]:
    """The configured agent ids (``agents.entries`` keys, else legacy ``agents.list[].id``), else ``main``."""
    roster = _roster(config)
    if roster is None:
        return [DEFAULT_AGENT_ID]
    kind, value = roster
    ids: list[str] = []
    if kind == "entries" and isinstance(value, dict):
        ids = [normalize_agent_id(k) for k, v in value.items() if isinstance(v, dict)]
    elif kind == "list" and isinstance(value, list):
        ids = [normalize_agent_id(e.get("id")) for e in value if isinstance(e, dict)]
    return _unique(ids)


def agent_entry(config: Mapping[str, Any], agent_id: str) -> dict[str, Any] | None:
    """The agent's config entry (``resolveAgentConfig``): keyed entries, else the legacy list."""
    wanted = normalize_agent_id(agent_id)
    roster = _roster(config)
    if roster is None:
        return {"id": wanted} if wanted == DEFAULT_AGENT_ID else None
    kind, value = roster
    if kind == "entries":
        if isinstance(value, dict):
            for key, entry in value.items():
                if isinstance(entry, dict) and normalize_agent_id(key) == wanted:
                    return {**entry, "id": key}
        return None
    if isinstance(value, list):
        for entry in value:
            if isinstance(entry, dict) and normalize_agent_id(entry.get("id")) == wanted:
                return entry
    return None


@dataclass(frozen=True, slots=True)
class Layer:
    """One step of OpenClaw's tool-policy pipeline: its label (as in OpenClaw's logs), its policy, and
    the config key that sets it."""

    label: str
    policy: ToolPolicy | None
    source: str


@dataclass(frozen=True, slots=True)
class ResolvedToolPolicy:
    """The layers that apply to one agent (and provider), in OpenClaw's order."""

    agent_id: str
    profile: str | None
    provider_profile: str | None
    layers: tuple[Layer, ...]
    catalog: ToolCatalog = field(repr=False, default_factory=load_catalog)

    def matchers(self) -> list[tuple[Layer, Callable[[str], bool]]]:
        """A compiled matcher for every active layer."""
        return [
            (layer, compile_matcher(layer.policy, self.catalog)) for layer in self.layers if layer.policy is not None
        ]

    def allows(self, tool: str) -> bool:
        """Whether OpenClaw would offer ``tool`` to this agent."""
        return all(match(tool) for _, match in self.matchers())

    def blocking_layer(self, tool: str) -> Layer | None:
        """The first layer that removes ``tool``, or None if every layer admits it."""
        for layer, match in self.matchers():
            if not match(tool):
                return layer
        return None

    def filter(self, tools: Iterable[str]) -> list[str]:
        """The tools (in the given order) that every layer admits."""
        compiled = [match for _, match in self.matchers()]
        return [t for t in tools if all(m(t) for m in compiled)]


def _profile_name(agent_tools: dict[str, Any] | None, global_tools: dict[str, Any] | None) -> Any:
    value = agent_tools.get("profile") if agent_tools is not None else None
    if value is None and global_tools is not None:
        value = global_tools.get("profile")
    return value


def resolve_tool_policy(
    config: Mapping[str, Any],
    agent_id: str,
    provider: str | None = None,
    model: str | None = None,
    *,
    catalog: ToolCatalog | None = None,
) -> ResolvedToolPolicy:
    """The ordered policy layers OpenClaw applies for ``agent_id`` (``resolveEffectiveToolPolicy``)."""
    cat = catalog or load_catalog()
    agent = normalize_agent_id(agent_id)
    entry = agent_entry(config, agent)
    agent_tools = _record(entry.get("tools")) if entry is not None else None
    if agent_tools is None and _roster(config) is None:
        # Without a roster, agents.defaults.tools stands in for the agent's own section.
        agents = _record(config.get("agents"))
        defaults = _record(agents.get("defaults")) if agents is not None else None
        agent_tools = _record(defaults.get("tools")) if defaults is not None else None
    global_tools = _record(config.get("tools"))

    profile = _profile_name(agent_tools, global_tools)
    provider_cfg = provider_section(global_tools.get("byProvider") if global_tools else None, provider, model)
    agent_provider_cfg = provider_section(agent_tools.get("byProvider") if agent_tools else None, provider, model)

    also = _str_list(agent_tools.get("alsoAllow")) if agent_tools is not None else None
    if also is None and global_tools is not None:
        also = _str_list(global_tools.get("alsoAllow"))
    profile_also = _unique(also) if also is not None else None

    provider_profile = None
    if agent_provider_cfg is not None:
        provider_profile = agent_provider_cfg.get("profile")
    if provider_profile is None and provider_cfg is not None:
        provider_profile = provider_cfg.get("profile")
    provider_also = None
    for section in (agent_provider_cfg, provider_cfg):
        if section is not None and isinstance(section.get("alsoAllow"), list):
            provider_also = _str_list(section.get("alsoAllow"))
            break

    def profile_policy(name: Any, extra: Sequence[str] | None) -> ToolPolicy | None:
        found = cat.profile(name) if isinstance(name, str) else None
        base = ToolPolicy(found.allow, found.deny) if found is not None and (found.allow or found.deny) else None
        return _merge_also_allow(base, list(extra or []))

    prof = profile.strip() if isinstance(profile, str) else ""
    pprof = provider_profile.strip() if isinstance(provider_profile, str) else ""
    layers = (
        Layer(
            f"tools.profile ({prof})" if prof else "tools.profile",
            profile_policy(profile, profile_also),
            f"agents.entries.{agent}.tools.profile"
            if agent_tools and agent_tools.get("profile") is not None
            else "tools.profile",
        ),
        Layer(
            f"tools.byProvider.profile ({pprof})" if pprof else "tools.byProvider.profile",
            profile_policy(provider_profile, provider_also),
            "tools.byProvider.<provider>.profile",
        ),
        Layer("tools.allow", pick_policy(global_tools), "tools.allow/alsoAllow/deny"),
        Layer("tools.byProvider.allow", pick_policy(provider_cfg), "tools.byProvider.<provider>.allow/deny"),
        Layer(f"agents.{agent}.tools.allow", pick_policy(agent_tools), f"agents.entries.{agent}.tools.allow/deny"),
        Layer(
            f"agents.{agent}.tools.byProvider.allow",
            pick_policy(agent_provider_cfg),
            f"agents.entries.{agent}.tools.byProvider.<provider>.allow/deny",
        ),
    )
    return ResolvedToolPolicy(agent, prof or None, pprof or None, layers, cat)


def effective_tools(
    config: Mapping[str, Any],
    agent_id: str,
    provider: str | None = None,
    *,
    model: str | None = None,
    tools: Iterable[str] | None = None,
    catalog: ToolCatalog | None = None,
) -> frozenset[str]:
    """The tools OpenClaw would offer ``agent_id``: the catalog's core tools (or ``tools``) that pass
    every layer for this agent and provider."""
    cat = catalog or load_catalog()
    resolved = resolve_tool_policy(config, agent_id, provider, model, catalog=cat)
    return frozenset(resolved.filter(cat.tools if tools is None else tools))


def effective_tools_ordered(
    config: Mapping[str, Any],
    agent_id: str,
    provider: str | None = None,
    *,
    model: str | None = None,
    catalog: ToolCatalog | None = None,
) -> list[str]:
    """``effective_tools`` in OpenClaw's catalog order."""
    cat = catalog or load_catalog()
    return resolve_tool_policy(config, agent_id, provider, model, catalog=cat).filter(cat.tools)
