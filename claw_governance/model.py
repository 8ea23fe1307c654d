"""The values that flow through the pipeline. All frozen: a decision, once made, cannot be edited."""

from __future__ import annotations

import enum
import hashlib
import itertools
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson


class Outcome(enum.StrEnum):
    """What the governor says about a tool call. Nothing runs unless it is ALLOW."""

    ALLOW = "allow"
    DENY = "deny"
    ESCALATE = "escalate"


class Stage(enum.StrEnum):
    """Which step of the pipeline made a decision (``Decision.stage``).

    A ``str`` enum: ``decision.stage == "policy"`` holds, ``str()``/f-strings give the bare value, and JSON
    (the audit trail, the console's API) writes ``"policy"`` as before.
    """

    IDENTITY = "identity"  # unknown, revoked, or a bad signature
    TRUST = "trust"  # trust score below the minimum
    JOB = "job"  # the job token (work contract) refused the call
    POLICY = "policy"  # a rule of the policy (or a plugin's answer that names no other stage)
    DEFAULT = "default"  # no rule matched: the default deny
    RATE_LIMIT = "rate_limit"  # a rate limit or escalations_per_hour was used up
    BUDGET = "budget"  # a ``budgets:`` limit
    ESCALATION = "escalation"  # a human's answer (or an escalation that could not be opened)
    AUDIT = "audit"  # the decision could not be written to the trail
    PLUGIN = "plugin"  # a plugin decided, or failed (fail closed)
    GOVERNOR = "governor"  # an error of the governor itself (fail closed)
    CLOSED = "closed"  # the governor is closed
    MODEL = "model"  # ``Governor.check_model``: a model route
    ADAPTER = "adapter"  # an adapter refused a call the pipeline never saw (CrewAI; audit entries only)


class EscalationStatus(enum.StrEnum):
    """The life of an escalation: pending -> approved | denied | expired."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


def new_id() -> str:
    """A random 128-bit id as 32 hex characters (escalation ids: unguessable)."""
    return os.urandom(16).hex()


_CALL_PREFIX = os.urandom(8).hex()
_call_counter = itertools.count(1)


def _reseed_after_fork() -> None:
    global _CALL_PREFIX, _call_counter
    _CALL_PREFIX = os.urandom(8).hex()
    _call_counter = itertools.count(1)


os.register_at_fork(after_in_child=_reseed_after_fork)


def new_call_id() -> str:
    """A call id unique across processes: a random per-process prefix and a counter (cheaper than urandom)."""
    return f"{_CALL_PREFIX}-{next(_call_counter):x}"


def _jsonable(value: Any) -> Any:
    # Anything orjson cannot serialise natively is hashed by its repr: the hash is only ever compared
    # with itself, so a stable, total function is what matters.
    return repr(value)


# Arguments with a key that is not a string (only Python callers can make them; JSON cannot) are hashed in a
# tagged form that starts with this marker, so they can never share a hash with string-keyed arguments, and a
# key 1 never shares one with a key "1".
_TAGGED_ARGS = b"\x00claw-args/tagged\n"


def _tagged(value: Any) -> Any:
    """Every mapping as ``{"m": [[[key type, key], value], ...]}`` (sorted), so key types stay distinct."""
    if isinstance(value, Mapping):
        pairs = [[_tagged_key(k), _tagged(v)] for k, v in value.items()]
        pairs.sort(key=lambda pair: orjson.dumps(pair[0]))
        return {"m": pairs}
    if isinstance(value, list | tuple):
        return [_tagged(item) for item in value]
    return value


def _tagged_key(key: Any) -> list[Any]:
    if key is None or isinstance(key, str | bool | int | float):
        return [type(key).__name__, key]
    if isinstance(key, tuple):
        return ["tuple", [_tagged_key(k) for k in key]]
    return [type(key).__name__, repr(key)]


# Arguments that neither JSON form can express (an int beyond 64 bits, NaN or an infinity, which orjson would
# write as null like None, nesting deeper than orjson's 254 levels, a lone surrogate) are hashed in a streamed,
# typed form that starts with this marker; it has no recursion and no size limits.
_STREAMED_ARGS = b"\x00claw-args/streamed\n"


class _Token(bytes):
    """Already encoded bytes on the streaming encoder's stack (map/list ends, map keys)."""


def _scalar_bytes(value: Any) -> bytes:
    if value is None:
        return b"N"
    if value is True or value is False:
        return b"T" if value else b"F"
    if isinstance(value, int):
        return b"i" + hex(value).encode() + b";"  # hex: no 4300-digit str() limit
    if isinstance(value, float):
        return b"f" + value.hex().encode() + b";"
    if isinstance(value, str):
        raw = value.encode("utf-8", "surrogatepass")
        return b"s" + str(len(raw)).encode() + b":" + raw
    if isinstance(value, bytes | bytearray):
        return b"b" + str(len(value)).encode() + b":" + bytes(value)
    text = repr(value).encode("utf-8", "surrogatepass")
    return b"r" + type(value).__name__.encode() + b"/" + str(len(text)).encode() + b":" + text


def _streamed(args: Any) -> bytes:
    """A typed, unambiguous encoding of any value, maps in key order; iterative (any depth)."""
    out: list[bytes] = []
    stack: list[Any] = [args]
    seen = 0
    while stack:
        item = stack.pop()
        seen += 1
        if type(item) is _Token:
            out.append(item)
        elif isinstance(item, Mapping):
            pairs = sorted(
                (((_scalar_bytes(k) if not isinstance(k, tuple) else _streamed(k)), v) for k, v in item.items()),
                key=lambda pair: pair[0],
            )
            out.append(b"{")
            stack.append(_Token(b"}"))
            for key, value in reversed(pairs):
                stack.append(value)
                stack.append(_Token(b"k" + key))
        elif isinstance(item, list | tuple):
            out.append(b"[" if isinstance(item, list) else b"(")
            stack.append(_Token(b"]"))
            stack.extend(reversed(item))
        else:
            out.append(_scalar_bytes(item))
    return b"".join(out)


def _has_nonfinite(args: Any) -> bool:
    stack = [args]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                return True
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def args_hash(args: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a call's arguments: binds grants and signatures to exact arguments.

    String-keyed arguments (every tool call a model makes) hash as ``sha256(JSON with sorted keys)``, the form
    an external signer computes (docs/identity.md). Arguments with any other key use a tagged form instead, and
    arguments JSON cannot express exactly (ints beyond 64 bits, NaN, infinities, depth over 254) a streamed
    typed form. Never raises.
    """
    try:
        data = orjson.dumps(dict(args), option=orjson.OPT_SORT_KEYS, default=_jsonable)
    except orjson.JSONEncodeError:  # a key that is not a string, an int over 64 bits, too deep, a surrogate
        try:
            data = _TAGGED_ARGS + orjson.dumps(_tagged(args), default=_jsonable)
        except (orjson.JSONEncodeError, RecursionError, ValueError):
            data = _STREAMED_ARGS + _streamed(args)
    else:
        if b"null" in data and _has_nonfinite(args):  # orjson writes NaN and infinities as null, like None
            data = _STREAMED_ARGS + _streamed(args)
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Signature:
    """An agent's signature over (agent id, action, args hash, nonce, timestamp); see identity.signing."""

    value: str  # base64 of the raw signature bytes
    nonce: str
    timestamp: float
    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One request by an agent to run one action. Adapters build it from their framework's tool call."""

    agent_id: str
    action: str
    args: Mapping[str, Any] = field(default_factory=dict)
    framework: str = "python"
    call_id: str = field(default_factory=new_call_id)
    signature: Signature | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: The job token the call is made under (see claw_governance.jobs); never shown in repr or audited.
    job_token: str | None = field(default=None, repr=False)

    @property
    def args_hash(self) -> str:
        """Canonical hash of `args` (computed on demand; most calls never need it)."""
        return args_hash(self.args)


@dataclass(frozen=True, slots=True)
class RuleRef:
    """A policy rule as a decision names it: which list, which pattern, and where it was written."""

    effect: Outcome
    pattern: str
    agent: str
    source: str  # "file:line"
    condition: str | None = None
    reason: str | None = None
    timeout_seconds: float | None = None
    approvers: tuple[str, ...] = ()  # escalate rules: reviewer names or groups who may resolve (empty: any)
    max_grant_seconds: float | None = None  # escalate rules: longest "approve for N minutes" (None: not allowed)
    audit_form: Mapping[str, Any] = field(init=False, repr=False, compare=False, hash=False)
    """The rule as decisions write it to the audit trail (built once: a rule is named by every call it decides)."""

    def __post_init__(self) -> None:
        # A plain dict (picklable, deep-copyable); read-only by convention: Decision.as_dict copies it.
        object.__setattr__(
            self,
            "audit_form",
            {
                "effect": self.effect._value_,
                "pattern": self.pattern,
                "agent": self.agent,
                "source": self.source,
                "condition": self.condition,
            },
        )

    def describe(self) -> str:
        """`deny rule "delete:*" (policies/cs.yaml:9)`, with the condition when there is one."""
        kind = {Outcome.ALLOW: "allow", Outcome.DENY: "deny", Outcome.ESCALATE: "escalate"}[self.effect]
        cond = f" when {self.condition}" if self.condition else ""
        return f'{kind} rule "{self.pattern}"{cond} ({self.source})'


@dataclass(frozen=True, slots=True)
class Decision:
    """The governor's answer for one ToolCall."""

    outcome: Outcome
    reason: str
    call: ToolCall
    rule: RuleRef | None = None
    policy_hash: str = ""
    escalation_id: str | None = None
    decided_at: float = field(default_factory=time.time)
    stage: Stage = Stage.POLICY  # which step decided; a plain string naming a Stage is accepted and converted

    def __post_init__(self) -> None:
        # Plugins and older callers pass ``stage="plugin"``: keep it a Stage, so every decision's stage is
        # one of the known steps (an unknown name raises ValueError: a plugin error, which denies).
        if self.stage.__class__ is not Stage:
            object.__setattr__(self, "stage", Stage(self.stage))

    @property
    def allowed(self) -> bool:
        """True only for ALLOW."""
        return self.outcome is Outcome.ALLOW

    def as_dict(self) -> dict[str, Any]:
        """The decision as it is written to the audit trail."""
        return {
            "outcome": self.outcome._value_,  # (``.value`` is a descriptor call on every access)
            "allowed": self.outcome is Outcome.ALLOW,
            "reason": self.reason,
            "rule": None if self.rule is None else dict(self.rule.audit_form),
            "stage": self.stage._value_,
            "escalation_id": self.escalation_id,
        }


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """What happened when the tool ran (given to `after_call`)."""

    success: bool
    output: Any = None
    error: str | None = None
    duration_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """The result of `AgentHandle.execute`: the decision and, if the tool ran, its outcome."""

    success: bool
    decision: Decision
    output: Any = None
    error: str | None = None

    @property
    def requires_escalation(self) -> bool:
        """True when a human must approve before this call may run."""
        return self.decision.outcome is Outcome.ESCALATE

    @property
    def escalation_id(self) -> str | None:
        """The id to approve or deny, when `requires_escalation`."""
        return self.decision.escalation_id


@dataclass(frozen=True, slots=True)
class Escalation:
    """A call held for a human. Stored in the state store; resolved through the CLI or the API."""

    id: str
    agent_id: str
    action: str
    args_hash: str
    context: Mapping[str, Any]  # redacted
    rule: str | None
    reason: str
    status: EscalationStatus
    created: float
    expires: float
    resolver: str | None = None
    notes: str | None = None
    resolved_at: float | None = None
    # Added with reviewer principals (issue 16); every field has a default so older rows and callers still work.
    approvers: tuple[str, ...] = ()  # the rule's ``approvers`` when it was opened (empty: any reviewer)
    max_grant: float | None = None  # the rule's ``max_grant`` in seconds (None: no "approve for")
    call_id: str | None = None  # the call that opened it (adapters match approvals to it)
    credential_id: str | None = None  # which credential of the resolver was used (audited)
    edited_args: Mapping[str, Any] | None = None  # a reviewer's edited arguments (in the clear: the agent runs them)
    edited_args_hash: str | None = None  # what the grant is bound to after an edit
    message: str | None = None  # "respond": a denial's message for the model
    grant_until: float | None = None  # "approve for": when the standing grant ends


@dataclass(frozen=True, slots=True)
class IdentityVerdict:
    """The identity step's answer: may this agent act at all (before policy is consulted)?"""

    ok: bool
    reason: str = ""
    trust_penalty: bool = False  # a bad signature costs trust


class AuditEvent(NamedTuple):
    """One entry for the audit trail, before the trail adds seq, timestamp and the hash chain.

    A NamedTuple: immutable and as cheap to build as a tuple (two are built for every governed call), so
    there is no second, faster way to hand an entry to the trail. The field order is that of
    ``AuditTrail.append_parts``.
    """

    type: str
    agent_id: str | None = None
    action: str | None = None
    context: Mapping[str, Any] | None = None
    decision: Mapping[str, Any] | None = None
    policy_hash: str | None = None
    details: Mapping[str, Any] | None = None
    sensitive_fields: frozenset[str] = frozenset()
    #: True only for the governor's own Decision.as_dict() (strings, booleans, None; no agent-supplied data
    #: beyond the action name, which is stored in the clear anyway): the trail skips its redaction walk.
    trusted_decision: bool = False
    #: Scalars produced by governance itself (call id, framework, success, duration): merged into ``details``
    #: after redaction, so only the payload (tool output, error text) is scanned for secrets.
    meta: Mapping[str, str | int | float | bool | None] | None = None
