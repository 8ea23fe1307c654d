"""The console's ASGI app: reviewer pages (Jinja2) and the JSON API under ``/api``.

Every page and API route needs a principal: a password session (cookie) or ``Authorization: Bearer <reviewer
token>``. Writes with a session need its CSRF token. Errors are JSON ``{"detail": "<one line>"}`` on the API:
401 unauthenticated, 403 not allowed for this escalation (or this action), 404 unknown, 409 already resolved or
expired, 422 invalid input (missing notes, an edit the policy denies, a grant longer than ``max_grant``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from claw_governance.console.auth import (
    CSRF_HEADER,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    Sessions,
    bearer_principal,
    csrf_ok,
)
from claw_governance.console.openapi import openapi_document
from claw_governance.console.views import agents_view, candidate_policy, escalation_view, iso, policy_view
from claw_governance.errors import (
    AuthenticationError,
    ClawGovernanceError,
    EscalationClosed,
    EscalationInputError,
    EscalationNotFound,
    ReviewerForbidden,
)
from claw_governance.model import EscalationStatus

TEMPLATES = Path(__file__).parent / "templates"
MAX_BODY = 256 * 1024
_STATUSES = {s.value for s in EscalationStatus} | {"all"}
_SHADOW = ("any", "would_deny", "would_escalate", "would_allow")


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """How the console runs. ``public_url`` is what notifications link to; ``secure_cookies`` sets ``Secure``
    (on by default when ``public_url`` is https)."""

    public_url: str = "http://127.0.0.1:8765"
    secure_cookies: bool | None = None
    poll_seconds: float = 2.0
    session_seconds: float = 8 * 3600


class _HTTPError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _status_of(exc: Exception) -> int:
    if isinstance(exc, AuthenticationError):
        return 401
    if isinstance(exc, ReviewerForbidden):
        return 403
    if isinstance(exc, EscalationNotFound):
        return 404
    if isinstance(exc, EscalationClosed):
        return 409
    if isinstance(exc, EscalationInputError):
        return 422
    return 422 if isinstance(exc, ClawGovernanceError) else 500


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:500]


class Console:
    """Route handlers over one Governor."""

    def __init__(self, governor: Any, settings: ConsoleSettings) -> None:
        self.gov = governor
        self.settings = settings
        self.sessions = Sessions(governor.reviewers, settings.session_seconds)
        self.secure = (
            settings.secure_cookies
            if settings.secure_cookies is not None
            else settings.public_url.startswith("https://")
        )
        self.env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
        self.env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False, default=str)

    # ------------------------------------------------------------------------------------------ plumbing

    def principal(self, request: Request) -> Principal | None:
        """The request's principal (bearer first: a bad bearer token is a 401, never a fallback)."""
        bearer = bearer_principal(self.gov.reviewers, request.headers.get("authorization"))
        if bearer is not None:
            return bearer
        return self.sessions.principal(request.cookies.get(SESSION_COOKIE))

    def require(self, request: Request) -> Principal:
        found = self.principal(request)
        if found is None:
            raise AuthenticationError("log in or send 'Authorization: Bearer <reviewer token>'")
        return found

    @staticmethod
    def check_csrf(principal: Principal, given: str | None) -> None:
        if principal.via == "session" and not csrf_ok(principal.csrf, given):
            raise ReviewerForbidden("CSRF token missing or wrong: reload the page and try again")

    async def json_body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise EscalationInputError(f"request body over {MAX_BODY} bytes")
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise EscalationInputError(f"request body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise EscalationInputError("request body must be a JSON object")
        return body

    def render(
        self, name: str, request: Request, principal: Principal | None, status: int = 200, **context: Any
    ) -> HTMLResponse:
        html = self.env.get_template(name).render(
            request=request,
            me=principal.reviewer if principal else None,
            csrf=principal.csrf if principal else None,
            poll_ms=int(self.settings.poll_seconds * 1000),
            policy_hash=self.gov.policy.hash[:12],
            **context,
        )
        return HTMLResponse(
            html,
            status_code=status,
            headers={
                "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                "script-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                "frame-ancestors 'none'; form-action 'self'",
                "X-Frame-Options": "DENY",
                "Referrer-Policy": "same-origin",
                "Cache-Control": "no-store",
            },
        )

    def api(self, handler: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            try:
                result = await handler(request)
            except _HTTPError as exc:
                return JSONResponse({"detail": _one_line(exc.detail)}, status_code=exc.status)
            except (ClawGovernanceError, ValueError) as exc:
                status = _status_of(exc) if isinstance(exc, ClawGovernanceError) else 422
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                return JSONResponse({"detail": _one_line(str(exc))}, status_code=status, headers=headers)
            if isinstance(result, Response):
                return result
            return JSONResponse(result, headers={"Cache-Control": "no-store"})

        return wrapped

    def page(
        self, handler: Callable[[Request, Principal], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            try:
                principal = self.principal(request)
            except AuthenticationError:
                principal = None
            if principal is None:
                return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
            try:
                return await handler(request, principal)
            except _HTTPError as exc:
                return self.render("error.html", request, principal, exc.status, detail=exc.detail)
            except ClawGovernanceError as exc:
                return self.render("error.html", request, principal, _status_of(exc), detail=_one_line(str(exc)))

        return wrapped

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Store and audit work off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def _get(self, escalation_id: str) -> Any:
        esc = self.gov.escalations.get(escalation_id)
        if esc is None:
            raise EscalationNotFound(f"no escalation with id {escalation_id!r}")
        return esc

    # ----------------------------------------------------------------------------------------- the API

    async def api_list(self, request: Request) -> Any:
        self.require(request)
        status = request.query_params.get("status", "pending")
        if status not in _STATUSES:
            raise EscalationInputError(f"status must be one of {', '.join(sorted(_STATUSES))}")
        if status == "pending":
            found = await self.run(self.gov.escalations.pending)
        else:
            found = await self.run(
                self.gov.escalations.list_escalations, None if status == "all" else EscalationStatus(status)
            )
        now = time.time()
        return {"escalations": [escalation_view(e, self.gov, now) for e in found]}

    async def api_get(self, request: Request) -> Any:
        self.require(request)
        esc = await self.run(self._get, request.path_params["escalation_id"])
        return escalation_view(esc, self.gov)

    async def api_approve(self, request: Request) -> Any:
        principal = self.require(request)
        self.check_csrf(principal, request.headers.get(CSRF_HEADER))
        body = await self.json_body(request)
        unknown = set(body) - {"notes", "args", "for_seconds"}
        if unknown:
            raise EscalationInputError(f"unknown field(s): {', '.join(sorted(unknown))}")
        esc = await self.run(
            self.gov.resolve_escalation,
            request.path_params["escalation_id"],
            "approved",
            notes=body.get("notes") or "",
            resolver=principal.reviewer,
            args=body.get("args"),
            for_seconds=body.get("for_seconds"),
        )
        return escalation_view(esc, self.gov)

    async def api_deny(self, request: Request) -> Any:
        principal = self.require(request)
        self.check_csrf(principal, request.headers.get(CSRF_HEADER))
        body = await self.json_body(request)
        unknown = set(body) - {"notes", "message"}
        if unknown:
            raise EscalationInputError(f"unknown field(s): {', '.join(sorted(unknown))}")
        esc = await self.run(
            self.gov.resolve_escalation,
            request.path_params["escalation_id"],
            "denied",
            notes=body.get("notes") or "",
            resolver=principal.reviewer,
            message=body.get("message"),
        )
        return escalation_view(esc, self.gov)

    async def api_revoke_grant(self, request: Request) -> Any:
        principal = self.require(request)
        self.check_csrf(principal, request.headers.get(CSRF_HEADER))
        body = await self.json_body(request)
        done = await self.run(
            self.gov.escalations.revoke_grant,
            request.path_params["escalation_id"],
            principal.reviewer,
            body.get("notes") or "",
            self.gov.reviewers,
        )
        if not done:
            raise EscalationClosed("this escalation has no active grant to revoke")
        return {"revoked": True}

    async def api_agents(self, request: Request) -> Any:
        self.require(request)
        return {"agents": await self.run(agents_view, self.gov)}

    async def _agent_status(self, principal: Principal, agent_id: str, action: str, reason: str) -> Any:
        if action not in ("revoke", "reinstate"):
            raise EscalationNotFound(f"no agent action {action!r} (revoke or reinstate)")
        if not principal.reviewer.is_admin:
            raise ReviewerForbidden("revoking and reinstating agents needs the admin role")
        if not reason.strip():
            raise EscalationInputError("a reason is required (it is recorded in the audit trail)")
        if self.gov.state.get_identity(agent_id) is None:
            raise EscalationNotFound(f"no agent with id {agent_id!r}")
        by = f"{principal.reviewer.name} ({principal.reviewer.credential_id})"
        if action == "revoke":
            record = await self.run(self.gov.identities.revoke, agent_id, reason.strip(), by=by)
        else:
            record = await self.run(self.gov.identities.reinstate, agent_id, by=by, reason=reason.strip())
        return {"agent_id": record.agent_id, "status": record.status}

    async def api_agent_action(self, request: Request) -> Any:
        principal = self.require(request)
        self.check_csrf(principal, request.headers.get(CSRF_HEADER))
        body = await self.json_body(request)
        action = request.path_params["action"]
        return await self._agent_status(
            principal, request.path_params["agent_id"], action, str(body.get("reason") or "")
        )

    def _audit_filters(self, request: Request) -> dict[str, Any]:
        q = request.query_params
        allowed = q.get("allowed")
        if allowed not in (None, "", "true", "false"):
            raise EscalationInputError("allowed must be true or false")
        filters: dict[str, Any] = {
            k: q.get(k) or None for k in ("agent_id", "type", "action", "outcome", "since", "until")
        }
        if filters["outcome"] not in (None, "allow", "deny", "escalate"):
            raise EscalationInputError("outcome must be allow, deny or escalate")
        filters["allowed"] = None if not allowed else allowed == "true"
        try:
            filters["limit"] = min(int(q.get("limit") or 200), 5000)
        except ValueError:
            raise EscalationInputError("limit must be a number") from None
        shadow = q.get("shadow") or None
        if shadow not in (None, *_SHADOW):
            raise EscalationInputError(f"shadow must be one of {', '.join(_SHADOW)}")
        filters["shadow"] = shadow
        return filters

    def _query(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """The audit entries matching ``filters``; ``shadow`` keeps the decisions a shadow rule would change
        (``decision.shadow``; ``any`` or one ``would_*``), counted against ``limit`` after that filter."""
        from claw_governance.audit.query import query_entries

        wanted = filters.pop("shadow", None)
        if wanted is None:
            return list(self.gov.audit.query(**filters))
        limit = filters.pop("limit")
        found: list[dict[str, Any]] = []
        for entry in query_entries(self.gov.audit.entries(), **{**filters, "type": "policy_decision"}):
            decision = entry.get("decision")
            shadow = decision.get("shadow") if isinstance(decision, dict) else None
            if isinstance(shadow, dict) and wanted in ("any", shadow.get("would")):
                found.append(entry)
                if len(found) >= limit:
                    break
        return found

    async def api_audit(self, request: Request) -> Any:
        self.require(request)
        filters = self._audit_filters(request)
        try:
            entries = await self.run(self._query, filters)
        except ValueError as exc:
            raise EscalationInputError(str(exc)) from None
        return {"entries": entries}

    async def api_verify(self, request: Request) -> Any:
        self.require(request)
        report = await self.run(self.gov.audit.verify)
        return report.as_dict()

    async def api_policy(self, request: Request) -> Any:
        self.require(request)
        return policy_view(self.gov)

    def _replay(self, principal: Principal, fields: dict[str, Any]) -> dict[str, Any]:
        """Replay this console's audit trail against an uploaded candidate policy (admin role).

        The candidate is the YAML text in the request, parsed in memory: no path from a request is ever read.
        The report is the JSON of ``claw-gov policy replay --json`` for a file named ``candidate.yaml``."""
        from claw_governance.audit.report import day_range
        from claw_governance.policy.replay import replay

        if not principal.reviewer.is_admin:
            raise ReviewerForbidden("replaying a candidate policy needs the admin role")
        unknown = set(fields) - {"policy", "from", "to", "agent_id"}
        if unknown:
            raise EscalationInputError(f"unknown field(s): {', '.join(sorted(unknown))}")
        text, start, end = fields.get("policy"), fields.get("from"), fields.get("to")
        if not isinstance(text, str) or not text.strip():
            raise EscalationInputError("policy: the candidate policy's YAML text is required")
        if len(text.encode("utf-8")) > MAX_BODY:  # the page's form is not bounded by json_body
            raise EscalationInputError(f"policy: over {MAX_BODY} bytes")
        if not isinstance(start, str) or not isinstance(end, str) or not start.strip() or not end.strip():
            raise EscalationInputError("from and to are required (YYYY-MM-DD or an ISO timestamp)")
        agent = fields.get("agent_id") or None
        if agent is not None and not isinstance(agent, str):
            raise EscalationInputError("agent_id must be a string")
        candidate = candidate_policy(text, self.gov.policy.limits)
        lo, hi = day_range(start, end)
        report = replay(self.gov.audit.entries(), candidate, since=lo, until=hi, agent_id=agent)
        return report.as_dict()

    async def api_replay(self, request: Request) -> Any:
        principal = self.require(request)
        self.check_csrf(principal, request.headers.get(CSRF_HEADER))
        body = await self.json_body(request)
        return await self.run(self._replay, principal, body)

    async def api_me(self, request: Request) -> Any:
        p = self.require(request)
        return {
            "name": p.reviewer.name,
            "roles": list(p.reviewer.roles),
            "groups": list(p.reviewer.groups),
            "credential_id": p.reviewer.credential_id,
            "via": p.via,
        }

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document())

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "policy_hash": self.gov.policy.hash})

    # --------------------------------------------------------------------------------------- the pages

    async def login_page(self, request: Request) -> Response:
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        response: Response = self.render(
            "login.html", request, None, next=request.query_params.get("next", "/"), login_csrf=token, error=None
        )
        self._set_login_cookie(response, token)
        return response

    def _set_login_cookie(self, response: Response, token: str) -> None:
        response.set_cookie(
            LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict", secure=self.secure, path="/login"
        )

    async def login_submit(self, request: Request) -> Response:
        form = await request.form()
        expected = request.cookies.get(LOGIN_CSRF_COOKIE)
        target = str(form.get("next") or "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"  # never an open redirect
        if not csrf_ok(expected, str(form.get("csrf_token") or "")):
            return self.render(
                "login.html",
                request,
                None,
                403,
                next=target,
                login_csrf=expected or "",
                error="The login form expired: try again.",
            )
        reviewer = await self.run(
            self.gov.reviewers.login, str(form.get("name") or ""), str(form.get("password") or "")
        )
        if reviewer is None:
            response = self.render(
                "login.html",
                request,
                None,
                401,
                next=target,
                login_csrf=expected or "",
                error="Wrong name or password.",
            )
            return response
        sid, _ = self.sessions.create(reviewer)
        done = RedirectResponse(target, status_code=303)
        done.set_cookie(
            SESSION_COOKIE,
            sid,
            max_age=int(self.settings.session_seconds),
            httponly=True,
            samesite="strict",
            secure=self.secure,
            path="/",
        )
        done.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return done

    async def logout(self, request: Request) -> Response:
        principal = self.sessions.principal(request.cookies.get(SESSION_COOKIE))
        if principal is not None:
            form = await request.form()
            if not csrf_ok(principal.csrf, str(form.get("csrf_token") or "")):
                return self.render("error.html", request, principal, 403, detail="CSRF token missing or wrong")
            self.sessions.end(principal.session_id)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def inbox(self, request: Request, principal: Principal) -> Response:
        found = await self.run(self.gov.escalations.pending)
        now = time.time()
        return self.render(
            "inbox.html", request, principal, escalations=[escalation_view(e, self.gov, now) for e in found]
        )

    async def detail(self, request: Request, principal: Principal) -> Response:
        esc = await self.run(self._get, request.path_params["escalation_id"])
        view = escalation_view(esc, self.gov)
        refusal = principal.reviewer.refusal(esc) if esc.status is EscalationStatus.PENDING else None
        return self.render(
            "detail.html",
            request,
            principal,
            e=view,
            refusal=refusal,
            error=None,
            args_text=json.dumps(view["args"], indent=2, ensure_ascii=False, default=str),
        )

    async def resolve_form(self, request: Request, principal: Principal) -> Response:
        form = await request.form()
        self.check_csrf(principal, str(form.get("csrf_token") or ""))
        escalation_id = request.path_params["escalation_id"]
        kind = str(form.get("kind") or "")
        notes = str(form.get("notes") or "")
        extra: dict[str, Any] = {}
        decision = "approved"
        try:
            if kind == "approve_edit":
                try:
                    extra["args"] = json.loads(str(form.get("args") or ""))
                except ValueError as exc:
                    raise EscalationInputError(f"the edited arguments are not JSON: {exc}") from None
            elif kind == "approve_for":
                try:
                    extra["for_seconds"] = float(str(form.get("minutes") or "")) * 60
                except ValueError:
                    raise EscalationInputError("minutes must be a number") from None
            elif kind in ("deny", "respond"):
                decision = "denied"
                if kind == "respond":
                    extra["message"] = str(form.get("message") or "")
            elif kind != "approve":
                raise EscalationInputError(f"unknown resolution {kind!r}")
            await self.run(
                self.gov.resolve_escalation, escalation_id, decision, notes=notes, resolver=principal.reviewer, **extra
            )
        except (EscalationInputError, ReviewerForbidden, EscalationClosed) as exc:
            esc = await self.run(self._get, escalation_id)
            view = escalation_view(esc, self.gov)
            args_text = (
                str(form.get("args"))
                if kind == "approve_edit" and form.get("args")
                else json.dumps(view["args"], indent=2, ensure_ascii=False, default=str)
            )
            return self.render(
                "detail.html",
                request,
                principal,
                _status_of(exc),
                e=view,
                error=_one_line(str(exc)),
                refusal=None,
                args_text=args_text,
            )
        return RedirectResponse(f"/escalations/{escalation_id}", status_code=303)

    async def agents(self, request: Request, principal: Principal) -> Response:
        return self.render("agents.html", request, principal, agents=await self.run(agents_view, self.gov), error=None)

    async def agent_form(self, request: Request, principal: Principal) -> Response:
        form = await request.form()
        self.check_csrf(principal, str(form.get("csrf_token") or ""))
        await self._agent_status(
            principal, request.path_params["agent_id"], request.path_params["action"], str(form.get("reason") or "")
        )
        return RedirectResponse("/agents", status_code=303)

    async def audit_page(self, request: Request, principal: Principal) -> Response:
        filters = self._audit_filters(request)
        limit = filters["limit"]
        try:
            entries = await self.run(self._query, filters)
        except ValueError as exc:
            raise EscalationInputError(str(exc)) from None
        report = await self.run(self.gov.audit.verify)
        return self.render(
            "audit.html",
            request,
            principal,
            entries=entries[-limit:][::-1],
            filters={
                k: request.query_params.get(k, "")
                for k in ("agent_id", "type", "action", "outcome", "allowed", "since", "until", "limit", "shadow")
            },
            shadow_choices=_SHADOW,
            verify=report.as_dict(),
        )

    async def policy_page(self, request: Request, principal: Principal) -> Response:
        return self.render("policy.html", request, principal, policy=policy_view(self.gov))

    async def replay_page(self, request: Request, principal: Principal) -> Response:
        """GET: the form; POST (form, CSRF): the form again with the flip report below it."""
        fields: dict[str, Any] = {"policy": "", "from": "", "to": "", "agent_id": ""}
        report: dict[str, Any] | None = None
        error: str | None = None
        status = 200
        if request.method == "POST":
            form = await request.form()
            self.check_csrf(principal, str(form.get("csrf_token") or ""))
            fields = {k: str(form.get(k) or "") for k in fields}
            try:
                report = await self.run(self._replay, principal, fields)
            except (ClawGovernanceError, ValueError) as exc:
                status = _status_of(exc) if isinstance(exc, ClawGovernanceError) else 422
                error = _one_line(str(exc))
        return self.render(
            "replay.html",
            request,
            principal,
            status,
            fields=fields,
            report=report,
            error=error,
            admin=principal.reviewer.is_admin,
        )

    async def report_page(self, request: Request, principal: Principal) -> Response:
        from claw_governance.audit.html_report import render_report, report_period

        start, end = report_period(request.query_params.get("start"), request.query_params.get("end"))
        html = await self.run(render_report, self.gov, start, end)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def create_app(governor: Any, settings: ConsoleSettings | None = None) -> Starlette:
    """The console as an ASGI app over ``governor`` (serve it with uvicorn; ``claw-gov console`` does)."""
    c = Console(governor, settings or ConsoleSettings())
    api = c.api
    routes = [
        Route("/health", c.health, methods=["GET"]),
        Route("/api/openapi.json", c.openapi, methods=["GET"]),
        Route("/api/me", api(c.api_me), methods=["GET"]),
        Route("/api/escalations", api(c.api_list), methods=["GET"]),
        Route("/api/escalations/{escalation_id}", api(c.api_get), methods=["GET"]),
        Route("/api/escalations/{escalation_id}/approve", api(c.api_approve), methods=["POST"]),
        Route("/api/escalations/{escalation_id}/deny", api(c.api_deny), methods=["POST"]),
        Route("/api/escalations/{escalation_id}/revoke-grant", api(c.api_revoke_grant), methods=["POST"]),
        Route("/api/agents", api(c.api_agents), methods=["GET"]),
        Route("/api/agents/{agent_id}/{action:str}", api(c.api_agent_action), methods=["POST"]),
        Route("/api/audit", api(c.api_audit), methods=["GET"]),
        Route("/api/audit/verify", api(c.api_verify), methods=["GET"]),
        Route("/api/policy", api(c.api_policy), methods=["GET"]),
        Route("/api/policy/replay", api(c.api_replay), methods=["POST"]),
        Route("/login", c.login_page, methods=["GET"]),
        Route("/login", c.login_submit, methods=["POST"]),
        Route("/logout", c.logout, methods=["POST"]),
        Route("/", c.page(c.inbox), methods=["GET"]),
        Route("/escalations/{escalation_id}", c.page(c.detail), methods=["GET"]),
        Route("/escalations/{escalation_id}/resolve", c.page(c.resolve_form), methods=["POST"]),
        Route("/agents", c.page(c.agents), methods=["GET"]),
        Route("/agents/{agent_id}/{action:str}", c.page(c.agent_form), methods=["POST"]),
        Route("/audit", c.page(c.audit_page), methods=["GET"]),
        Route("/policy", c.page(c.policy_page), methods=["GET"]),
        Route("/policy/replay", c.page(c.replay_page), methods=["GET", "POST"]),
        Route("/report", c.page(c.report_page), methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.console = c

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                {"detail": f"no such endpoint: {request.method} {request.url.path}"},
                status_code=getattr(exc, "status_code", 404),
            )
        return HTMLResponse("<h1>Not found</h1>", status_code=getattr(exc, "status_code", 404))

    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, not_found)
    return app


__all__ = ["ConsoleSettings", "create_app", "iso"]
