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
_UNIT_SECONDS = {
    None: 1.0,
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day|s|m|h|d)\s*$", re.IGNORECASE)
_RATE_SECONDS = {"second": 1, "s": 1, "minute": 60, "m": 60, "hour": 3600, "h": 3600, "day": 86400, "d": 86400}
AUDIT_LEVELS = ("full", "metadata")
MODES = ("enforce", "shadow")
# What a `mode: shadow` document may hold: rules and what describes them. Settings (trust, rate limits, audit)
# act on enforcement, so a shadow document holding one would either change enforcement or silently do nothing.
SHADOW_DOCUMENT_KEYS = frozenset({"agent", "mode", "permissions", "metadata", "description", "version"})


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
    shadow: bool = False  # `mode: shadow`: decided and audited (would_deny ...), never enforced

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


@dataclass(frozen=True, slots=True)
class Contract:
    """The work-contract fields of one policy document (seed 003's "work policy contract").

    ``models_allow`` / ``models_deny`` are normalised patterns over ``provider/model`` routes (empty allow =
    no model restriction); ``receipts_required`` makes every model call need a ``model_call`` receipt in a
    job's proof bundle; ``token_max_ttl`` bounds the TTL of job tokens; ``token_require_scope`` denies calls
    that carry no job token. ``approvals.required_for`` is compiled into escalate rules (not kept here).
    """

    purpose: str | None = None
    models_allow: tuple[str, ...] = ()
    models_deny: tuple[str, ...] = ()
    receipts_required: bool = False
    token_max_ttl: float | None = None
    token_require_scope: bool = False
    line: int = 0


CONTRACT_KEYS = ("purpose", "models", "receipts", "token", "approvals")


@dataclass(frozen=True, slots=True)
class EscalationLimit:
    """At most ``limit`` escalations opened for one agent per ``period_seconds``, per process (the seed's
    ``rate_limits.escalations_per_hour``). The call that would open one more is denied instead."""

    limit: int
    period_seconds: int
    source: str


_LABEL = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# `"pii" in session.labels`: how lint finds the labels a condition needs (a label can only be named so).
LABEL_USE = re.compile(r"""["']([A-Za-z0-9_.:-]{1,64})["']\s+in\s+session\.labels\b""")


def _labels(value: Any, file: str, line: int) -> list[tuple[str, frozenset[str], str]]:
    """``labels: {pattern: [label, ...]}`` -> [(pattern, labels, source)]."""
    if not isinstance(value, LocDict):
        raise PolicyError(
            "'labels' must map action patterns to lists of labels, e.g. {\"read:customer_*\": [pii]}",
            file=file,
            line=line,
        )
    out = []
    for key, names in value.items():
        kline = value.key_lines[key]
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and _LABEL.match(n) for n in names):
            raise PolicyError(
                f"labels[{key!r}] must be a list of labels (letters, digits, _ . : -), not {names!r}",
                file=file,
                line=kline,
            )
        out.append((_pattern(key, file, kline, "labels key"), frozenset(names), f"{file}:{kline}"))
    return out


BUDGET_SCOPES = ("agent", "session")
BUDGET_THEN = (Outcome.DENY, Outcome.ESCALATE)


@dataclass(frozen=True, slots=True)
class Budget:
    """``budgets:`` entry: calls matching ``pattern`` that would be allowed may use at most ``maximum`` in any
    sliding ``period_seconds``: a count of calls, or the sum of the numeric argument ``sum_field`` (a dotted
    path). Counted in the state store, so exact across every process and host sharing it. Over it: ``then``."""

    pattern: str
    raw_pattern: str
    maximum: float
    period_seconds: float
    sum_field: str | None
    scope: str  # "agent" (each agent its own budget) or "session" (each session of each agent)
    then: Outcome
    name: str | None
    source: str

    @property
    def key(self) -> str:
        """What names the budget in the state store: its ``name``, else what it counts (not where it is written,
        so moving it in the file keeps its history)."""
        return self.name if self.name else f"{self.pattern}|{self.sum_field or '#count'}|{self.period_seconds:g}"

    @property
    def label(self) -> str:
        """How decisions name it."""
        return self.name or (
            f"sum of {self.sum_field} for {self.raw_pattern}" if self.sum_field else f"calls of {self.raw_pattern}"
        )


def _budgets(items: Any, file: str, line: int) -> list[Budget]:
    if not isinstance(items, list):
        raise PolicyError(
            "'budgets' must be a list of {action, max, per, [sum], [scope], [then], [name]}", file=file, line=line
        )
    out: list[Budget] = []
    for index, item in enumerate(items):
        iline = _line(items, index, line)
        what = f"budgets[{index}]"
        if not isinstance(item, LocDict):
            raise PolicyError(f"{what} must be a mapping with action, max and per", file=file, line=iline)
        _check_keys(item, {"action", "max", "per", "sum", "scope", "then", "name"}, what, file)
        for key in ("action", "max", "per"):
            if key not in item:
                raise PolicyError(f"{what} needs '{key}'", file=file, line=iline)
        pattern = _pattern(item["action"], file, item.key_lines["action"], f"{what}.action")
        maximum = item["max"]
        if (
            isinstance(maximum, bool)
            or not isinstance(maximum, int | float)
            or not math.isfinite(maximum)
            or maximum < 0
        ):
            raise PolicyError(
                f"{what}.max must be a number of at least 0, not {maximum!r}", file=file, line=item.key_lines["max"]
            )
        period = parse_duration(item["per"], file=file, line=item.key_lines["per"], what=f"{what}.per")
        sum_field = item.get("sum")
        if sum_field is not None and (
            not isinstance(sum_field, str) or not sum_field.strip() or any(not part for part in sum_field.split("."))
        ):
            raise PolicyError(
                f"{what}.sum must name an argument (e.g. amount or payment.amount), not {sum_field!r}",
                file=file,
                line=item.key_lines["sum"],
            )
        scope = item.get("scope", "agent")
        if scope not in BUDGET_SCOPES:
            raise PolicyError(
                f"{what}.scope must be one of {', '.join(BUDGET_SCOPES)}, not {scope!r}",
                file=file,
                line=item.key_lines["scope"],
            )
        then = item.get("then", "deny")
        if then not in ("deny", "escalate"):
            raise PolicyError(
                f"{what}.then must be deny or escalate, not {then!r}", file=file, line=item.key_lines["then"]
            )
        name = item.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise PolicyError(f"{what}.name must be text", file=file, line=item.key_lines["name"])
        out.append(
            Budget(
                pattern,
                str(item["action"]),
                float(maximum),
                period,
                sum_field,
                str(scope),
                Outcome(then),
                name,
                f"{file}:{iline}",
            )
        )
    return out


# The seed toolkit's rate_limits keys (integers, never read by the seed). Two have one plain meaning and are
# enforced; the others name a unit ("a review") that no tool call carries, so a file using them is refused
# with what to write instead rather than loaded with a limit that means nothing.
SEED_RATE_KEYS = ("actions_per_minute", "escalations_per_hour")
SEED_RATE_REFUSED = {
    "reviews_per_hour": 'a "review" is not something a tool call names; limit the actions a review makes, e.g. '
    'rate_limits: {"update:review_status": "50/hour"}',
    "comments_per_review": "a limit per review needs a review id no call carries; limit the comment action instead, "
    'e.g. rate_limits: {"create:review_comment": "100/hour"}',
}
# The seed's spellings of trust settings, accepted beside ours (and rewritten by `claw-gov policy migrate`).
TRUST_ALIASES = {"minimum_score": "min_score", "recovery_threshold": "recovery_score"}


def _plain(value: Any, file: str, line: int, where: str) -> Any:
    """YAML metadata as JSON-ready values (dates become ISO text), so reports can carry it as is."""
    if isinstance(value, dict):
        return {str(k): _plain(v, file, _line(value, str(k), line), f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, file, _line(value, i, line), f"{where}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise PolicyError(
        f"{where} must hold text, numbers, lists or mappings, not {type(value).__name__}", file=file, line=line
    )


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
    contract: Contract | None = None  # the work-contract fields (purpose, models, receipts, token, approvals)
    metadata: dict[str, Any] | None = None  # the seed's `metadata:` (name, description, version, owner), kept as is
    metadata_line: int | None = None
    escalation_limits: list[EscalationLimit] = field(default_factory=list)
    shadow: bool = False  # `mode: shadow`: every rule of the document is a shadow rule
    budgets: list[Budget] = field(default_factory=list)
    labels: list[tuple[str, frozenset[str], str]] = field(default_factory=list)  # (pattern, labels, file:line)


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
            raise PolicyError(
                f"unknown key {key!r} in {where} (expected one of: {hint})",
                file=file,
                line=mapping.key_lines.get(key, mapping.line),
            )


def _pattern(value: Any, file: str, line: int, what: str) -> str:
    if not isinstance(value, str):
        raise PolicyError(
            f"{what} must be a string pattern, not {type(value).__name__} {value!r}", file=file, line=line
        )
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
            raise PolicyError(
                f"{what}.approvers must be a non-empty list of reviewer names or groups",
                file=file,
                line=item.key_lines["approvers"],
            )
        approvers = tuple(v.strip().lower() for v in value)
    max_grant = None
    if item.get("max_grant") is not None:
        max_grant = parse_duration(
            item["max_grant"], file=file, line=item.key_lines["max_grant"], what=f"{what}.max_grant"
        )
    return approvers, max_grant


def _mode(value: Any, file: str, line: int, where: str) -> bool:
    """``mode: shadow | enforce`` -> whether it is shadow."""
    if value not in MODES:
        raise PolicyError(f"{where} must be one of {', '.join(MODES)}, not {value!r}", file=file, line=line)
    return bool(value == "shadow")


def _rules(effect: Outcome, items: Any, agent: str, file: str, line: int, shadow: bool = False) -> list[Rule]:
    name = effect.value
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]  # `deny: delete:*` is a common shorthand
    if not isinstance(items, list):
        raise PolicyError(
            f"permissions.{name} must be a list of patterns, not {type(items).__name__}", file=file, line=line
        )
    rules: list[Rule] = []
    for index, item in enumerate(items):
        iline = _line(items, index, line)
        what = f"permissions.{name}[{index}]"
        if isinstance(item, LocDict):
            _check_keys(
                item, {"action", "condition", "reason", "timeout", "mode", "approvers", "max_grant"}, what, file
            )
            rule_shadow = shadow
            if "mode" in item:
                rule_shadow = _mode(item["mode"], file, item.key_lines["mode"], f"{what}.mode")
                if shadow and not rule_shadow:
                    raise PolicyError(
                        f"{what}.mode: a rule of a 'mode: shadow' document cannot be enforced",
                        file=file,
                        line=item.key_lines["mode"],
                    )
            if "action" not in item:
                raise PolicyError(f"{what} needs an 'action' pattern", file=file, line=iline)
            pattern = _pattern(item["action"], file, iline, f"{what}.action")
            condition = None
            if "condition" in item:
                cline = item.key_lines.get("condition", iline)
                if item["condition"] is None:  # `condition:` left empty must not make the rule unconditional
                    raise PolicyError(
                        f"{what}.condition is empty (remove the key for a rule without one)", file=file, line=cline
                    )
                if not isinstance(item["condition"], str | int | float | bool):
                    raise PolicyError(f"{what}.condition must be an expression string", file=file, line=cline)
                try:
                    condition = Condition(
                        str(item["condition"]).lower()
                        if isinstance(item["condition"], bool)
                        else str(item["condition"])
                    )
                except ConditionSyntaxError as exc:
                    raise PolicyError(str(exc), file=file, line=cline) from None
            reason = item.get("reason")
            if reason is not None and not isinstance(reason, str):
                raise PolicyError(f"{what}.reason must be text", file=file, line=item.key_lines["reason"])
            timeout = None
            if item.get("timeout") is not None:
                if effect is not Outcome.ESCALATE:
                    raise PolicyError(
                        f"{what}.timeout only applies to escalate rules", file=file, line=item.key_lines["timeout"]
                    )
                timeout = parse_duration(
                    item["timeout"], file=file, line=item.key_lines["timeout"], what=f"{what}.timeout"
                )
            approvers, max_grant = _approval_keys(item, effect, what, file)
            rules.append(
                Rule(
                    effect,
                    pattern,
                    str(item["action"]),
                    agent,
                    file,
                    iline,
                    condition,
                    reason,
                    timeout,
                    approvers,
                    max_grant,
                    shadow=rule_shadow,
                )
            )
        else:
            pattern = _pattern(item, file, iline, what)
            rules.append(Rule(effect, pattern, str(item), agent, file, iline, shadow=shadow))
    return rules


def _int_field(mapping: LocDict, key: str, file: str, lo: int, hi: int, where: str) -> int | None:
    if key not in mapping or mapping[key] is None:
        return None
    value = mapping[key]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise PolicyError(
            f"{where}.{key} must be a whole number from {lo} to {hi}, not {value!r}",
            file=file,
            line=mapping.key_lines[key],
        )
    return value


def _renamed(mapping: LocDict, old: str, new: str) -> LocDict:
    """A copy of ``mapping`` with key ``old`` called ``new`` (same value, same line)."""
    out = LocDict((new if k == old else k, v) for k, v in mapping.items())
    out.line = mapping.line
    out.key_lines = {(new if k == old else k): n for k, n in mapping.key_lines.items()}
    return out


def _seed_rate_limit(doc: PolicyDocument, key: str, spec: Any, file: str, kline: int) -> None:
    """``actions_per_minute: N`` / ``escalations_per_hour: N`` (the seed's form); see SEED_RATE_KEYS."""
    if isinstance(spec, bool) or not isinstance(spec, int) or spec < 1:
        raise PolicyError(
            f"rate_limits.{key} must be a whole number of at least 1, not {spec!r}", file=file, line=kline
        )
    if key == "actions_per_minute":  # every call the policy allows, whatever its action: the same as "*": N/minute
        doc.rate_limits.append(RateLimit("*", spec, 60, f"{file}:{kline}"))
    else:
        doc.escalation_limits.append(EscalationLimit(spec, 3600, f"{file}:{kline}"))


def parse_document(value: Any, file: str, line: int) -> PolicyDocument:
    """Validate one YAML document. Raises PolicyError naming file and line."""
    if not isinstance(value, LocDict):
        kind = "empty" if value is None else type(value).__name__
        raise PolicyError(
            f"a policy document must be a mapping with 'agent' and 'permissions', not {kind}", file=file, line=line
        )
    _check_keys(
        value,
        {
            "agent",
            "permissions",
            "sensitive_fields",
            "trust",
            "audit",
            "rate_limits",
            "description",
            "version",
            "metadata",
            "mode",
            "budgets",
            "labels",
            *CONTRACT_KEYS,
        },
        "the policy document",
        file,
    )
    if "agent" not in value:
        raise PolicyError("missing 'agent' (an agent id, or \"*\" for every agent)", file=file, line=value.line)
    agent_raw = value["agent"]
    if not isinstance(agent_raw, str) or not normalize(agent_raw):
        raise PolicyError(
            f"'agent' must be a non-empty string, not {agent_raw!r}", file=file, line=value.key_lines["agent"]
        )
    agent = normalize(agent_raw)
    doc = PolicyDocument(agent=agent, file=file, line=value.line)
    if "mode" in value:
        doc.shadow = _mode(value["mode"], file, value.key_lines["mode"], "mode")
        if doc.shadow:
            for key in value:
                if key not in SHADOW_DOCUMENT_KEYS and not key.startswith("x-"):
                    raise PolicyError(
                        f"a 'mode: shadow' document holds rules only; '{key}' acts on enforcement, so "
                        "set it in the enforcing policy",
                        file=file,
                        line=value.key_lines[key],
                    )
    description = value.get("description")
    doc.description = description if isinstance(description, str) else None
    if value.get("metadata") is not None:
        mline = value.key_lines["metadata"]
        if not isinstance(value["metadata"], LocDict):
            raise PolicyError(
                "'metadata' must be a mapping (name, description, version, owner, ...)", file=file, line=mline
            )
        doc.metadata = _plain(value["metadata"], file, mline, "metadata")
        doc.metadata_line = mline

    perms = value.get("permissions")
    if perms is not None:
        pline = value.key_lines["permissions"]
        if not isinstance(perms, LocDict):
            raise PolicyError(
                "'permissions' must be a mapping with allow / deny / escalate lists", file=file, line=pline
            )
        _check_keys(perms, {"allow", "deny", "escalate"}, "permissions", file)
        for effect in (Outcome.DENY, Outcome.ESCALATE, Outcome.ALLOW):
            key = effect.value
            if key in perms:
                doc.rules.extend(_rules(effect, perms[key], agent, file, perms.key_lines[key], doc.shadow))

    if any(value.get(k) is not None for k in CONTRACT_KEYS):
        doc.contract = _contract(value, agent, file, doc)

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
        _check_keys(
            trust,
            {
                "min_score",
                "recovery_score",
                "success",
                "failure",
                "bad_signature",
                "initial",
                "max_score",
                *TRUST_ALIASES,
            },
            "trust",
            file,
        )
        for alias, ours in TRUST_ALIASES.items():
            if alias in trust:
                if ours in trust:
                    raise PolicyError(
                        f"trust.{alias} and trust.{ours} are the same setting; keep one",
                        file=file,
                        line=trust.key_lines[alias],
                    )
                trust = _renamed(trust, alias, ours)
        base = TrustSettings()
        values = {
            k: _int_field(trust, k, file, lo, hi, "trust")
            for k, lo, hi in (
                ("min_score", 0, 1000),
                ("recovery_score", 1, 1000),
                ("initial", 1, 1000),
                ("success", 0, 100),
                ("failure", -100, 0),
                ("bad_signature", -100, 0),
                ("max_score", 1, 10**9),
            )
        }
        doc.trust = TrustSettings(**{k: (getattr(base, k) if v is None else v) for k, v in values.items()})
        for key in ("initial", "recovery_score", "min_score"):
            if getattr(doc.trust, key) > doc.trust.max_score:
                raise PolicyError(
                    f"trust.{key} ({getattr(doc.trust, key)}) is above trust.max_score ({doc.trust.max_score})",
                    file=file,
                    line=tline,
                )
        doc.trust_line = tline

    if value.get("audit") is not None:
        audit = value["audit"]
        aline = value.key_lines["audit"]
        if not isinstance(audit, LocDict):
            raise PolicyError("'audit' must be a mapping (level, retention, sensitive_fields)", file=file, line=aline)
        _check_keys(audit, {"level", "retention", "sensitive_fields"}, "audit", file)
        level = audit.get("level")
        if level is not None and level not in AUDIT_LEVELS:
            raise PolicyError(
                f"audit.level must be one of {', '.join(AUDIT_LEVELS)}, not {level!r}",
                file=file,
                line=audit.key_lines["level"],
            )
        doc.audit_level = level
        doc.audit_retention_days = _int_field(audit, "retention", file, 1, 36500, "audit")
        if audit.get("sensitive_fields") is not None:  # the seed's place for them: they join the top-level list
            sf = audit["sensitive_fields"]
            if not isinstance(sf, list) or not all(isinstance(x, str) and x.strip() for x in sf):
                raise PolicyError(
                    "'audit.sensitive_fields' must be a list of field names",
                    file=file,
                    line=audit.key_lines["sensitive_fields"],
                )
            doc.sensitive_fields = doc.sensitive_fields | frozenset(sf)

    if value.get("labels") is not None:
        doc.labels = _labels(value["labels"], file, value.key_lines["labels"])
    if value.get("budgets") is not None:
        doc.budgets = _budgets(value["budgets"], file, value.key_lines["budgets"])

    if value.get("rate_limits") is not None:
        limits = value["rate_limits"]
        rline = value.key_lines["rate_limits"]
        if not isinstance(limits, LocDict):
            raise PolicyError(
                "'rate_limits' must map action patterns to limits like \"10/minute\"", file=file, line=rline
            )
        for key, spec in limits.items():
            kline = limits.key_lines[key]
            if key in SEED_RATE_KEYS:
                _seed_rate_limit(doc, key, spec, file, kline)
                continue
            if key in SEED_RATE_REFUSED:
                raise PolicyError(
                    f"rate_limits.{key} is not supported: {SEED_RATE_REFUSED[key]}", file=file, line=kline
                )
            if isinstance(spec, int) and not isinstance(spec, bool):
                raise PolicyError(
                    f'rate_limits[{key!r}] must look like "{spec}/minute" (a bare number is only '
                    f"understood for {' and '.join(SEED_RATE_KEYS)})",
                    file=file,
                    line=kline,
                )
            match = _RATE.match(str(spec))
            if not match or int(match.group(1)) < 1:
                raise PolicyError(
                    f'rate_limits[{key!r}] must look like "10/minute", not {spec!r}', file=file, line=kline
                )
            doc.rate_limits.append(
                RateLimit(
                    _pattern(key, file, kline, "rate_limits key"),
                    int(match.group(1)),
                    _RATE_SECONDS[match.group(2).lower()],
                    f"{file}:{kline}",
                )
            )
    return doc


def _patterns(value: Any, file: str, line: int, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise PolicyError(f"{what} must be a list of patterns", file=file, line=line)
    return tuple(_pattern(v, file, _line(value, i, line), f"{what}[{i}]") for i, v in enumerate(value))


def _contract(value: LocDict, agent: str, file: str, doc: PolicyDocument) -> Contract:
    """The contract fields; ``approvals.required_for`` becomes escalate rules of ``doc``."""
    purpose = value.get("purpose")
    if purpose is not None and not isinstance(purpose, str):
        raise PolicyError("'purpose' must be text", file=file, line=value.key_lines["purpose"])
    models_allow: tuple[str, ...] = ()
    models_deny: tuple[str, ...] = ()
    if value.get("models") is not None:
        models = value["models"]
        mline = value.key_lines["models"]
        if isinstance(models, list | str):  # `models: ["openai/gpt-5*"]` is the allow list
            models_allow = _patterns(models, file, mline, "models")
        elif isinstance(models, LocDict):
            _check_keys(models, {"allow", "deny"}, "models", file)
            if models.get("allow") is not None:
                models_allow = _patterns(models["allow"], file, models.key_lines["allow"], "models.allow")
            if models.get("deny") is not None:
                models_deny = _patterns(models["deny"], file, models.key_lines["deny"], "models.deny")
        else:
            raise PolicyError(
                "'models' must be a list of model routes or a mapping with allow / deny", file=file, line=mline
            )
    receipts = False
    if value.get("receipts") is not None:
        raw = value["receipts"]
        if raw not in ("required", "optional", True, False):
            raise PolicyError(
                f"'receipts' must be required or optional, not {raw!r}", file=file, line=value.key_lines["receipts"]
            )
        receipts = raw in ("required", True)
    max_ttl: float | None = None
    require_scope = False
    if value.get("token") is not None:
        token = value["token"]
        tline = value.key_lines["token"]
        if not isinstance(token, LocDict):
            raise PolicyError("'token' must be a mapping (max_ttl, require_scope)", file=file, line=tline)
        _check_keys(token, {"max_ttl", "require_scope"}, "token", file)
        if token.get("max_ttl") is not None:
            max_ttl = parse_duration(token["max_ttl"], file=file, line=token.key_lines["max_ttl"], what="token.max_ttl")
        if token.get("require_scope") is not None:
            if not isinstance(token["require_scope"], bool):
                raise PolicyError(
                    "token.require_scope must be true or false", file=file, line=token.key_lines["require_scope"]
                )
            require_scope = token["require_scope"]
    if value.get("approvals") is not None:
        approvals = value["approvals"]
        aline = value.key_lines["approvals"]
        if not isinstance(approvals, LocDict):
            raise PolicyError("'approvals' must be a mapping with required_for", file=file, line=aline)
        _check_keys(approvals, {"required_for"}, "approvals", file)
        if approvals.get("required_for") is not None:
            rline = approvals.key_lines["required_for"]
            for index, pattern in enumerate(
                _patterns(approvals["required_for"], file, rline, "approvals.required_for")
            ):
                raw = approvals["required_for"]
                text = raw if isinstance(raw, str) else str(raw[index])
                doc.rules.append(
                    Rule(
                        Outcome.ESCALATE,
                        pattern,
                        text,
                        agent,
                        file,
                        _line(raw, index, rline),
                        reason="the work contract requires human approval (approvals.required_for)",
                    )
                )
    return Contract(purpose, models_allow, models_deny, receipts, max_ttl, require_scope, value.line)
