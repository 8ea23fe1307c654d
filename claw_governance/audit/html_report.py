"""The compliance report as a styled, printable, self-contained HTML page (Jinja2, charts as inline SVG).

Contents: the period in words (both days included), when it was generated, the trail's origin (trail id,
folder) and signing key fingerprint, the verification result (from the public ``verify()`` report) with the
latest checkpoint, decisions per day by outcome, the most denied actions, trust over time, every denied call
with its rule, escalations with resolver, notes and time to decision, pending and expired escalations,
revocations and reinstatements, and the policy versions in force. Everything is autoescaped.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from claw_governance.audit.report import compliance_report
from claw_governance.errors import ConfigError
from claw_governance.timeparse import day_range, human_utc, utc_day

TEMPLATES = Path(__file__).resolve().parent / "templates"
OUTCOME_COLORS = {"allow": "#12b76a", "deny": "#f04438", "escalate": "#f79009"}
SERIES_COLORS = ("#1f5eff", "#7a5af8", "#ee46bc", "#15b79e", "#f79009", "#667085")
MAX_ROWS = 500


def report_period(start: str | None, end: str | None) -> tuple[str, str]:
    """``(start, end)`` as YYYY-MM-DD: defaults to the last 7 days (today included)."""
    today = datetime.now(UTC).date()
    try:
        s = date.fromisoformat(start) if start else today - timedelta(days=6)
        e = date.fromisoformat(end) if end else today
    except ValueError:
        raise ConfigError("start and end must be dates (YYYY-MM-DD)") from None
    return s.isoformat(), e.isoformat()


def _words(day: date) -> str:
    return f"{day.strftime('%A')} {day.day} {day.strftime('%B %Y')}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def _bars(per_day: dict[str, Counter[str]], days: list[str]) -> dict[str, Any]:
    """Stacked bars: one per day, segments by outcome (SVG coordinates precomputed here)."""
    width, height, pad = 720, 200, 28
    top = max([sum(per_day.get(d, Counter()).values()) for d in days] + [1])
    slot = (width - pad) / max(len(days), 1)
    bars = []
    for i, d in enumerate(days):
        y: float = height - pad
        for outcome in ("allow", "escalate", "deny"):
            n = per_day.get(d, Counter())[outcome]
            if not n:
                continue
            h = (height - 2 * pad) * n / top
            y -= h
            bars.append(
                {
                    "x": round(pad + i * slot + slot * 0.15, 1),
                    "y": round(y, 1),
                    "w": round(slot * 0.7, 1),
                    "h": round(h, 1),
                    "color": OUTCOME_COLORS[outcome],
                    "label": f"{d} {outcome}: {n}",
                }
            )
    labels = [{"x": round(pad + i * slot + slot / 2, 1), "text": d[5:]} for i, d in enumerate(days)]
    step = max(1, len(labels) // 14)
    return {"width": width, "height": height, "bars": bars, "labels": labels[::step], "top": top, "pad": pad}


def _lines(series: dict[str, list[tuple[float, int]]], lo: float, hi: float) -> dict[str, Any]:
    width, height, pad = 720, 200, 28
    span = max(hi - lo, 1.0)
    lines = []
    for index, (agent, points) in enumerate(sorted(series.items())[: len(SERIES_COLORS)]):
        coords = " ".join(
            f"{pad + (width - 2 * pad) * (t - lo) / span:.1f},"
            f"{height - pad - (height - 2 * pad) * min(max(v, 0), 100) / 100:.1f}"
            for t, v in points
        )
        lines.append({"agent": agent, "points": coords, "color": SERIES_COLORS[index], "last": points[-1][1]})
    return {"width": width, "height": height, "pad": pad, "lines": lines}


def build_report(
    source: Any,
    start: str | date | datetime,
    end: str | date | datetime,
    *,
    store: Any = None,
    origin: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Everything the HTML report shows. ``source`` has ``entries()`` and ``verify()`` (an AuditTrail or a
    TrailReader); ``store`` (optional) adds pending escalations and the latest checkpoint from the state store."""
    base = compliance_report(source, start, end)
    lo, hi = day_range(start, end)
    first_day = datetime.fromtimestamp(lo, UTC).date()
    last_day = datetime.fromtimestamp(hi - 1, UTC).date()
    days = [(first_day + timedelta(days=i)).isoformat() for i in range((last_day - first_day).days + 1)]
    per_day: dict[str, Counter[str]] = defaultdict(Counter)
    denied_actions: Counter[str] = Counter()
    denied: list[dict[str, Any]] = []
    opened: dict[str, dict[str, Any]] = {}
    resolved: list[dict[str, Any]] = []
    expired: list[dict[str, Any]] = []
    revocations: list[dict[str, Any]] = []
    trust: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for entry in source.entries():
        ts = entry.get("timestamp")
        if not isinstance(ts, int | float) or not lo <= ts < hi:
            continue
        kind = entry.get("type")
        details = entry.get("details") if isinstance(entry.get("details"), dict) else {}
        if kind == "policy_decision":
            decision = entry.get("decision") if isinstance(entry.get("decision"), dict) else {}
            outcome = str(decision.get("outcome", "deny"))
            per_day[utc_day(ts)][outcome] += 1
            if outcome == "deny":
                denied_actions[str(entry.get("action"))] += 1
                if len(denied) < MAX_ROWS:
                    rule = decision.get("rule") if isinstance(decision.get("rule"), dict) else None
                    denied.append(
                        {
                            "at": human_utc(ts),
                            "agent": entry.get("agent_id"),
                            "action": entry.get("action"),
                            "reason": decision.get("reason"),
                            "stage": decision.get("stage"),
                            "rule": (
                                f"{rule.get('effect')} {rule.get('pattern')} ({rule.get('source')})"
                                if rule
                                else "default deny / " + str(decision.get("stage") or "")
                            ),
                        }
                    )
        elif kind == "escalation" and details.get("event") == "opened":
            opened[str(details.get("escalation_id"))] = {
                "id": details.get("escalation_id"),
                "agent": entry.get("agent_id"),
                "action": entry.get("action"),
                "reason": details.get("reason"),
                "rule": details.get("rule"),
                "created": human_utc(details.get("created")),
                "expires": human_utc(details.get("expires")),
            }
        elif kind == "escalation" and details.get("event") == "expired":
            expired.append(
                {
                    "id": details.get("escalation_id"),
                    "agent": entry.get("agent_id"),
                    "action": entry.get("action"),
                    "expires": human_utc(details.get("expires")),
                    "rule": details.get("rule"),
                }
            )
        elif kind == "escalation_resolved":
            created, done = details.get("created"), details.get("resolved_at")
            took = done - created if isinstance(created, int | float) and isinstance(done, int | float) else None
            edit = details.get("edit") if isinstance(details.get("edit"), dict) else None
            resolved.append(
                {
                    "id": details.get("escalation_id"),
                    "agent": entry.get("agent_id"),
                    "action": entry.get("action"),
                    "status": details.get("status"),
                    "resolver": details.get("resolver"),
                    "credential": details.get("credential_id"),
                    "notes": details.get("notes"),
                    "message": details.get("message"),
                    "took": _duration(took),
                    "at": human_utc(ts),
                    "edited": bool(edit),
                    "grant": (details.get("grant") or {}).get("kind"),
                }
            )
        elif kind == "identity" and details.get("event") in ("revoked", "reinstated"):
            revocations.append(
                {
                    "at": human_utc(ts),
                    "agent": entry.get("agent_id"),
                    "event": details.get("event"),
                    "by": details.get("by"),
                    "reason": details.get("reason"),
                }
            )
        elif kind == "trust_change" and isinstance(details.get("new"), int):
            series = trust[str(entry.get("agent_id"))]
            if not series and isinstance(details.get("old"), int):
                series.append((ts, details["old"]))
            series.append((ts, details["new"]))
    done_ids = {r["id"] for r in resolved} | {e["id"] for e in expired}
    pending = [o for key, o in opened.items() if key not in done_ids]
    if store is not None:
        try:
            from claw_governance.model import EscalationStatus

            pending = [
                {
                    "id": e.id,
                    "agent": e.agent_id,
                    "action": e.action,
                    "reason": e.reason,
                    "rule": e.rule,
                    "created": human_utc(e.created),
                    "expires": human_utc(e.expires),
                }
                for e in store.list_escalations(EscalationStatus.PENDING)
            ]
        except Exception:  # the store is optional evidence: the audit trail's view stays
            pass
    verification = source.verify()
    key = _key(source)
    checkpoint = None
    if store is not None and verification.trail_id:
        try:
            checkpoint = store.latest_checkpoint(verification.trail_id)
        except Exception:
            checkpoint = None
    generated = now if now is not None else time.time()
    n_days = len(days)
    return {
        **base,
        "period_words": f"from {_words(first_day)} to {_words(last_day)}, both days included "
        f"({n_days} day{'s' if n_days != 1 else ''}, UTC)",
        "generated_at": human_utc(generated),
        "origin": {"trail_id": verification.trail_id, "where": origin, "key_id": key[0], "fingerprint": key[1]},
        "verification": {
            "valid": verification.valid,
            "entries": verification.entries,
            "first_seq": verification.first_seq,
            "last_seq": verification.last_seq,
            "last_hash": verification.last_hash,
            "segments": verification.segments,
            "checkpoints": verification.checkpoints,
            "key_source": verification.key_source,
            "errors": list(verification.errors)[:20],
            "warnings": list(verification.warnings)[:20],
            "witnesses": list(getattr(verification, "witnesses", ()) or ()),
            "latest_checkpoint": None
            if checkpoint is None
            else {
                "seq": checkpoint.get("seq"),
                "hash": checkpoint.get("hash"),
                "created": human_utc(checkpoint.get("created")),
            },
        },
        "per_day_chart": _bars(per_day, days),
        "per_day": [
            {"day": d, **{k: per_day.get(d, Counter())[k] for k in ("allow", "deny", "escalate")}} for d in days
        ],
        "top_denied": denied_actions.most_common(10),
        "top_denied_max": max(denied_actions.values(), default=1),
        "trust_chart": _lines(trust, lo, min(hi, generated)) if trust else None,
        "denied": denied,
        "denied_total": sum(denied_actions.values()),
        "resolved": resolved,
        "pending": pending,
        "expired": expired,
        "revocations": revocations,
    }


def _key(source: Any) -> tuple[str | None, str | None]:
    """The trail's signing key id and its SHA-256 fingerprint (of the raw Ed25519 public key)."""
    public = getattr(getattr(source, "key", None), "public", None)
    if public is None:
        keys = getattr(source, "public_keys", None) or []
        if not keys and isinstance(getattr(source, "meta", None), dict):
            from claw_governance.audit.verify import trail_keys

            keys = list(trail_keys(source.meta).values())
        public = keys[-1] if keys else None
    if public is None:
        return None, None
    digest = hashlib.sha256(public.raw).hexdigest()
    return public.key_id, "SHA256:" + ":".join(digest[i : i + 4] for i in range(0, 32, 4))


def render_report_html(report: dict[str, Any]) -> str:
    """The page for a ``build_report`` result."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("compliance_report.html").render(r=report, colors=OUTCOME_COLORS)


def render_report(governor: Any, start: str | date | datetime, end: str | date | datetime) -> str:
    """The HTML report for a governor's own trail and state store (the console's /report)."""
    origin = str(governor.config.audit_path) if getattr(governor.config, "audit_path", None) else "in memory"
    return render_report_html(build_report(governor.audit, start, end, store=governor.state, origin=origin))
