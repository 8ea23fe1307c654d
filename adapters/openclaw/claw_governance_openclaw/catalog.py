"""OpenClaw's tool catalog as versioned data: core tool ids, ``group:*`` groups, profiles and name aliases.

Group membership and profiles change between OpenClaw releases, so each supported release ships as a JSON
file in ``data/`` generated from that release's own dist (``scripts/openclaw-policy-probe.mjs catalog``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

DEFAULT_OPENCLAW_VERSION = "2026.9.6"


@dataclass(frozen=True, slots=True)
class ProfilePolicy:
    """A built-in profile's allow/deny lists (``None``: the list is absent)."""

    allow: tuple[str, ...] | None
    deny: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ToolCatalog:
    """Everything version-specific that OpenClaw's tool-policy resolution needs."""

    version: str
    tools: tuple[str, ...]
    groups: Mapping[str, tuple[str, ...]]
    profiles: Mapping[str, ProfilePolicy]
    aliases: Mapping[str, str]
    renames: Mapping[str, str]
    families: Mapping[str, tuple[str, ...]]
    tool_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tool_set", frozenset(self.tools))

    def profile(self, name: str | None) -> ProfilePolicy | None:
        """The profile called ``name`` (exact, as OpenClaw looks it up), or None."""
        if not name:
            return None
        return self.profiles.get(name)

    def is_core_tool(self, name: str) -> bool:
        """Whether ``name`` (already normalised) is a core tool id of this release."""
        return name in self.tool_set


def _from_json(data: Mapping[str, Any]) -> ToolCatalog:
    profiles = {
        name: ProfilePolicy(
            tuple(p["allow"]) if p.get("allow") is not None else None,
            tuple(p["deny"]) if p.get("deny") is not None else None,
        )
        for name, p in data["profiles"].items()
    }
    return ToolCatalog(
        version=str(data["openclaw_version"]),
        tools=tuple(data["tools"]),
        groups={k: tuple(v) for k, v in data["groups"].items()},
        profiles=profiles,
        aliases=dict(data["aliases"]),
        renames=dict(data.get("renames", {})),
        families={k: tuple(v) for k, v in data.get("families", {}).items()},
    )


def supported_versions() -> list[str]:
    """OpenClaw releases for which a catalog ships with this package."""
    folder = resources.files("claw_governance_openclaw") / "data"
    return sorted(
        p.name[len("openclaw-") : -len(".json")]
        for p in folder.iterdir()
        if p.name.startswith("openclaw-") and p.name.endswith(".json")
    )


@cache
def load_catalog(version: str = DEFAULT_OPENCLAW_VERSION) -> ToolCatalog:
    """The catalog of one OpenClaw release. Raises ValueError for a release we do not ship."""
    resource = resources.files("claw_governance_openclaw") / "data" / f"openclaw-{version}.json"
    if not resource.is_file():
        raise ValueError(f"no tool catalog for OpenClaw {version} (supported: {', '.join(supported_versions())})")
    return _from_json(json.loads(resource.read_text(encoding="utf-8")))


def catalog_from_json(data: Mapping[str, Any]) -> ToolCatalog:
    """A catalog from the JSON that ``openclaw-policy-probe.mjs catalog`` prints (plus aliases)."""
    return _from_json(
        {
            "aliases": {"bash": "exec", "apply-patch": "apply_patch", "cron": "automations"},
            "renames": {"update_plan": "progress_card"},
            "families": {"canvas": ["show_widget"]},
            **data,
        }
    )
