"""claw-governance for OpenClaw.

* ``effective_tools(config, agent_id, provider=None)``: the tools OpenClaw 2026.9.6 would offer an agent,
  computed by a Python model of OpenClaw's own tool-policy matching and layering;
* ``policy_from_openclaw_config`` / ``openclaw_config_from_policy`` / ``drift``: translation both ways;
* ``create_app``: the governance bridge that the OpenClaw plugin (``openclaw-plugin/``) calls from its
  ``before_tool_call`` / ``after_tool_call`` hooks (``claw-gov serve``).
"""

from claw_governance_openclaw.catalog import DEFAULT_OPENCLAW_VERSION, ToolCatalog, load_catalog, supported_versions
from claw_governance_openclaw.config import OpenClawConfigError, load_openclaw_config, parse_openclaw_config
from claw_governance_openclaw.toolpolicy import (
    ResolvedToolPolicy,
    ToolPolicy,
    agent_ids,
    compile_matcher,
    effective_tools,
    effective_tools_ordered,
    normalize_agent_id,
    normalize_tool_name,
    resolve_tool_policy,
)
from claw_governance_openclaw.translate import (
    AgentDrift,
    ExportResult,
    drift,
    export_openclaw_config,
    openclaw_config_from_policy,
    policy_from_openclaw_config,
    tool_action,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_OPENCLAW_VERSION",
    "AgentDrift",
    "ExportResult",
    "OpenClawConfigError",
    "ResolvedToolPolicy",
    "ToolCatalog",
    "ToolPolicy",
    "agent_ids",
    "compile_matcher",
    "drift",
    "effective_tools",
    "effective_tools_ordered",
    "export_openclaw_config",
    "load_catalog",
    "load_openclaw_config",
    "normalize_agent_id",
    "normalize_tool_name",
    "openclaw_config_from_policy",
    "parse_openclaw_config",
    "policy_from_openclaw_config",
    "resolve_tool_policy",
    "supported_versions",
    "tool_action",
]
