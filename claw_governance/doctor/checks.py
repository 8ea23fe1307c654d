"""The seed's pre-deployment checklist (002), checked by a machine where a machine can check it.

Each check returns ``Finding``s: an id, a severity (``red``: a red flag, ``claw-gov doctor`` exits 1;
``amber``: worth fixing; ``ok``: checked and fine), a one-line message and a one-line fix. Checks only read:
nothing is created, no audit entry is written, no identity is made. To add a check, write a function
``(Context) -> Iterable[Finding]`` and append it to ``CHECKS``.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from claw_governance.config import GovernorConfig
from claw_governance.errors import ClawGovernanceError
from claw_governance.model import Outcome, ToolCall
from claw_governance.policy import PolicySet
from claw_governance.state import StateStore

RED, AMBER, OK = "red", "amber", "ok"
DESTRUCTIVE_VERBS = ("delete", "drop", "truncate", "destroy", "wipe", "purge", "remove", "rm", "kill", "shutdown")
KEY_ROTATION_DAYS = 90  # the checklist: "quarterly recommended"
RETENTION_FLOOR_DAYS = 2555  # the checklist: "7 years for SOC2/HIPAA"
VERIFY_MAX_AGE_DAYS = 8  # the checklist: "weekly recommended"
EXPORT_MAX_AGE_DAYS = 31
DISK_RED, DISK_AMBER = 0.20, 0.30  # free fraction (the checklist alerts at 80% full)
MIN_TOKEN_CHARS = 32
WEAK_TOKENS = frozenset({"changeme", "password", "secret", "token", "test", "admin", "letmein", "default"})


@dataclass(frozen=True, slots=True)
class Finding:
    """One result: ``id`` (stable, for CI), ``severity`` (red/amber/ok), ``message`` and ``fix`` (one line each)."""

    id: str
    severity: str
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        """The JSON form."""
        return {"id": self.id, "severity": self.severity, "message": self.message, "fix": self.fix}


@dataclass
class Context:
    """What the checks look at; loaded once, read-only."""

    config: GovernorConfig
    policy: PolicySet | None = None
    policy_error: str | None = None
    store: StateStore | None = None
    store_error: str | None = None
    retention_floor_days: int = RETENTION_FLOOR_DAYS
    key_rotation_days: int = KEY_ROTATION_DAYS
    bridge_token: str | None = None
    witness_url: str | None = None
    disk_red: float = DISK_RED  # free fractions
    disk_amber: float = DISK_AMBER
    now: float = field(default_factory=time.time)

    def identities(self) -> list[Any]:
        if self.store is None:
            return []
        try:
            return list(self.store.list_identities())
        except Exception:
            return []


# ------------------------------------------------------------------------------------------ policies


def check_policy_loaded(ctx: Context) -> Iterable[Finding]:
    if ctx.policy_error is not None:
        yield Finding("POL000", RED, f"policies do not load: {ctx.policy_error}", "claw-gov policy lint; fix file:line")
    elif ctx.policy is None or not ctx.policy.documents:
        yield Finding("POL000", RED, "no policy files: every call is denied", "write policies/<agent>.yaml (see docs)")
    else:
        yield Finding("POL000", OK, f"{len(ctx.policy.files)} policy files, {ctx.policy.rule_count} rules load")


def check_policy_per_agent(ctx: Context) -> Iterable[Finding]:
    if ctx.policy is None:
        return
    agents = {r.agent_id for r in ctx.identities()}
    own = set(ctx.policy.agents)
    for agent in sorted(agents):
        if ctx.policy.for_agent(agent) is None:
            yield Finding(
                "POL001",
                RED,
                f"agent {agent!r} has an identity but no policy: every call is denied",
                f"add policies/{agent}.yaml with the actions it needs",
            )
        elif agent not in own:
            yield Finding(
                "POL001",
                AMBER,
                f"agent {agent!r} has no policy of its own (only the '*' policy applies)",
                f"add policies/{agent}.yaml: allow only what this agent needs",
            )
    for agent in sorted(own - agents) if agents else ():
        yield Finding(
            "POL001",
            AMBER,
            f"policy for {agent!r} is not used: no identity of that name",
            "remove it, or check the agent id (claw-gov identity list)",
        )
    if agents and all(a in own for a in agents):
        yield Finding("POL001", OK, f"every one of the {len(agents)} agents has its own policy")


def _rules(policy: PolicySet) -> Iterable[Any]:
    for doc in policy.documents:
        yield from doc.rules


def check_no_unrestricted_allow(ctx: Context) -> Iterable[Finding]:
    if ctx.policy is None:
        return
    bad = [
        r
        for r in _rules(ctx.policy)
        if r.effect is Outcome.ALLOW and r.pattern.strip("*") == "" and r.condition is None
    ]
    for rule in bad:
        yield Finding(
            "POL002",
            RED,
            f'{rule.source}: agent {rule.agent!r} may do anything (allow "{rule.raw_pattern}")',
            "replace it with the actions the agent needs, e.g. read:*",
        )
    if not bad:
        yield Finding("POL002", OK, 'no unrestricted allow "*"')


def check_destructive_verbs_denied(ctx: Context) -> Iterable[Finding]:
    if ctx.policy is None:
        return
    agents = sorted(set(ctx.policy.agents) | {r.agent_id for r in ctx.identities()}) or ["*"]
    clean = True
    for agent in agents:
        for verb in DESTRUCTIVE_VERBS:
            decision = ctx.policy.decide(ToolCall(agent, f"{verb}:claw_doctor_probe", {}))
            if decision.outcome is Outcome.ALLOW:
                clean = False
                yield Finding(
                    "POL003",
                    RED,
                    f"agent {agent!r} is ALLOWED {verb}:* ({decision.reason})",
                    f'add deny: ["{verb}:*"] to its policy (or escalate it)',
                )
            elif decision.stage == "default" or decision.rule is None:
                clean = False
                yield Finding(
                    "POL003",
                    AMBER,
                    f"agent {agent!r}: {verb}:* is denied only by default (no deny rule)",
                    f'add deny: ["{verb}:*"] so a later broad allow cannot open it',
                )
    if clean:
        yield Finding("POL003", OK, f"destructive verbs ({', '.join(DESTRUCTIVE_VERBS)}) are denied or escalated")


def check_escalation_timeouts(ctx: Context) -> Iterable[Finding]:
    if ctx.policy is None:
        return
    missing = [r for r in _rules(ctx.policy) if r.effect is Outcome.ESCALATE and not r.timeout_seconds]
    hours = ctx.config.escalation_timeout_hours
    for rule in missing:
        yield Finding(
            "POL004",
            AMBER,
            f"{rule.source}: escalate {rule.raw_pattern!r} has no timeout (the default {hours:g} h applies)",
            "add timeout: 4h (or what your SLA says) to the rule",
        )
    if not missing:
        yield Finding("POL004", OK, "every escalate rule has its own timeout")


def check_trust_thresholds(ctx: Context) -> Iterable[Finding]:
    if ctx.config.min_trust_score <= 0:
        yield Finding(
            "IDN003",
            RED,
            "IDENTITY_MIN_TRUST_SCORE is 0: the trust gate never closes",
            "set IDENTITY_MIN_TRUST_SCORE=50 (the checklist's minimum)",
        )
    if ctx.policy is None:
        return
    for agent in ctx.policy.agents:
        settings = ctx.policy.trust_settings(agent)
        if ctx.policy.trust_configured(agent) and settings.min_score <= 0:
            yield Finding(
                "IDN003",
                RED,
                f"agent {agent!r}: trust min_score is 0 (the trust gate never closes)",
                "set trust: {min_score: 50, recovery_score: 80}",
            )
    unset = [a for a in ctx.policy.agents if not ctx.policy.trust_configured(a)]
    if unset:
        yield Finding(
            "IDN003",
            AMBER,
            f"no trust thresholds in the policy of {', '.join(map(repr, unset))} "
            f"(the governor's minimum {ctx.config.min_trust_score} applies)",
            "add trust: {min_score: 50, recovery_score: 80} to each policy",
        )
    elif ctx.config.min_trust_score > 0:
        yield Finding("IDN003", OK, "trust thresholds are set")


def check_retention_floor(ctx: Context) -> Iterable[Finding]:
    floor = ctx.retention_floor_days
    short: list[str] = []
    if ctx.config.audit_retention_days < floor:
        short.append(f"AUDIT_RETENTION_DAYS={ctx.config.audit_retention_days}")
    if ctx.policy is not None:
        for doc in ctx.policy.documents:
            if doc.audit_retention_days is not None and doc.audit_retention_days < floor:
                short.append(f"{doc.file}:{doc.line} ({doc.agent}: {doc.audit_retention_days} days)")
    for item in short:
        yield Finding(
            "AUD001",
            RED,
            f"audit retention below the compliance floor of {floor} days: {item}",
            f"set audit: {{retention: {floor}}} (or lower --retention-floor if your regime allows)",
        )
    if not short:
        yield Finding("AUD001", OK, f"audit retention meets the {floor}-day floor")


# ----------------------------------------------------------------------------------------- identity


def check_private_keys_encrypted(ctx: Context) -> Iterable[Finding]:
    folder = ctx.config.identity_path
    if folder is None or not folder.is_dir():
        yield Finding(
            "IDN001",
            AMBER,
            "no identity folder: private keys live in memory only",
            "set IDENTITY_PATH to a folder on encrypted storage",
        )
        return
    plain, total = [], 0
    for path in sorted(folder.glob("*.key")):
        total += 1
        try:
            doc = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            yield Finding("IDN001", RED, f"{path}: not a readable key file", "restore it from backup or rotate")
            continue
        if not isinstance(doc, dict) or not doc.get("encryption"):
            plain.append(path.name)
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            yield Finding("IDN001", RED, f"{path}: mode {mode:o}, readable by others", f"chmod 600 {path}")
    if plain:
        yield Finding(
            "IDN001",
            RED,
            f"{len(plain)} of {total} private keys are not encrypted ({', '.join(plain[:5])})",
            "set CLAW_IDENTITY_PASSPHRASE and re-save the keys (claw-gov identity rotate)",
        )
    elif total:
        yield Finding("IDN001", OK, f"all {total} private keys are encrypted")


def check_key_age(ctx: Context) -> Iterable[Finding]:
    if ctx.store is None:
        return
    limit = ctx.key_rotation_days * 86400.0
    old = []
    for record in ctx.identities():
        try:
            current = [k for k in ctx.store.keys(record.agent_id) if k.key_id == record.key_id]
        except Exception:
            continue
        if current and ctx.now - current[0].created > limit:
            old.append((record.agent_id, int((ctx.now - current[0].created) // 86400)))
    for agent, days in old:
        yield Finding(
            "IDN002",
            AMBER,
            f"agent {agent!r}: signing key is {days} days old (rotation schedule: {ctx.key_rotation_days} days)",
            f"claw-gov identity rotate {agent}",
        )
    if not old and ctx.identities():
        yield Finding("IDN002", OK, f"every signing key is younger than {ctx.key_rotation_days} days")


# -------------------------------------------------------------------------------------------- audit


def check_audit_disk(ctx: Context) -> Iterable[Finding]:
    path = ctx.config.audit_path
    if path is None:
        yield Finding(
            "AUD002",
            RED,
            "no audit path: the trail is in memory and lost at exit",
            "set AUDIT_PATH to persistent storage",
        )
        return
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    free = usage.free / usage.total if usage.total else 0.0
    text = f"{free:.0%} free under {path} ({usage.free // 2**20} MiB)"
    if free < ctx.disk_red:
        yield Finding(
            "AUD002",
            RED,
            text + ": when the trail cannot be written every call is denied",
            "grow the volume, or export and archive old segments",
        )
    elif free < ctx.disk_amber:
        yield Finding("AUD002", AMBER, text, "plan more space: the checklist alerts at 80% full")
    else:
        yield Finding("AUD002", OK, text)
    if path.exists() and not os.access(path, os.W_OK):
        yield Finding("AUD002", RED, f"{path} is not writable by this user", f"fix the permissions of {path}")


def _last_run(ctx: Context, name: str) -> dict[str, Any] | None:
    state = ctx.config.resolved_state_path
    if state is None:
        return None
    try:
        data = orjson.loads((state / name).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def check_last_verify(ctx: Context) -> Iterable[Finding]:
    from claw_governance.metrics import LAST_VERIFY_FILE

    run = _last_run(ctx, LAST_VERIFY_FILE)
    if run is None:
        yield Finding(
            "AUD003",
            AMBER,
            "the audit trail was never verified here",
            "schedule `claw-gov audit verify --public-key <trusted key>` (weekly)",
        )
        return
    days = (ctx.now - float(run.get("time") or 0)) / 86400
    if not run.get("valid"):
        yield Finding(
            "AUD003",
            RED,
            f"the last verification ({days:.1f} days ago) found the chain BROKEN",
            "claw-gov audit verify names the first bad segment and seq; preserve the evidence",
        )
    elif days > VERIFY_MAX_AGE_DAYS:
        yield Finding(
            "AUD003",
            AMBER,
            f"last successful verification {days:.0f} days ago",
            "schedule `claw-gov audit verify` weekly (cron)",
        )
    else:
        yield Finding("AUD003", OK, f"last verification {days:.1f} days ago: intact ({run.get('entries')} entries)")


def check_witness(ctx: Context) -> Iterable[Finding]:
    if ctx.witness_url:
        yield Finding("AUD004", OK, f"a witness is configured ({ctx.witness_url})")
    else:
        yield Finding(
            "AUD004",
            AMBER,
            "no witness cosigns the checkpoints: a rewrite of the whole trail by "
            "someone with the governor's key goes unnoticed",
            "run `claw-gov witness serve` on another machine and set AUDIT_WITNESS_URL",
        )


LAST_EXPORT_FILE = "last-export.json"


def check_last_export(ctx: Context) -> Iterable[Finding]:
    run = _last_run(ctx, LAST_EXPORT_FILE)
    if run is None:
        yield Finding(
            "AUD005",
            AMBER,
            "no evidence export was made from this trail",
            "claw-gov audit export --from ... --to ... DIR, to immutable storage",
        )
        return
    days = (ctx.now - float(run.get("time") or 0)) / 86400
    if days > EXPORT_MAX_AGE_DAYS:
        yield Finding(
            "AUD005", AMBER, f"last evidence export {days:.0f} days ago", "export monthly to immutable (WORM) storage"
        )
    else:
        yield Finding("AUD005", OK, f"last evidence export {days:.1f} days ago ({run.get('destination')})")


# ------------------------------------------------------------------------------------ bridge, state


def _entropy_bits(token: str) -> float:
    counts = Counter(token)
    per_char = -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())
    return per_char * len(token)


def check_bridge_token(ctx: Context) -> Iterable[Finding]:
    token = ctx.bridge_token
    if not token:
        yield Finding("SRV001", OK, "no bridge token set (claw-gov serve is not configured here)")
        return
    bits = _entropy_bits(token)
    if len(token) < 16 or token.lower() in WEAK_TOKENS or bits < 64:
        yield Finding(
            "SRV001",
            RED,
            f"the bridge token is weak ({len(token)} characters, ~{bits:.0f} bits)",
            "openssl rand -hex 32 > bridge.token; claw-gov serve --token-file bridge.token",
        )
    elif len(token) < MIN_TOKEN_CHARS:
        yield Finding(
            "SRV001",
            AMBER,
            f"the bridge token has {len(token)} characters (32+ recommended)",
            "openssl rand -hex 32 > bridge.token",
        )
    else:
        yield Finding("SRV001", OK, f"the bridge token is strong ({len(token)} characters)")


def check_state_store(ctx: Context) -> Iterable[Finding]:
    if ctx.store_error is not None:
        yield Finding(
            "STA001",
            RED,
            f"the state store is unreachable: {ctx.store_error}",
            "check STATE_URL / STATE_PATH and the database",
        )
        return
    if ctx.store is None:
        yield Finding("STA001", AMBER, "no state store yet (nothing has run here)", "run the governor once")
        return
    from claw_governance.state import describe_store

    where = describe_store(ctx.store)
    started = time.perf_counter()
    try:
        ctx.store.identity_versions()
    except Exception as exc:
        yield Finding("STA001", RED, f"the state store {where['location']} fails: {exc}", "check the database")
        return
    ms = (time.perf_counter() - started) * 1000
    if where["backend"] == "memory":
        yield Finding(
            "STA001",
            AMBER,
            "the state store is in memory: escalations and trust are lost at exit",
            "set IDENTITY_PATH (SQLite) or STATE_URL (PostgreSQL)",
        )
    else:
        yield Finding("STA001", OK, f"{where['backend']} state store reachable ({where['location']}, {ms:.1f} ms)")


CHECKS: list[Callable[[Context], Iterable[Finding]]] = [
    check_policy_loaded,
    check_policy_per_agent,
    check_no_unrestricted_allow,
    check_destructive_verbs_denied,
    check_escalation_timeouts,
    check_trust_thresholds,
    check_retention_floor,
    check_private_keys_encrypted,
    check_key_age,
    check_audit_disk,
    check_last_verify,
    check_witness,
    check_last_export,
    check_bridge_token,
    check_state_store,
]


def load_context(config: GovernorConfig, **options: Any) -> Context:
    """Load the policy and open the state store (read-only use; a missing SQLite file is not created)."""
    from claw_governance.policy.store import load_policy_set
    from claw_governance.state import open_state_store

    ctx = Context(config, **options)
    if config.policy_path is not None and Path(config.policy_path).exists():
        try:
            ctx.policy = load_policy_set(config.policy_path)
        except ClawGovernanceError as exc:
            ctx.policy_error = str(exc)
    state = config.resolved_state_path
    if config.state_url is not None or (state is not None and (state / "state.db").exists()):
        try:
            ctx.store = open_state_store(config)
        except ClawGovernanceError as exc:
            ctx.store_error = str(exc)
    return ctx


def run_checks(ctx: Context) -> list[Finding]:
    """Every check's findings, in checklist order; a check that crashes is itself a red finding."""
    findings: list[Finding] = []
    for check in CHECKS:
        try:
            findings.extend(check(ctx))
        except Exception as exc:
            findings.append(
                Finding(
                    "DOC000",
                    RED,
                    f"{check.__name__} could not run: {type(exc).__name__}: {exc}",
                    "report this as a bug",
                )
            )
    return findings
