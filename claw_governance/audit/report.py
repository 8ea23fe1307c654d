"""Compliance reports over a date range (both ends included, whole days in UTC), as dict, Markdown or HTML."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Protocol

# day_range lives with the other time parsing; re-exported here, where reports have always found it
from claw_governance.timeparse import day_range as day_range
from claw_governance.timeparse import iso_utc_micro


class _Trail(Protocol):
    def entries(self) -> Any: ...
    def verify(self) -> Any: ...


def compliance_report(
    trail: _Trail,
    start: str | date | datetime,
    end: str | date | datetime,
    policy_metadata: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Totals by outcome, agent and action; escalations and their resolution times; trust changes; the policy
    versions in force; and the chain verification result, for ``start``..``end`` (both days included).

    ``policy_metadata`` (agent -> the policy's ``metadata:``, as ``PolicySet.metadata_by_agent``) is reported
    as ``policy_metadata``: who owns each agent's policy and which version it says it is."""
    lo, hi = day_range(start, end)
    outcomes: Counter[str] = Counter()
    by_agent: dict[str, Counter[str]] = {}
    by_action: dict[str, Counter[str]] = {}
    policies: dict[str, dict[str, Any]] = {}
    escalations: list[dict[str, Any]] = []
    trust: list[dict[str, Any]] = []
    actions: Counter[str] = Counter()
    reloads = 0
    for entry in trail.entries():
        ts = entry.get("timestamp", 0)
        if not isinstance(ts, int | float) or not lo <= ts < hi:
            continue
        kind = entry.get("type")
        details = entry.get("details") if isinstance(entry.get("details"), dict) else {}
        if kind == "policy_decision":
            decision = entry.get("decision") if isinstance(entry.get("decision"), dict) else {}
            outcome = str(decision.get("outcome", "deny"))
            outcomes[outcome] += 1
            by_agent.setdefault(str(entry.get("agent_id") or "?"), Counter())[outcome] += 1
            by_action.setdefault(str(entry.get("action") or "?"), Counter())[outcome] += 1
            digest = entry.get("policy_hash")
            if digest:
                first = {"policy_hash": digest, "first_seen": iso_utc_micro(ts), "decisions": 0}
                seen = policies.setdefault(digest, first)
                seen["last_seen"] = iso_utc_micro(ts)
                seen["decisions"] += 1
        elif kind == "agent_action":
            actions["succeeded" if details.get("success") else "failed"] += 1
        elif kind == "escalation_resolved":
            created, resolved = details.get("created"), details.get("resolved_at")
            seconds = (
                (resolved - created) if isinstance(created, int | float) and isinstance(resolved, int | float) else None
            )
            escalations.append(
                {
                    "escalation_id": details.get("escalation_id"),
                    "agent_id": entry.get("agent_id"),
                    "action": entry.get("action"),
                    "status": details.get("status"),
                    "resolver": details.get("resolver"),
                    "resolved_at": iso_utc_micro(ts),
                    "resolution_seconds": None if seconds is None else round(seconds, 3),
                }
            )
        elif kind == "trust_change":
            trust.append(
                {
                    "agent_id": entry.get("agent_id"),
                    "at": iso_utc_micro(ts),
                    "old": details.get("old"),
                    "new": details.get("new"),
                    "reason": details.get("reason"),
                }
            )
        elif kind == "policy_reload":
            reloads += 1
    times = [e["resolution_seconds"] for e in escalations if e["resolution_seconds"] is not None]
    verification = trail.verify()
    return {
        "period": {"start": iso_utc_micro(lo), "end": iso_utc_micro(hi)},
        "summary": {
            "total_decisions": sum(outcomes.values()),
            "allowed": outcomes["allow"],
            "denied": outcomes["deny"],
            "escalations": outcomes["escalate"],
            "escalations_resolved": len(escalations),
            "actions_succeeded": actions["succeeded"],
            "actions_failed": actions["failed"],
            "trust_changes": len(trust),
            "policy_reloads": reloads,
        },
        "by_agent": {k: dict(v) for k, v in sorted(by_agent.items())},
        "by_action": {k: dict(v) for k, v in sorted(by_action.items())},
        "escalations": {
            "resolved": escalations,
            "mean_resolution_seconds": round(sum(times) / len(times), 3) if times else None,
            "max_resolution_seconds": max(times) if times else None,
        },
        "trust_changes": trust,
        "policy_versions": sorted(policies.values(), key=lambda p: p["first_seen"]),
        "policy_metadata": {str(k): dict(v) for k, v in sorted((policy_metadata or {}).items())},
        "chain": {
            "valid": verification.valid,
            "entries": verification.entries,
            "errors": list(verification.errors),
            "warnings": list(getattr(verification, "warnings", ())),
        },
    }


def _rows(counter_map: dict[str, dict[str, int]]) -> list[list[str]]:
    return [
        [name, str(c.get("allow", 0)), str(c.get("deny", 0)), str(c.get("escalate", 0))]
        for name, c in counter_map.items()
    ]


def _sections(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    s = report["summary"]
    esc = report["escalations"]
    return [
        ("Summary", ["measure", "value"], [[k.replace("_", " "), str(v)] for k, v in s.items()]),
        ("By agent", ["agent", "allowed", "denied", "escalated"], _rows(report["by_agent"])),
        ("By action", ["action", "allowed", "denied", "escalated"], _rows(report["by_action"])),
        (
            "Escalations resolved",
            ["id", "agent", "action", "status", "resolver", "seconds"],
            [
                [
                    str(e["escalation_id"]),
                    str(e["agent_id"]),
                    str(e["action"]),
                    str(e["status"]),
                    str(e["resolver"]),
                    str(e["resolution_seconds"]),
                ]
                for e in esc["resolved"]
            ],
        ),
        (
            "Trust changes",
            ["agent", "at", "old", "new", "reason"],
            [
                [str(t["agent_id"]), t["at"], str(t["old"]), str(t["new"]), str(t["reason"])]
                for t in report["trust_changes"]
            ],
        ),
        (
            "Policy versions in force",
            ["policy hash", "first seen", "last seen", "decisions"],
            [
                [p["policy_hash"], p["first_seen"], p["last_seen"], str(p["decisions"])]
                for p in report["policy_versions"]
            ],
        ),
        (
            "Policy metadata",
            ["agent", "name", "version", "owner", "description"],
            [
                [agent, *(str(meta.get(k, "")) for k in ("name", "version", "owner", "description"))]
                for agent, meta in report.get("policy_metadata", {}).items()
            ],
        ),
    ]


def _chain_line(report: dict[str, Any]) -> str:
    chain = report["chain"]
    if chain["valid"]:
        return f"Chain verification: VALID ({chain['entries']} entries)"
    first = chain["errors"][0] if chain["errors"] else {}
    return (
        f"Chain verification: INVALID ({len(chain['errors'])} errors; first at segment "
        f"{first.get('segment')} seq {first.get('seq')}: {first.get('message')})"
    )


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown."""
    period = report["period"]
    lines = [
        f"# Compliance report {period['start'][:10]} .. {period['end'][:10]} (end exclusive)",
        "",
        _chain_line(report),
        "",
    ]
    for title, header, rows in _sections(report):
        lines += [f"## {title}", ""]
        if not rows:
            lines += ["(none)", ""]
            continue
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
        lines.append("")
    return "\n".join(lines)


def render_html(report: dict[str, Any]) -> str:
    """The report as a self-contained HTML page (every value escaped)."""
    period = report["period"]
    title = html.escape(f"Compliance report {period['start'][:10]} .. {period['end'][:10]}")
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>",
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;"
        "padding:2px 6px}</style></head><body>",
        f"<h1>{title}</h1>",
        f"<p><strong>{html.escape(_chain_line(report))}</strong></p>",
    ]
    for name, header, rows in _sections(report):
        parts.append(f"<h2>{html.escape(name)}</h2>")
        if not rows:
            parts.append("<p>(none)</p>")
            continue
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
