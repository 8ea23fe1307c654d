"""The policy file format: validate one YAML document into a ``PolicyDocument``, or fail with file:line.

Unknown keys are **rejected**, not warned: a misspelt ``denny:`` or ``sensitive_field:`` would otherwise
silently drop rules or redaction. Keys starting with ``x-`` are reserved for your own annotations.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from claw_governance.errors import PolicyError
from claw_governance.model import Outcome
from claw_governance.policy.conditions import Condition, ConditionSyntaxError
from claw_governance.policy.patterns import normalize
from claw_governance.policy.source import LocDict, LocList

MAX_PATTERN_CHARS = 512
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|hr|d|w)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {None: 1.0, "ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0,
                 "hr": 3600.0, "d": 86400.0, "w": 604800.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day|s|m|h|d)\s*$", re.IGNORECASE)
_RATE_SECONDS = {"second": 1, "s": 1, "minute": 60, "m": 60, "hour": 3600, "h": 3600, "day": 86400, "d": 86400}
AUDIT_LEVELS = ("full", "metadata")


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule as written: effect, normalised pattern, optional condition, and where it came from."""

    effect: Outcome
    pattern: str
    raw_pattern: str
    agent: str
    file: str
    line: int
    condition: Condition | None = None
    reason: str | None = None
    timeout_seconds: float | None = None
    approvers: tuple[str, ...] = ()
    max_grant_seconds: float | None = None

    @property
    def source(self) -> str:
        """``file:line`` of the rule."""
        return f"{self.file}:{self.line}"

    @property
    def specificity(self) -> tuple[int, int]:
        """Longer literal text is more specific; used only to pick which of several matches to name."""
        return (len(self.pattern.replace("*", "")), -self.pattern.count("*"))


@dataclass(frozen=True, slots=True)
class TrustSettings:
    """Per-policy trust tuning (``trust:``), with the DESIGN.md defaults."""

    min_score: int = 50
    recovery_score: int = 80
    success: int = 1
    failure: int = -5
    bad_signature: int = -10
    initial: int = 100
    max_score: int = 100  # the ceiling: a long run of successes cannot bank unlimited credit


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``limit`` calls matching ``pattern`` per ``period_seconds``, per agent, per process."""

    pattern: str
    limit: int
    period_seconds: int
    source: str


@dataclass(slots=True)
class PolicyDocument:
    """One validated document (one agent, or ``*``)."""

    agent: str
    file: str
    line: int
    rules: list[Rule] = field(default_factory=list)
    sensitive_fields: frozenset[str] = frozenset()
    trust: TrustSettings | None = None
    trust_line: int | None = None
    audit_level: str | None = None
    audit_retention_days: int | None = None
    rate_limits: list[RateLimit] = field(default_factory=list)
    description: str | None = None


def parse_duration(value: Any, *, file: str, line: int, what: str) -> float:
    """``30s``, ``15m``, ``4h``, ``2d``, ``1w`` or a number of seconds."""
    if isinstance(value, bool):
        raise PolicyError(f"{what} must be a duration like 30m or 4h, not {value!r}", file=file, line=line)
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise PolicyError(f"{what} must be a duration like 30m or 4h, not {value!r}", file=file, line=line)
        unit = match.group(2).lower() if match.group(2) else None
        seconds = float(match.group(1)) * _UNIT_SECONDS[unit]
    if not math.isfinite(seconds) or seconds <= 0:
        raise PolicyError(f"{what} must be a positive duration, not {value!r}", file=file, line=line)
    return seconds


def _line(container: Any, key: str | int, default: int) -> int:
    if isinstance(container, LocDict):
        return container.key_lines.get(str(key), container.line)
    if isinstance(container, LocList) and isinstance(key, int) and key < len(container.item_lines):
        return container.item_lines[key]
    return default


def _check_keys(mapping: LocDict, allowed: set[str], where: str, file: str) -> None:
    for key in mapping:
        if key not in allowed and not key.startswith("x-"):
            hint = ", ".join(sorted(allowed))
            raise PolicyError(f"unknown key {key!r} in {where} (expected one of: {hint})",
                              file=file, line=mapping.key_lines.get(key, mapping.line))


def _pattern(value: Any, file: str, line: int, what: str) -> str:
    if not isinstance(value, str):
        raise PolicyError(f"{what} must be a string pattern, not {type(value).__name__} {value!r}",
                          file=file, line=line)
    pattern = normalize(value)
    if not pattern:
        raise PolicyError(f"{what} is empty", file=file, line=line)
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PolicyError(f"{what} is longer than {MAX_PATTERN_CHARS} characters", file=file, line=line)
    return pattern


def _approval_keys(item: LocDict, effect: Outcome, what: str, file: str) -> tuple[tuple[str, ...], float | None]:
    """An escalate rule's ``approvers`` (reviewer names or groups) and ``max_grant`` (a duration)."""
    for key in ("approvers", "max_grant"):
        if key in item and effect is not Outcome.ESCALATE:
            raise PolicyError(f"{what}.{key} only applies to escalate rules", file=file, line=item.key_lines[key])
    approvers: tuple[str, ...] = ()
    if "approvers" in item:
        value = item["approvers"]
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise PolicyError(f"{what}.approvers must be a non-empty list of reviewer names or groups",
                              file=file, line=item.key_lines["approvers"])
        approvers = tuple(v.strip().lower() for v in value)
    max_grant = None
    if item.get("max_grant") is not None:
        max_grant = parse_duration(item["max_grant"], file=file, line=item.key_lines["max_grant"],
                                   what=f"{what}.max_grant")
    return approvers, max_grant


def _rules(effect: Outcome, items: Any, agent: str, file: str, line: int) -> list[Rule]:
    name = effect.value
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]  # `deny: delete:*` is a common shorthand
    if not isinstance(items, list):
        raise PolicyError(f"permissions.{name} must be a list of patterns, not {type(items).__name__}",
                          file=file, line=line)
    rules: list[Rule] = []
    for index, item in enumerate(items):
        iline = _line(items, index, line)
        what = f"permissions.{name}[{index}]"
        if isinstance(item, LocDict):
            _check_keys(item, {"action", "condition", "reason", "timeout", "approvers", "max_grant"}, what, file)
            if "action" not in item:
                raise PolicyError(f"{what} needs an 'action' pattern", file=file, line=iline)
            pattern = _pattern(item["action"], file, iline, f"{what}.action")
            condition = None
            if "condition" in item:
                cline = item.key_lines.get("condition", iline)
                if item["condition"] is None:  # `condition:` left empty must not make the rule unconditional
                    raise PolicyError(f"{what}.condition is empty (remove the key for a rule without one)",
                                      file=file, line=cline)
                if not isinstance(item["condition"], str | int | float | bool):
                    raise PolicyError(f"{what}.condition must be an expression string", file=file, line=cline)
                try:
                    condition = Condition(str(item["condition"]).lower() if isinstance(item["condition"], bool)
                                          else str(item["condition"]))
                except ConditionSyntaxError as exc:
                    raise PolicyError(str(exc), file=file, line=cline) from None
            reason = item.get("reason")
            if reason is not None and not isinstance(reason, str):
                raise PolicyError(f"{what}.reason must be text", file=file, line=item.key_lines["reason"])
            timeout = None
            if item.get("timeout") is not None:
                if effect is not Outcome.ESCALATE:
                    raise PolicyError(f"{what}.timeout only applies to escalate rules",
                                      file=file, line=item.key_lines["timeout"])
                timeout = parse_duration(item["timeout"], file=file, line=item.key_lines["timeout"],
                                         what=f"{what}.timeout")
            approvers, max_grant = _approval_keys(item, effect, what, file)
            rules.append(Rule(effect, pattern, str(item["action"]), agent, file, iline, condition, reason, timeout,
                              approvers, max_grant))
        else:
            pattern = _pattern(item, file, iline, what)
            rules.append(Rule(effect, pattern, str(item), agent, file, iline))
    return rules


def _int_field(mapping: LocDict, key: str, file: str, lo: int, hi: int, where: str) -> int | None:
    if key not in mapping or mapping[key] is None:
        return None
    value = mapping[key]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise PolicyError(f"{where}.{key} must be a whole number from {lo} to {hi}, not {value!r}",
                          file=file, line=mapping.key_lines[key])
    return value


def parse_document(value: Any, file: str, line: int) -> PolicyDocument:
    """Validate one YAML document. Raises PolicyError naming file and line."""
    if not isinstance(value, LocDict):
        kind = "empty" if value is None else type(value).__name__
        raise PolicyError(f"a policy document must be a mapping with 'agent' and 'permissions', not {kind}",
                          file=file, line=line)
    _check_keys(value, {"agent", "permissions", "sensitive_fields", "trust", "audit", "rate_limits",
                        "description", "version"}, "the policy document", file)
    if "agent" not in value:
        raise PolicyError("missing 'agent' (an agent id, or \"*\" for every agent)", file=file, line=value.line)
    agent_raw = value["agent"]
    if not isinstance(agent_raw, str) or not normalize(agent_raw):
        raise PolicyError(f"'agent' must be a non-empty string, not {agent_raw!r}",
                          file=file, line=value.key_lines["agent"])
    agent = normalize(agent_raw)
    doc = PolicyDocument(agent=agent, file=file, line=value.line)
    description = value.get("description")
    doc.description = description if isinstance(description, str) else None

    perms = value.get("permissions")
    if perms is not None:
        pline = value.key_lines["permissions"]
        if not isinstance(perms, LocDict):
            raise PolicyError("'permissions' must be a mapping with allow / deny / escalate lists",
                              file=file, line=pline)
        _check_keys(perms, {"allow", "deny", "escalate"}, "permissions", file)
        for effect in (Outcome.DENY, Outcome.ESCALATE, Outcome.ALLOW):
            key = effect.value
            if key in perms:
                doc.rules.extend(_rules(effect, perms[key], agent, file, perms.key_lines[key]))

    if value.get("sensitive_fields") is not None:
        sf = value["sensitive_fields"]
        sline = value.key_lines["sensitive_fields"]
        if not isinstance(sf, list) or not all(isinstance(x, str) and x.strip() for x in sf):
            raise PolicyError("'sensitive_fields' must be a list of field names", file=file, line=sline)
        doc.sensitive_fields = frozenset(sf)

    if value.get("trust") is not None:
        trust = value["trust"]
        tline = value.key_lines["trust"]
        if not isinstance(trust, LocDict):
            raise PolicyError("'trust' must be a mapping (min_score, recovery_score, ...)", file=file, line=tline)
        _check_keys(trust, {"min_score", "recovery_score", "success", "failure", "bad_signature", "initial",
                            "max_score"}, "trust", file)
        base = TrustSettings()
        values = {k: _int_field(trust, k, file, lo, hi, "trust") for k, lo, hi in (
            ("min_score", 0, 1000), ("recovery_score", 1, 1000), ("initial", 1, 1000),
            ("success", 0, 100), ("failure", -100, 0), ("bad_signature", -100, 0), ("max_score", 1, 10**9))}
        doc.trust = TrustSettings(**{k: (getattr(base, k) if v is None else v) for k, v in values.items()})
        for key in ("initial", "recovery_score", "min_score"):
            if getattr(doc.trust, key) > doc.trust.max_score:
                raise PolicyError(f"trust.{key} ({getattr(doc.trust, key)}) is above trust.max_score "
                                  f"({doc.trust.max_score})", file=file, line=tline)
        doc.trust_line = tline

    if value.get("audit") is not None:
        audit = value["audit"]
        aline = value.key_lines["audit"]
        if not isinstance(audit, LocDict):
            raise PolicyError("'audit' must be a mapping (level, retention)", file=file, line=aline)
        _check_keys(audit, {"level", "retention"}, "audit", file)
        level = audit.get("level")
        if level is not None and level not in AUDIT_LEVELS:
            raise PolicyError(f"audit.level must be one of {', '.join(AUDIT_LEVELS)}, not {level!r}",
                              file=file, line=audit.key_lines["level"])
        doc.audit_level = level
        doc.audit_retention_days = _int_field(audit, "retention", file, 1, 36500, "audit")

    if value.get("rate_limits") is not None:
        limits = value["rate_limits"]
        rline = value.key_lines["rate_limits"]
        if not isinstance(limits, LocDict):
            raise PolicyError("'rate_limits' must map action patterns to limits like \"10/minute\"",
                              file=file, line=rline)
        for key, spec in limits.items():
            kline = limits.key_lines[key]
            match = _RATE.match(str(spec))
            if not match or int(match.group(1)) < 1:
                raise PolicyError(f"rate_limits[{key!r}] must look like \"10/minute\", not {spec!r}",
                                  file=file, line=kline)
            doc.rate_limits.append(RateLimit(_pattern(key, file, kline, "rate_limits key"), int(match.group(1)),
                                             _RATE_SECONDS[match.group(2).lower()], f"{file}:{kline}"))
    return doc
