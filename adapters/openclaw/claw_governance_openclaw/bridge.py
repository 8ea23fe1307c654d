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
* ``GET /health``: ``gov.health_check()`` (only ``{"status"}`` without a valid token).
* ``GET /metrics``: ``gov.metrics()``, the Prometheus text format (needs the bearer token: scrape it with
  ``authorization: {credentials: <token>}``).

With ``require_signature``, every request must also carry a per-agent HMAC-SHA256 signature:
``X-Claw-Agent``, ``X-Claw-Timestamp`` (ms), ``X-Claw-Nonce`` and ``X-Claw-Signature`` = hex HMAC over
``"<timestamp>\\n<nonce>\\n<path>\\n<sha256 hex of the body>"`` with the agent's secret; the agent must be
the call's ``ctx.agentId``, timestamps older than 5 minutes and reused nonces are refused.

The agent id is OpenClaw's ``ctx.agentId``; the action is ``tool:<tool name>`` (lowercased, aliases
resolved as OpenClaw does).
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
from collections import OrderedDict
from collections.abc import Mapping
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
            answer = await run_in_threadpool(self._decide, agent_id, tool, args, event, ctx)
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
        self, agent_id: str, tool: str, args: dict[str, Any], event: Mapping[str, Any], ctx: Mapping[str, Any]
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
        call = self.gov.make_call(agent_id, tool_action(name), args, framework=FRAMEWORK, metadata=metadata)
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
        ]
    )
    app.state.bridge = bridge
    return app
