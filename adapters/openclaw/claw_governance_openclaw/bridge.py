"""The governance bridge: an ASGI app (Starlette) that the OpenClaw plugin calls from its tool hooks.

Endpoints (JSON in, JSON out; every one but ``/health`` needs ``Authorization: Bearer <token>``):

* ``POST /v1/openclaw/before_tool_call`` ``{"event": {...}, "ctx": {...}}`` (OpenClaw's hook payloads) ->
  ``{"decision": "allow"|"deny"|"escalate", "reason", "callId", "escalationId", "result"}`` where
  ``result`` is OpenClaw's ``PluginHookBeforeToolCallResult``: ``{}`` (no block), ``{"block": true,
  "blockReason"}`` or ``{"requireApproval": {title, description, severity, timeoutMs, allowedDecisions}}``.
* ``POST /v1/openclaw/after_tool_call`` ``{"event": {...}, "ctx": {...}, "receipt": "..."}`` -> ``{"ok": true}``:
  records the outcome (trust, ``agent_action`` audit entry) of a call this bridge decided, once: the report
  must name the same agent, run and tool call id and carry the unguessable ``receipt`` the decision
  returned. Anything else (forged, repeated, unknown) is refused with 409 and audited as ``report_rejected``;
  it never changes trust.
* ``POST /v1/openclaw/approval`` ``{"escalationId", "resolution", "agentId", "runId", "toolCallId",
  "approvalId"?, "operator"?}``: OpenClaw's approval outcome (``allow-once``/``allow-always``/``deny``/
  ``timeout``/``cancelled``) resolves the escalation THIS bridge opened for that run and tool call id, and
  only that one. Besides the bridge token it needs the approval credential, ``X-Claw-Approval-Token: <reviewer
  token>`` (a reviewer registered with ``claw-gov reviewer add``, subject to the rule's ``approvers``): the
  agent-facing bridge token alone resolves nothing. OpenClaw's approval id and operator identity, when
  given, are recorded in the resolution's notes. An approval is consumed at once by a fresh, re-signed
  decision, so the grant is used exactly once and a second run needs a new approval.
* ``POST /v1/openclaw/jobs/bind`` ``{"jobToken", "sessionKey"? , "runId"?}``: the operator binds a job token
  (``claw-gov job start``) to one OpenClaw session key (``openclaw agent --session-key agent:<id>:<key>``) or
  run id (the gateway's ``agent`` RPC ``idempotencyKey``). Needs, besides the bridge token, the operator
  credential ``X-Claw-Operator-Token: <reviewer token>`` (``claw-gov reviewer add``). Every call of that
  session or run is then checked under the token, whatever the plugin sends.
* ``POST /v1/openclaw/before_agent_run`` ``{"event", "ctx", "job"?}``: OpenClaw's run gate (fail closed in
  OpenClaw): ``gov.check_model`` for the run's model route (``ctx.modelProviderId``/``ctx.modelId``) under
  the run's job token -> ``{"outcome": "pass"}`` or ``{"outcome": "block", "reason", "message"}``.
* ``POST /v1/openclaw/model_call`` ``{"kind": "call"|"attempt", "event", "ctx", "job"?, "request"?,
  "response"?}``: a ``model_call`` receipt (``gov.record_model_call``) from OpenClaw's observe-only
  ``model_call_ended`` (one per provider request) or ``llm_output`` (one per attempt, with the hashes of the
  attempt's request and response and its usage). A route outside the contract's ``models`` is recorded as
  a violation. The prompt and completion are hashed and dropped, never stored.
* ``GET /health``: ``gov.health_check()`` (only ``{"status"}`` without a valid token).
* ``GET /metrics``: ``gov.metrics()``, the Prometheus text format (needs the bearer token: scrape it with
  ``authorization: {credentials: <token>}``).

With ``require_signature``, every request must also carry a per-agent HMAC-SHA256 signature:
``X-Claw-Agent``, ``X-Claw-Timestamp`` (ms), ``X-Claw-Nonce`` and ``X-Claw-Signature`` = hex HMAC over
``"<timestamp>\\n<nonce>\\n<path>\\n<sha256 hex of the body>"`` with the agent's secret; the agent must be
the call's ``ctx.agentId``, timestamps older than 5 minutes and reused nonces are refused.

The agent id is OpenClaw's ``ctx.agentId``; the action is ``tool:<tool name>`` (lowercased, aliases
resolved as OpenClaw does).

Job tokens: a hook payload may carry ``"job": {"token", "jobId"?}`` (the plugin's ``jobToken`` /
``jobTokenFile`` / ``$CLAW_JOB_TOKEN`` and ``jobId``); a binding made with ``/v1/openclaw/jobs/bind`` for the
call's run or session takes precedence, and a payload token that differs from the bound one is denied. Each
call is then decided exactly as ``gov.agent(agent_id, job_token=token, job_id=job_id)`` decides it
(signature, expiry, agent, job, revocation, supersession, scope, pinned policy). The token itself is never
logged or audited, only its claims (job id, token id).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from claw_governance.errors import ClawGovernanceError
from claw_governance.model import AuditEvent, CallOutcome, Decision, Outcome, ToolCall
from claw_governance_openclaw.limits import BodyError, parse_json, read_body
from claw_governance_openclaw.toolpolicy import normalize_tool_name
from claw_governance_openclaw.translate import tool_action

log = logging.getLogger("claw_governance_openclaw.bridge")

FRAMEWORK = "openclaw"
TITLE_MAX = 80  # OpenClaw's PLUGIN_APPROVAL_TITLE_MAX_LENGTH
DESCRIPTION_MAX = 512  # OpenClaw's PLUGIN_APPROVAL_DESCRIPTION_MAX_LENGTH
OPENCLAW_MAX_APPROVAL_MS = 600_000  # OpenClaw clamps plugin approval waits to 10 minutes
APPROVED = ("allow-once", "allow-always")
APPROVAL_TOKEN_HEADER = "x-claw-approval-token"
OPERATOR_TOKEN_HEADER = "x-claw-operator-token"
TOKEN_MAX = 8192  # a job token is a few hundred bytes; anything longer is refused unread
RESOLUTIONS = ("allow-once", "allow-always", "deny", "timeout", "cancelled")


@dataclass(frozen=True, slots=True)
class BridgeSettings:
    """How the bridge authenticates and answers."""

    token: str
    agent_keys: Mapping[str, str] = field(default_factory=dict)
    require_signature: bool = False
    signature_max_age_seconds: float = 300.0
    approval_timeout_max_seconds: float = 600.0
    max_body_bytes: int = 2 * 1024 * 1024
    body_timeout_seconds: float = 10.0  # the whole body must arrive within this (else 408)
    max_json_depth: int = 64  # deeper JSON is a 400
    pending_limit: int = 10_000
    pending_ttl_seconds: float = 3600.0


def load_agent_keys(path: str | Path) -> dict[str, str]:
    """Read ``{agent id: secret}`` (JSON). Raises ValueError when the file is not such an object."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(v) >= 16 for k, v in data.items()
    ):
        raise ValueError("agent keys must be a JSON object {agent id: secret of at least 16 characters}")
    return {k.strip().lower(): v for k, v in data.items()}


def sign_request(
    secret: str, path: str, body: bytes, *, timestamp_ms: int | None = None, nonce: str | None = None
) -> dict[str, str]:
    """The signature headers (without ``X-Claw-Agent``) for a request body; the plugin computes the same."""
    ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    nonce = nonce or hashlib.sha256(f"{ts}{time.perf_counter_ns()}".encode()).hexdigest()[:32]
    payload = f"{ts}\n{nonce}\n{path}\n{hashlib.sha256(body).hexdigest()}".encode()
    return {
        "X-Claw-Timestamp": ts,
        "X-Claw-Nonce": nonce,
        "X-Claw-Signature": hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest(),
    }


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


@dataclass(slots=True)
class _Pending:
    call: ToolCall
    decision: Decision
    created: float
    receipt: str = ""  # returned with the decision; an after_tool_call report must quote it


class _PendingCalls:
    """Decisions waiting for their after_tool_call (or approval), bounded in size and age."""

    def __init__(self, limit: int, ttl: float) -> None:
        self._items: OrderedDict[str, _Pending] = OrderedDict()
        self._limit = limit
        self._ttl = ttl
        self._lock = threading.Lock()

    def put(self, key: str, item: _Pending) -> None:
        with self._lock:
            self._items[key] = item
            self._items.move_to_end(key)
            cutoff = time.monotonic() - self._ttl
            while self._items and (len(self._items) > self._limit or next(iter(self._items.values())).created < cutoff):
                self._items.popitem(last=False)

    def pop(self, key: str) -> _Pending | None:
        with self._lock:
            return self._items.pop(key, None)

    def get(self, key: str) -> _Pending | None:
        with self._lock:
            return self._items.get(key)


@dataclass(frozen=True, slots=True)
class _Binding:
    token: str
    job_id: str
    agent_id: str
    expires_at: float
    bound_by: str


class _JobBindings:
    """Job tokens the operator bound to an OpenClaw run id or session key, in this bridge process.

    An expired binding is kept (its calls are then denied as expired, never silently run without the job);
    only more than ``limit`` bindings evict the oldest."""

    def __init__(self, limit: int) -> None:
        self._items: OrderedDict[tuple[str, str], _Binding] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def put(self, kind: str, key: str, binding: _Binding) -> None:
        item = (kind, _binding_key(key))
        with self._lock:
            self._items[item] = binding
            self._items.move_to_end(item)
            while len(self._items) > self._limit:
                self._items.popitem(last=False)

    def find(self, run_ids: Iterable[str | None], session_keys: Iterable[str | None]) -> list[_Binding]:
        """Every distinct binding of any of the call's run ids and session keys (``ctx`` and ``event`` may
        each name one): more than one means the caller named runs or sessions of different jobs."""
        keys = {("run", _binding_key(k)) for k in run_ids if k} | {
            ("session", _binding_key(k)) for k in session_keys if k
        }
        found: list[_Binding] = []
        with self._lock:
            for item in sorted(keys):
                binding = self._items.get(item)
                if binding is not None and binding not in found:
                    found.append(binding)
        return found


def _binding_key(key: str) -> str:
    """A run id or session key as bindings compare it: NFKC, case folded, without control, format or space
    characters, so ``agent:Coder:inv-1`` or ``agent:coder:inv-1\u200b`` finds the binding of
    ``agent:coder:inv-1`` (a variant must never escape the bound job)."""
    text = unicodedata.normalize("NFKC", key).casefold()
    return "".join(c for c in text if unicodedata.category(c)[0] not in "CZ")


@dataclass(frozen=True, slots=True)
class _JobContext:
    """The job token a call runs under (None: no token) and the job it must belong to (None: any);
    ``refusal`` says why the call must be denied before any token is checked (conflicting bindings)."""

    token: str | None
    job_id: str | None
    refusal: str | None = None


def _session_agent(session_key: str | None) -> str | None:
    """The agent id of an OpenClaw session key ``agent:<id>:<rest>`` (None for any other shape)."""
    if not session_key:
        return None
    parts = session_key.split(":")
    return parts[1].strip().lower() if len(parts) >= 3 and parts[0] == "agent" and parts[1].strip() else None


NONCE_NAMESPACE = "openclaw-bridge:"  # request nonces share the state store's nonce table with call signatures


class _Nonces:
    """Request nonces in the governor's state store, with their expiry: a replay is refused across restarts
    and across every bridge process sharing the store (the store's ``purge`` drops expired ones)."""

    def __init__(self, store: Any, ttl: float) -> None:
        self._store = store
        self._ttl = ttl

    def fresh(self, agent: str, nonce: str, timestamp_ms: int) -> bool:
        # kept until the signature's timestamp can no longer pass the age check, plus a margin
        expires = timestamp_ms / 1000 + self._ttl + 60.0
        return bool(self._store.use_nonce(NONCE_NAMESPACE + agent, nonce, max(expires, time.time() + 60.0)))


def _refusal(refused: _Refused) -> JSONResponse:
    """A refusal as JSON; for a body we would not read (too large, too slow, malformed) the connection is
    closed too, so the rest of it is never received."""
    headers = {"connection": "close"} if refused.status in (400, 408, 413) else None
    return JSONResponse({"error": refused.message}, status_code=refused.status, headers=headers)


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _call_key(agent: str, run_id: str | None, tool_call_id: str | None) -> str | None:
    if not tool_call_id:
        return None
    return f"{agent}\0{run_id or ''}\0{tool_call_id}"


def _summary(args: Mapping[str, Any], limit: int) -> str:
    try:
        text = json.dumps(args, ensure_ascii=False, default=str, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(args)
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


class Bridge:
    """The request handlers, bound to one Governor."""

    def __init__(self, governor: Any, settings: BridgeSettings) -> None:
        if len(settings.token) < 16:
            raise ValueError("the bridge token must be at least 16 characters")
        self.gov = governor
        self.settings = settings
        self.pending = _PendingCalls(settings.pending_limit, settings.pending_ttl_seconds)
        self.escalations = _PendingCalls(settings.pending_limit, settings.pending_ttl_seconds)
        self._nonces = _Nonces(governor.state, settings.signature_max_age_seconds)
        self.bindings = _JobBindings(settings.pending_limit)
        self._known_agents: set[str] = set()
        self._agents_lock = threading.Lock()

    # ----------------------------------------------------------------------------------- authentication

    def _check_token(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.settings.token.encode())

    def _check_signature(self, request: Request, body: bytes, agent_id: str | None) -> None:
        if not self.settings.require_signature:
            return
        claimed = (request.headers.get("x-claw-agent") or "").strip().lower()
        if not claimed or agent_id is None or claimed != agent_id.lower():
            raise _Refused(401, "signed request required: X-Claw-Agent must name the call's agent (ctx.agentId)")
        secret = self.settings.agent_keys.get(claimed)
        if secret is None:
            raise _Refused(401, f'no signing key for agent "{claimed}" in the bridge\'s agent keys')
        ts, nonce = request.headers.get("x-claw-timestamp", ""), request.headers.get("x-claw-nonce", "")
        signature = request.headers.get("x-claw-signature", "")
        if not ts.isdigit() or not nonce or not signature:
            raise _Refused(401, "signed request required: X-Claw-Timestamp, X-Claw-Nonce, X-Claw-Signature")
        if abs(time.time() * 1000 - int(ts)) > self.settings.signature_max_age_seconds * 1000:
            raise _Refused(401, "request signature expired (check the clocks of OpenClaw and the bridge)")
        expected = sign_request(secret, request.url.path, body, timestamp_ms=int(ts), nonce=nonce)
        if not hmac.compare_digest(expected["X-Claw-Signature"], signature.strip().lower()):
            raise _Refused(401, f'bad request signature for agent "{claimed}"')
        if len(nonce) > 128:
            raise _Refused(401, "X-Claw-Nonce is longer than 128 characters")
        try:
            fresh = self._nonces.fresh(claimed, nonce, int(ts))
        except Exception as exc:  # fail closed: without the replay check no signed request is accepted
            raise _Refused(503, f"replay check unavailable ({exc}); request refused") from None
        if not fresh:
            raise _Refused(401, "replayed request (nonce already used)")

    async def _read(self, request: Request) -> tuple[bytes, dict[str, Any]]:
        if not self._check_token(request):
            raise _Refused(401, "missing or wrong bridge token (Authorization: Bearer ...)")
        limit = self.settings.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise _Refused(413, f"request body too large (limit {limit} bytes)")
        try:
            body = await read_body(request.stream(), limit, self.settings.body_timeout_seconds)
            data = parse_json(body, self.settings.max_json_depth)
        except BodyError as exc:
            raise _Refused(exc.status, exc.message) from None
        except ClientDisconnect:
            raise _Refused(400, "the client disconnected before its request body arrived") from None
        if not isinstance(data, dict):
            raise _Refused(400, "request body must be a JSON object")
        return body, data

    def _ensure_agent(self, agent_id: str) -> None:
        if agent_id in self._known_agents:
            return
        self.gov.agent(agent_id)
        with self._agents_lock:
            self._known_agents.add(agent_id)

    # ------------------------------------------------------------------------------------------ handlers

    async def _payload_extra(self, request: Request) -> dict[str, Any]:
        """The whole (already read and authenticated) payload of this request."""
        data = getattr(request.state, "claw_payload", None)
        return data if isinstance(data, dict) else {}

    async def _hook_payload(self, request: Request) -> tuple[dict[str, Any], dict[str, Any], str | None]:
        """The authenticated ``{"event", "ctx"}`` of an OpenClaw hook call, and ``ctx.agentId``."""
        body, data = await self._read(request)
        request.state.claw_payload = data
        event, ctx = data.get("event"), data.get("ctx")
        if not isinstance(event, dict) or not isinstance(ctx, dict):
            raise _Refused(400, 'expected {"event": {...}, "ctx": {...}} (OpenClaw hook payloads)')
        agent_id = _text(ctx.get("agentId"))
        self._check_signature(request, body, agent_id)
        return event, ctx, agent_id

    async def before_tool_call(self, request: Request) -> JSONResponse:
        """Decide one OpenClaw tool call."""
        try:
            event, ctx, agent_id = await self._hook_payload(request)
            tool = _text(event.get("toolName")) or _text(ctx.get("toolName"))
            if tool is None:
                raise _Refused(400, "event.toolName is missing")
            if agent_id is None:
                return self._answer_block(
                    "deny",
                    "OpenClaw gave no agent id (ctx.agentId); claw-governance "
                    "cannot tell who is calling, so the call is blocked",
                    tool,
                )
            params = event.get("params")
            args = params if isinstance(params, dict) else {}
            job_payload = (await self._payload_extra(request)).get("job")
            answer = await run_in_threadpool(self._decide, agent_id, tool, args, event, ctx, job_payload)
            return JSONResponse(answer)
        except _Refused as refused:
            return _refusal(refused)

    def _answer_block(self, decision: str, reason: str, tool: str, **extra: Any) -> JSONResponse:
        return JSONResponse(
            {
                "decision": decision,
                "reason": reason,
                **extra,
                "result": {"block": True, "blockReason": f"claw-governance blocked {tool}: {reason}"},
            }
        )

    def _decide(
        self,
        agent_id: str,
        tool: str,
        args: dict[str, Any],
        event: Mapping[str, Any],
        ctx: Mapping[str, Any],
        job_payload: Any = None,
    ) -> dict[str, Any]:
        name = normalize_tool_name(tool) or tool
        run_id = _text(event.get("runId")) or _text(ctx.get("runId"))
        tool_call_id = _text(event.get("toolCallId")) or _text(ctx.get("toolCallId"))
        metadata = {
            k: v
            for k, v in {
                "openclaw_tool": tool,
                "run_id": run_id,
                "tool_call_id": tool_call_id,
                "session_key": _text(ctx.get("sessionKey")),
                "session_id": _text(ctx.get("sessionId")),
                "channel_id": _text(ctx.get("channelId")),
            }.items()
            if v is not None
        }
        try:
            self._ensure_agent(agent_id)
        except ClawGovernanceError as exc:
            reason = f'agent "{agent_id}" has no usable identity: {exc}'
            return {
                "decision": "deny",
                "reason": reason,
                "result": {"block": True, "blockReason": f"claw-governance blocked {name}: {reason}"},
            }
        job = self._job_context(job_payload, event, ctx)
        if job.refusal is not None:
            return {
                "decision": "deny",
                "reason": job.refusal,
                "result": {"block": True, "blockReason": f"claw-governance blocked {name}: {job.refusal}"},
            }
        if job.job_id is not None:
            metadata["job_id"] = job.job_id  # as gov.agent(..., job_id=): a token of another job is refused
        # The same call gov.agent(agent_id, job_token=..., job_id=...).check() builds: the core checks the token.
        call = self.gov.make_call(
            agent_id, tool_action(name), args, framework=FRAMEWORK, metadata=metadata, job_token=job.token
        )
        decision: Decision = self.gov.before_call(call)
        key = _call_key(agent_id, run_id, tool_call_id)
        base = {
            "decision": decision.outcome.value,
            "reason": decision.reason,
            "callId": call.call_id,
            "escalationId": decision.escalation_id,
            "policyHash": decision.policy_hash,
        }
        # The receipt: unguessable, returned only to the caller of this decision; OpenClaw's after_tool_call
        # report of this call must quote it (a token holder cannot forge another agent's outcome).
        receipt = secrets.token_urlsafe(24)
        if key is not None:
            base["receipt"] = receipt
            if decision.outcome is not Outcome.ESCALATE:
                self.pending.put(key, _Pending(call, decision, time.monotonic(), receipt))
        if decision.outcome is Outcome.ALLOW:
            return {**base, "result": {}}
        if decision.outcome is Outcome.ESCALATE and decision.escalation_id:
            self.escalations.put(decision.escalation_id, _Pending(call, decision, time.monotonic(), receipt))
            return {**base, "result": {"requireApproval": self._approval(agent_id, name, args, decision)}}
        return {
            **base,
            "result": {
                "block": True,
                "blockReason": f"claw-governance denied {name} for agent {agent_id}: {decision.reason}",
            },
        }

    # ------------------------------------------------------------------------------------------ jobs

    @staticmethod
    def _presented(job_payload: Any) -> tuple[str | None, str | None]:
        """``(token, job id)`` from a payload's ``"job"`` object; a wrong shape is a 400 (the token is not
        quoted in the message: it is a credential)."""
        if job_payload is None:
            return None, None
        if not isinstance(job_payload, dict):
            raise _Refused(400, '"job" must be an object {"token": "...", "jobId": "..."}')
        token, job_id = job_payload.get("token"), job_payload.get("jobId")
        if token is not None and (not isinstance(token, str) or len(token) > TOKEN_MAX):
            raise _Refused(400, f'"job.token" must be a string of at most {TOKEN_MAX} characters')
        if job_id is not None and not isinstance(job_id, str):
            raise _Refused(400, '"job.jobId" must be a string')
        return _text(token), _text(job_id)

    def _job_context(self, job_payload: Any, event: Mapping[str, Any], ctx: Mapping[str, Any]) -> _JobContext:
        """The token and job a call runs under: the operator's binding of its run or session wins over what
        the plugin presents. A presented token that differs from the bound one is still checked, bound to the
        binding's job, so a token of another job is denied (``minted for job J, not K``) and audited. Run ids
        and session keys are looked up from both ``event`` and ``ctx``; bindings of different jobs among them
        deny the call (a run of a wider job cannot be named to escape a session's narrower one)."""
        token, job_id = self._presented(job_payload)
        found = self.bindings.find(
            (_text(event.get("runId")), _text(ctx.get("runId"))),
            (_text(ctx.get("sessionKey")), _text(event.get("sessionKey"))),
        )
        if not found:
            return _JobContext(token, job_id)
        if len(found) > 1:
            jobs = ", ".join(sorted({b.job_id for b in found}))
            return _JobContext(None, None, f"the call names runs or sessions bound to different jobs ({jobs})")
        (bound,) = found
        if token is None or hmac.compare_digest(token.encode(), bound.token.encode()):
            return _JobContext(bound.token, bound.job_id)
        return _JobContext(token, bound.job_id)

    def _hook_job(self, data: Mapping[str, Any], event: Mapping[str, Any], ctx: Mapping[str, Any]) -> _JobContext:
        return self._job_context(data.get("job"), event, ctx)

    async def bind_job(self, request: Request) -> JSONResponse:
        """Bind a job token to an OpenClaw session key or run id (the operator's call, not the agent's)."""
        try:
            _, data = await self._read(request)
            answer = await run_in_threadpool(self._bind, data, request.headers.get(OPERATOR_TOKEN_HEADER))
            return JSONResponse(answer)
        except _Refused as refused:
            return _refusal(refused)

    def _bind(self, data: Mapping[str, Any], operator_token: str | None) -> dict[str, Any]:
        operator = self.gov.reviewers.authenticate(operator_token)
        if operator is None:
            raise _Refused(
                401,
                "binding a job needs the operator credential (X-Claw-Operator-Token: a reviewer token from "
                "`claw-gov reviewer add`); the bridge token alone binds nothing",
            )
        token, _ = self._presented({"token": data.get("jobToken")})
        session_key, run_id = _text(data.get("sessionKey")), _text(data.get("runId"))
        if token is None or (session_key is None and run_id is None):
            raise _Refused(400, 'expected {"jobToken": "...", "sessionKey": "agent:<id>:<key>"} and/or "runId"')
        claims = self.gov.jobs.claims_of(token)
        if claims is None:
            raise _Refused(400, "jobToken is not a job token signed by this governor")
        # The operator must be a reviewer who may act for this agent (role, agent scope, not the agent itself).
        refused_operator = operator.agent_refusal(claims.agent_id)
        if refused_operator is not None:
            raise _Refused(403, f"cannot bind job {claims.job_id}: {refused_operator}")
        if session_key is not None and _session_agent(session_key) != claims.agent_id.strip().lower():
            raise _Refused(
                400,
                f'session key "{session_key}" is not a session of agent "{claims.agent_id}" '
                f"(expected agent:{claims.agent_id}:<key>)",
            )
        # The same checks a call gets (expiry, revocation, supersession, pinned policy), scope aside.
        probe = ToolCall(claims.agent_id, "job:bind", {}, FRAMEWORK, job_token=token)
        refused = self.gov.jobs.check(probe, self.gov.policy, check_scope=False)
        if refused is not None:
            raise _Refused(409, f"cannot bind job {claims.job_id}: {refused}")
        binding = _Binding(token, claims.job_id, claims.agent_id, float(claims.expires_at), operator.name)
        for kind, key in (("session", session_key), ("run", run_id)):
            if key is not None:
                self.bindings.put(kind, key, binding)
        # Claims only: the token itself is never written anywhere.
        self.gov.record(
            AuditEvent(
                "job",
                claims.agent_id,
                None,
                details={"by": operator.name, "credential": operator.credential_id},
                meta={
                    "event": "bound",
                    "job_id": claims.job_id,
                    "job_token_id": claims.token_id,
                    "framework": FRAMEWORK,
                    "session_key": session_key,
                    "run_id": run_id,
                    "expires_at": claims.expires_at,
                },
            )
        )
        return {
            "ok": True,
            "jobId": claims.job_id,
            "agentId": claims.agent_id,
            "tokenId": claims.token_id,
            "sessionKey": session_key,
            "runId": run_id,
            "expiresAt": claims.expires_at,
        }

    # ------------------------------------------------------------------------------------- model calls

    async def before_agent_run(self, request: Request) -> JSONResponse:
        """OpenClaw's run gate: may this agent run on this model route under its job token?"""
        try:
            event, ctx, agent_id = await self._hook_payload(request)
            data = await self._payload_extra(request)
            answer = await run_in_threadpool(self._gate_run, agent_id, event, ctx, data)
            return JSONResponse(answer)
        except _Refused as refused:
            return _refusal(refused)

    def _gate_run(
        self, agent_id: str | None, event: Mapping[str, Any], ctx: Mapping[str, Any], data: Mapping[str, Any]
    ) -> dict[str, Any]:
        def block(reason: str) -> dict[str, Any]:
            return {"outcome": "block", "reason": reason, "message": f"Blocked by claw-governance: {reason}"}

        if agent_id is None:
            return block("OpenClaw gave no agent id (ctx.agentId); the run is blocked")
        model, provider = _text(ctx.get("modelId")), _text(ctx.get("modelProviderId"))
        if model is None:
            return block(f"OpenClaw gave no model for the run of agent {agent_id} (ctx.modelId); the run is blocked")
        job = self._hook_job(data, event, ctx)
        if job.refusal is not None:
            return block(job.refusal)
        try:
            self._ensure_agent(agent_id)
        except ClawGovernanceError as exc:
            return block(f'agent "{agent_id}" has no usable identity: {exc}')
        decision = self.gov.check_model(agent_id, model, provider, job_token=job.token)
        if not decision.allowed:
            return block(decision.reason)
        if job.token is not None and job.job_id is not None:
            claims = self.gov.jobs.claims_of(job.token)
            if claims is not None and claims.job_id != job.job_id:
                return block(f"Job token was minted for job {claims.job_id}, not {job.job_id}")
        return {"outcome": "pass", "reason": decision.reason}

    async def model_call(self, request: Request) -> JSONResponse:
        """A model-call receipt from OpenClaw's observe-only model hooks."""
        try:
            event, ctx, agent_id = await self._hook_payload(request)
            data = await self._payload_extra(request)
            agent_id = agent_id or _session_agent(_text(ctx.get("sessionKey")) or _text(event.get("sessionKey")))
            if agent_id is None:
                raise _Refused(400, "no agent for the model call (ctx.agentId or an agent:<id>:... session key)")
            kind = data.get("kind")
            if kind not in ("call", "attempt"):
                raise _Refused(400, 'expected "kind": "call" (model_call_ended) or "attempt" (llm_output)')
            await run_in_threadpool(self._receipt, agent_id, str(kind), event, ctx, data)
            return JSONResponse({"ok": True})
        except _Refused as refused:
            return _refusal(refused)

    def _receipt(
        self, agent_id: str, kind: str, event: Mapping[str, Any], ctx: Mapping[str, Any], data: Mapping[str, Any]
    ) -> None:
        from claw_governance.jobs.receipts import ModelCall

        model = _text(event.get("model")) or _text(ctx.get("modelId"))
        if model is None:
            raise _Refused(400, "event.model is missing")
        provider = _text(event.get("provider")) or _text(ctx.get("modelProviderId"))
        run_id = _text(event.get("runId")) or _text(ctx.get("runId"))
        job = self._hook_job(data, event, ctx)

        def number(value: Any) -> float | None:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            return float(value) if ok else None

        if kind == "call":
            # model_call_ended: OpenClaw exposes no prompt or completion here, only the call's identity, sizes
            # and outcome; the request hash binds the receipt to OpenClaw's call id and upstream request id.
            request: Any = {
                k: event.get(k)
                for k in ("runId", "callId", "provider", "model", "api", "transport", "upstreamRequestIdHash")
                if isinstance(event.get(k), str)
            }
            response: Any = {
                k: event.get(k) for k in ("outcome", "errorCategory", "failureKind") if isinstance(event.get(k), str)
            }
            raw_usage = {
                "request_bytes": event.get("requestPayloadBytes"),
                "response_bytes": event.get("responseStreamBytes"),
                "time_to_first_byte_ms": event.get("timeToFirstByteMs"),
            }
        else:
            # llm_output (with the run's llm_input): the attempt's request and response, hashed here, then dropped
            request, response = data.get("request"), data.get("response")
            usage_in = event.get("usage")
            raw_usage = dict(usage_in) if isinstance(usage_in, dict) else {}
        usage = {str(k): n for k, v in raw_usage.items() if (n := number(v)) is not None}
        duration = number(event.get("durationMs")) if kind == "call" else number(data.get("durationMs"))
        self.gov.record_model_call(
            ModelCall(
                agent_id,
                model,
                provider,
                request=request,
                response=response,
                usage=usage,
                duration_ms=duration,
                framework=FRAMEWORK,
                run_id=run_id,
            ),
            job_token=job.token,
        )

    def _approval(self, agent_id: str, tool: str, args: Mapping[str, Any], decision: Decision) -> dict[str, Any]:
        rule = decision.rule
        seconds = rule.timeout_seconds if rule is not None and rule.timeout_seconds else None
        limit = min(self.settings.approval_timeout_max_seconds, OPENCLAW_MAX_APPROVAL_MS / 1000)
        timeout_ms = int(min(seconds, limit) * 1000) if seconds else int(limit * 1000)
        title = f"Approve {tool} for agent {agent_id}?"
        head = f"{decision.reason} Escalation {decision.escalation_id}. Arguments: "
        description = head + _summary(args, max(0, DESCRIPTION_MAX - len(head)))
        return {
            "title": title[:TITLE_MAX],
            "description": description[:DESCRIPTION_MAX],
            "severity": "warning",
            "timeoutMs": max(1, timeout_ms),
            "timeoutReason": f"claw-governance: no approval for {tool} in time (escalation "
            f"{decision.escalation_id}); denied",
            "allowedDecisions": ["allow-once", "deny"],
        }

    async def after_tool_call(self, request: Request) -> JSONResponse:
        """Record what happened when an allowed OpenClaw tool ran."""
        try:
            event, ctx, agent_id = await self._hook_payload(request)
            if agent_id is None:
                raise _Refused(400, "ctx.agentId is missing")
            receipt = (await self._payload_extra(request)).get("receipt")
            recorded = await run_in_threadpool(self._record, agent_id, event, ctx, receipt)
            return JSONResponse({"ok": True, "recorded": recorded})
        except _Refused as refused:
            return _refusal(refused)

    def _reject_report(
        self,
        agent_id: str,
        event: Mapping[str, Any],
        ctx: Mapping[str, Any],
        run_id: str | None,
        tool_call_id: str | None,
        why: str,
    ) -> None:
        """Audit a refused after_tool_call report (``report_rejected``: no trust change) and refuse it."""
        tool = _text(event.get("toolName")) or _text(ctx.get("toolName")) or "?"
        error = event.get("error")
        with contextlib.suppress(Exception):  # the refusal stands even if the trail cannot be written
            self.gov.record(
                AuditEvent(
                    "report_rejected",
                    agent_id,
                    tool_action(normalize_tool_name(tool) or tool),
                    context=None,
                    details={
                        "framework": FRAMEWORK,
                        "report": "after_tool_call",
                        "reason": why,
                        "run_id": run_id,
                        "tool_call_id": tool_call_id,
                        "claimed_error": error if isinstance(error, str) else None,
                    },
                )
            )
        raise _Refused(409, f"after_tool_call report refused: {why}")

    def _record(self, agent_id: str, event: Mapping[str, Any], ctx: Mapping[str, Any], receipt: Any = None) -> str:
        run_id = _text(event.get("runId")) or _text(ctx.get("runId"))
        tool_call_id = _text(event.get("toolCallId")) or _text(ctx.get("toolCallId"))
        key = _call_key(agent_id, run_id, tool_call_id)
        if key is None:
            self._reject_report(agent_id, event, ctx, run_id, tool_call_id, "no tool call id")
        held = self.pending.get(key) if key is not None else None
        if held is None:
            self._reject_report(
                agent_id,
                event,
                ctx,
                run_id,
                tool_call_id,
                "no decision of this bridge for this agent, run and tool call (unknown, forged, or already reported)",
            )
        assert held is not None and key is not None
        if not isinstance(receipt, str) or not hmac.compare_digest(receipt.encode(), held.receipt.encode()):
            self._reject_report(
                agent_id, event, ctx, run_id, tool_call_id, "the receipt does not match the decision's (forged report)"
            )
        pending = self.pending.pop(key)  # once: a repeated report finds nothing
        if pending is not held:
            self._reject_report(agent_id, event, ctx, run_id, tool_call_id, "already reported")
        error = event.get("error")
        error_text = error if isinstance(error, str) and error else None
        duration = event.get("durationMs")
        duration_ms = float(duration) if isinstance(duration, int | float) and not isinstance(duration, bool) else 0.0
        if pending is not None and pending.decision.allowed:
            self.gov.after_call(
                pending.call,
                pending.decision,
                CallOutcome(error_text is None, event.get("result"), error_text, duration_ms),
            )
            return "agent_action"
        if pending is not None:
            if error_text is not None:
                return "blocked"  # OpenClaw reports the blocked call (as a tool error); our DENY is on record
            # A clean result for a call we refused: the block did not hold (another plugin, a patched
            # gateway ...). That is exactly what an auditor must see, so it is recorded, flagged.
            self.gov.record(
                AuditEvent(
                    "agent_action",
                    agent_id,
                    pending.call.action,
                    context=None,
                    details={
                        "framework": FRAMEWORK,
                        "call_id": pending.call.call_id,
                        "success": True,
                        "error": None,
                        "duration_ms": duration_ms,
                        "run_id": run_id,
                        "tool_call_id": tool_call_id,
                        "note": f"OpenClaw reports this call ran although governance decided "
                        f"{pending.decision.outcome.value}",
                    },
                )
            )
            return "ran-despite-block"
        return "unmatched"  # not reached: a report without a matching decision was refused above

    async def approval(self, request: Request) -> JSONResponse:
        """Resolve our escalation with OpenClaw's approval outcome."""
        try:
            body, data = await self._read(request)
            agent_id = _text(data.get("agentId"))
            self._check_signature(request, body, agent_id)
            escalation_id = _text(data.get("escalationId"))
            resolution = _text(data.get("resolution"))
            if escalation_id is None or resolution not in RESOLUTIONS:
                raise _Refused(400, f"expected escalationId and resolution (one of {', '.join(RESOLUTIONS)})")
            answer = await run_in_threadpool(
                self._resolve, escalation_id, resolution, agent_id, data, request.headers.get(APPROVAL_TOKEN_HEADER)
            )
            return JSONResponse(answer)
        except _Refused as refused:
            return _refusal(refused)

    def _resolve(
        self,
        escalation_id: str,
        resolution: str,
        agent_id: str | None,
        data: Mapping[str, Any],
        approval_token: str | None = None,
    ) -> dict[str, Any]:
        reviewer = self.gov.reviewers.authenticate(approval_token)
        if reviewer is None:
            raise _Refused(
                401,
                "approvals need the approval credential (X-Claw-Approval-Token: a reviewer token "
                "from `claw-gov reviewer add`), not the bridge token",
            )
        held = self.escalations.get(escalation_id)
        escalation = self.gov.escalations.get(escalation_id)
        if escalation is None or held is None:
            # only escalations this bridge opened (and still holds) can be resolved here
            raise _Refused(404, f"unknown escalation {escalation_id} (not opened by this bridge)")
        if agent_id is None or agent_id.lower() != str(escalation.agent_id).lower():
            raise _Refused(403, f"escalation {escalation_id} belongs to another agent")
        for field_name, meta in (("runId", "run_id"), ("toolCallId", "tool_call_id")):
            if held.call.metadata.get(meta) is not None and _text(data.get(field_name)) != held.call.metadata.get(meta):
                raise _Refused(403, f"escalation {escalation_id} was opened for another {field_name}")
        approved = resolution in APPROVED
        where = ", ".join(
            f"{k}={v}"
            for k in ("approvalId", "sessionKey", "channelId", "runId", "toolCallId")
            if (v := _text(data.get(k))) is not None
        )
        operator = data.get("operator")
        who = _text(operator) or (
            json.dumps(operator, sort_keys=True, default=str)[:200] if isinstance(operator, dict) and operator else None
        )
        notes = (
            f"OpenClaw approval outcome: {resolution}"
            + (f" by operator {who}" if who else "")
            + (f" ({where})" if where else "")
        )
        try:
            resolved = self.gov.resolve_escalation(
                escalation_id, "approved" if approved else "denied", notes=notes, resolver=reviewer
            )
        except ClawGovernanceError as exc:
            status = 403 if type(exc).__name__ == "ReviewerForbidden" else 409
            raise _Refused(status, str(exc)) from None
        self.escalations.pop(escalation_id)
        answer: dict[str, Any] = {"ok": True, "status": resolved.status.value, "resolver": resolved.resolver}
        if approved:
            # OpenClaw runs the tool right after an approval without asking the hook again: take the
            # one-shot grant now, so the ALLOW is audited and the grant cannot be replayed later. The call is
            # made (and signed, with a fresh nonce) again: the held one's nonce was used by the first decision.
            call = self.gov.make_call(
                held.call.agent_id,
                held.call.action,
                held.call.args,
                framework=FRAMEWORK,
                call_id=held.call.call_id,
                metadata=held.call.metadata,
                job_token=held.call.job_token,  # the approved call is still checked under its job token
            )
            decision = self.gov.before_call(call)
            answer["decision"] = decision.outcome.value
            key = _call_key(call.agent_id, call.metadata.get("run_id"), call.metadata.get("tool_call_id"))
            if decision.allowed and key is not None:
                self.pending.put(key, _Pending(call, decision, time.monotonic(), held.receipt))
        return answer

    async def health(self, request: Request) -> JSONResponse:
        """``gov.health_check()`` for an authenticated caller; only the status otherwise."""
        report = await run_in_threadpool(self.gov.health_check)
        status = 503 if report.get("status") == "down" else 200
        if not self._check_token(request):
            return JSONResponse({"status": report.get("status")}, status_code=status)
        return JSONResponse(json.loads(json.dumps(report, default=str)), status_code=status)

    async def metrics(self, request: Request) -> Response:
        """``gov.metrics()`` in the Prometheus text format, for an authenticated scraper."""
        if not self._check_token(request):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
        text = await run_in_threadpool(self.gov.metrics)
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


def create_app(governor: Any, settings: BridgeSettings) -> Starlette:
    """The bridge as an ASGI app (serve it with uvicorn; ``claw-gov serve`` does)."""
    bridge = Bridge(governor, settings)
    app = Starlette(
        routes=[
            Route("/health", bridge.health, methods=["GET"]),
            Route("/metrics", bridge.metrics, methods=["GET"]),
            Route("/v1/openclaw/before_tool_call", bridge.before_tool_call, methods=["POST"]),
            Route("/v1/openclaw/after_tool_call", bridge.after_tool_call, methods=["POST"]),
            Route("/v1/openclaw/approval", bridge.approval, methods=["POST"]),
            Route("/v1/openclaw/jobs/bind", bridge.bind_job, methods=["POST"]),
            Route("/v1/openclaw/before_agent_run", bridge.before_agent_run, methods=["POST"]),
            Route("/v1/openclaw/model_call", bridge.model_call, methods=["POST"]),
        ]
    )
    app.state.bridge = bridge
    return app
