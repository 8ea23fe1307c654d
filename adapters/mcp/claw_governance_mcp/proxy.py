"""The governing MCP proxy: an MCP server that fronts a real one and governs every ``tools/call``.

The proxy starts the real server (a command speaking MCP on stdio), opens a client session to it and serves
MCP itself, on stdio or streamable HTTP. Every request other than ``tools/call`` is forwarded as it is and
answered with the real server's result unchanged: the client sees the same tools (names, descriptions, input
and output schemas), resources, prompts and capabilities. Each ``tools/call`` is decided by the Governor first
(action ``mcp:<server>/<tool>``):

- DENY: a tool result with ``isError: true`` and the reason; the real server never sees the call.
- ESCALATE: the same, naming the escalation id (a retry after a reviewer approved it runs, once); with
  ``wait_seconds`` the proxy waits for the reviewer and then decides again.
- ALLOW: forwarded; the outcome (``isError`` and content) goes back to the Governor's audit trail.

Each client connection is its own session (``metadata["connection_id"]``, see ``claw_governance.session``):
data-flow labels (``session.labels``) and ``scope: session`` budgets are kept per connection, so what one
client read does not restrict another client of the same proxy. A reconnecting client starts a new session
with no labels: an agent host should keep one connection per conversation (``scope: agent`` budgets are
shared by every connection).

Fail closed: a governance error, or a real server that is gone or fails mid-call, is an ``isError`` result,
never a call that runs ungoverned; once the server connection is lost, every later call is refused.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp.types as types
from claw_governance import CallOutcome, Decision, Governor, Outcome
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.server.lowlevel import Server
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.shared.session import RequestResponder

log = logging.getLogger("claw_governance_mcp")

FRAMEWORK = "mcp"
ACTION_PREFIX = "mcp:"
GOVERNANCE_META_KEY = "claw_governance"


def _clean(request: Any) -> types.ClientRequest:
    """``request`` as a fresh client request: method and params only.

    The server side parses an incoming request with its JSON-RPC envelope fields kept as extras; the client
    session adds its own envelope (its own id), so they are left out here.
    """
    return types.ClientRequest(type(request)(method=request.method, params=request.params))


def mcp_action(server: str, tool: str) -> str:
    """The governance action of a call to ``tool`` on ``server``: ``mcp:<server>/<tool>``."""
    return f"{ACTION_PREFIX}{server}/{tool}"


@dataclass(frozen=True)
class ProxySettings:
    """What the proxy fronts and how it governs.

    ``command``/``args``: the real MCP server (stdio). ``agent_id``: the agent every call is governed as.
    ``server_name``: the ``<server>`` of the action (default: the name the real server reports in
    ``initialize``; pin it with ``--name`` so a server cannot choose the rules it falls under).
    ``wait_seconds``: wait this long for a reviewer on ESCALATE before answering (None: answer at once).
    """

    agent_id: str
    command: str
    args: tuple[str, ...] = ()
    server_name: str | None = None
    wait_seconds: float | None = None
    env: dict[str, str] | None = None
    cwd: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _text_result(text: str, decision: Decision | None, **info: Any) -> types.CallToolResult:
    """An ``isError`` tool result carrying ``text`` and machine-readable governance details in ``_meta``."""
    meta: dict[str, Any] = dict(info)
    if decision is not None:
        meta.update(
            {
                "outcome": decision.outcome.value,
                "reason": decision.reason,
                "escalation_id": decision.escalation_id,
                "call_id": decision.call.call_id,
                "action": decision.call.action,
            }
        )
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], isError=True, _meta={GOVERNANCE_META_KEY: meta}
    )


def refusal_text(tool: str, decision: Decision) -> str:
    """What the model reads when its call did not run: the reason and, for an escalation, its id."""
    if decision.outcome is Outcome.ESCALATE:
        return (
            f"Tool '{tool}' was not run: it needs human approval (escalation {decision.escalation_id}). "
            f"Reason: {decision.reason}. It may be retried once a human has approved it."
        )
    return f"Tool '{tool}' was not run: denied by governance policy. Reason: {decision.reason}."


def _outcome(result: types.CallToolResult, duration_ms: float) -> CallOutcome:
    """The Governor's view of a forwarded call's result (``isError`` is a failure)."""
    content = [block.model_dump(mode="json", exclude_none=True) for block in result.content]
    if result.isError:
        text = " ".join(b.get("text", "") for b in content if b.get("type") == "text").strip()
        return CallOutcome(False, None, text or "the tool reported an error", duration_ms)
    output: Any = result.structuredContent if result.structuredContent is not None else content
    return CallOutcome(True, output, None, duration_ms)


class GovernedProxy:
    """An MCP ``Server`` forwarding to ``upstream`` (a live ClientSession), governing every tool call."""

    def __init__(
        self, governor: Governor, settings: ProxySettings, upstream: ClientSession, init: types.InitializeResult
    ) -> None:
        self.governor = governor
        self.settings = settings
        self.upstream = upstream
        self.init = init
        self.server_name = settings.server_name or init.serverInfo.name
        self.lost: str | None = None
        """Why the real server is unusable (None while it is fine); once set, every tool call is refused."""
        self._sessions: weakref.WeakSet[ServerSession] = weakref.WeakSet()
        self._last_session: weakref.ref[ServerSession] | None = None
        # One session id per client connection, random (a client cannot pick another's), for labels and budgets.
        self._connection_ids: weakref.WeakKeyDictionary[ServerSession, str] = weakref.WeakKeyDictionary()
        self._direct_id = f"mcp-{uuid.uuid4().hex}"
        governor.agent(settings.agent_id, framework=FRAMEWORK)  # its identity exists before the first call
        self.server: Server[Any, Any] = self._build_server()

    # ------------------------------------------------------------------------------------ the server

    def _build_server(self) -> Server[Any, Any]:
        info = self.init.serverInfo
        server: Server[Any, Any] = Server(info.name, version=info.version, instructions=self.init.instructions)
        caps = self.init.capabilities
        forwards: list[tuple[type, type]] = []
        if caps.tools is not None:
            forwards.append((types.ListToolsRequest, types.ListToolsResult))
            server.request_handlers[types.CallToolRequest] = self._call_tool
        if caps.resources is not None:
            forwards += [
                (types.ListResourcesRequest, types.ListResourcesResult),
                (types.ListResourceTemplatesRequest, types.ListResourceTemplatesResult),
                (types.ReadResourceRequest, types.ReadResourceResult),
                (types.SubscribeRequest, types.EmptyResult),
                (types.UnsubscribeRequest, types.EmptyResult),
            ]
        if caps.prompts is not None:
            forwards += [
                (types.ListPromptsRequest, types.ListPromptsResult),
                (types.GetPromptRequest, types.GetPromptResult),
            ]
        if caps.completions is not None:
            forwards.append((types.CompleteRequest, types.CompleteResult))
        if caps.logging is not None:
            forwards.append((types.SetLevelRequest, types.EmptyResult))
        for request_type, result_type in forwards:
            server.request_handlers[request_type] = self._forwarder(result_type)
        server.notification_handlers[types.ProgressNotification] = self._forward_notification
        server.notification_handlers[types.RootsListChangedNotification] = self._forward_notification
        return server

    def initialization_options(self) -> InitializationOptions:
        """The real server's name, version, capabilities and instructions, as the client will see them."""
        info = self.init.serverInfo
        return InitializationOptions(
            server_name=info.name,
            server_version=info.version,
            capabilities=self.init.capabilities,
            instructions=self.init.instructions,
        )

    def _remember_session(self) -> None:
        with contextlib.suppress(LookupError):  # outside a request (a notification): nothing to remember
            session = self.server.request_context.session
            self._sessions.add(session)
            self._last_session = weakref.ref(session)

    def connection_id(self) -> str:
        """The session id of the client connection whose request is being handled (new for a new connection).

        A direct ``call_tool`` from the program embedding the proxy (no MCP request, so no connection) is one
        session of its own, the same for every such call of this proxy."""
        try:
            session = self.server.request_context.session
        except LookupError:
            return self._direct_id
        found = self._connection_ids.get(session)
        if found is None:
            found = self._connection_ids[session] = f"mcp-{uuid.uuid4().hex}"
        return found

    # --------------------------------------------------------------- the real server's requests to the client

    async def _to_client(self, request: Any, result_type: type) -> Any:
        """Forward a request of the real server (sampling, elicitation, roots) to the client that spoke last."""
        session = self._last_session() if self._last_session is not None else None
        if session is None:
            return types.ErrorData(code=types.INVALID_REQUEST, message="no MCP client is connected to the proxy")
        from mcp.shared.exceptions import McpError

        try:
            return await session.send_request(types.ServerRequest(request), result_type)
        except McpError as exc:
            return exc.error
        except Exception as exc:
            return types.ErrorData(code=types.INTERNAL_ERROR, message=f"{type(exc).__name__}: {exc}")

    async def sampling(self, context: Any, params: types.CreateMessageRequestParams) -> Any:
        """``sampling/createMessage`` from the real server, answered by the client."""
        return await self._to_client(
            types.CreateMessageRequest(method="sampling/createMessage", params=params), types.CreateMessageResult
        )

    async def elicitation(self, context: Any, params: types.ElicitRequestParams) -> Any:
        """``elicitation/create`` from the real server, answered by the client."""
        return await self._to_client(
            types.ElicitRequest(method="elicitation/create", params=params), types.ElicitResult
        )

    async def list_roots(self, context: Any) -> Any:
        """``roots/list`` from the real server, answered by the client."""
        return await self._to_client(types.ListRootsRequest(method="roots/list"), types.ListRootsResult)

    def _forwarder(self, result_type: type) -> Callable[[Any], Awaitable[types.ServerResult]]:
        async def forward(request: Any) -> types.ServerResult:
            self._remember_session()
            result: Any = await self.upstream.send_request(_clean(request), result_type)
            return types.ServerResult(result)

        return forward

    async def _forward_notification(self, notification: Any) -> None:
        try:
            await self.upstream.send_notification(
                types.ClientNotification(type(notification)(method=notification.method, params=notification.params))
            )
        except Exception as exc:  # the server is gone: tool calls find out and are refused
            self._lose(f"{type(exc).__name__}: {exc}")

    async def upstream_message(
        self,
        message: RequestResponder[types.ServerRequest, types.ClientResult] | types.ServerNotification | Exception,
    ) -> None:
        """The ClientSession's message handler: pass the real server's notifications on to our clients."""
        if isinstance(message, Exception):
            log.warning("MCP server %s: %s", self.server_name, message)
            return
        if not isinstance(message, types.ServerNotification):
            return  # server-to-client requests are answered by the ClientSession's callbacks
        for session in list(self._sessions):
            try:
                await session.send_notification(message)
            except Exception:  # that client has gone; the others still get it
                self._sessions.discard(session)

    def _lose(self, why: str) -> None:
        if self.lost is None:
            self.lost = why
            log.error("MCP server %s lost (%s): every tool call is refused from now on", self.server_name, why)

    # ------------------------------------------------------------------------------------ tools/call

    def _decide(self, name: str, arguments: dict[str, Any]) -> tuple[Any, Decision]:
        call = self.governor.make_call(
            self.settings.agent_id,
            mcp_action(self.server_name, name),
            arguments,
            framework=FRAMEWORK,
            metadata={"tool": name, "server": self.server_name, "connection_id": self.connection_id()},
        )
        return call, self.governor.before_call(call)

    async def _call_tool(self, request: types.CallToolRequest) -> types.ServerResult:
        return types.ServerResult(await self.call_tool(request))

    async def call_tool(self, request: types.CallToolRequest) -> types.CallToolResult:
        """Govern one ``tools/call``; forward it only on ALLOW; audit what came back."""
        self._remember_session()
        name = request.params.name
        arguments = dict(request.params.arguments or {})
        try:
            call, decision = self._decide(name, arguments)
            if decision.outcome is Outcome.ESCALATE and self.settings.wait_seconds:
                decision = await self.governor.await_approval(decision, self.settings.wait_seconds)
        except Exception as exc:  # the governor itself failed: nothing runs
            log.error("governance error for %s: %s", name, exc)
            return _text_result(
                f"Tool '{name}' was not run: governance is unavailable ({type(exc).__name__}); denied to fail closed.",
                None,
                outcome="deny",
                action=mcp_action(self.server_name, name),
            )
        if decision.outcome is not Outcome.ALLOW:
            return _text_result(refusal_text(name, decision), decision)
        if self.lost is not None:
            outcome = CallOutcome(False, None, f"MCP server unavailable: {self.lost}", 0.0)
            self.governor.after_call(call, decision, outcome)
            return _text_result(
                f"Tool '{name}' was not run: the MCP server {self.server_name!r} is unavailable ({self.lost}).",
                decision,
            )
        started = time.perf_counter()
        try:
            result = await self.upstream.send_request(_clean(request), types.CallToolResult)
        except Exception as exc:
            elapsed = (time.perf_counter() - started) * 1000
            message = f"{type(exc).__name__}: {exc}"
            self.governor.after_call(call, decision, CallOutcome(False, None, message, elapsed))
            if not _is_tool_level_error(exc):
                self._lose(message)
            return _text_result(f"Tool '{name}' failed in the MCP server {self.server_name!r}: {message}", decision)
        self.governor.after_call(call, decision, _outcome(result, (time.perf_counter() - started) * 1000))
        return result


def _is_tool_level_error(exc: BaseException) -> bool:
    """A JSON-RPC error answer from a live server (unknown tool, bad params), not a lost connection."""
    from mcp.shared.exceptions import McpError

    return isinstance(exc, McpError) and exc.error.code != types.CONNECTION_CLOSED


# ---------------------------------------------------------------------------------------- running


@asynccontextmanager
async def open_proxy(governor: Governor, settings: ProxySettings) -> AsyncIterator[GovernedProxy]:
    """Start the real server, connect to it, and yield the proxy (the server stops when the block ends)."""
    params = StdioServerParameters(
        command=settings.command,
        args=list(settings.args),
        env=dict(os.environ) if settings.env is None else settings.env,
        cwd=settings.cwd,
    )
    holder: list[GovernedProxy] = []

    async def on_message(message: Any) -> None:
        if holder:
            await holder[0].upstream_message(message)

    # The real server's own requests (sampling, elicitation, roots) go on to the proxy's client.
    async def sampling(context: Any, params: types.CreateMessageRequestParams) -> Any:
        return await holder[0].sampling(context, params)

    async def elicitation(context: Any, params: types.ElicitRequestParams) -> Any:
        return await holder[0].elicitation(context, params)

    async def list_roots(context: Any) -> Any:
        return await holder[0].list_roots(context)

    async with (
        stdio_client(params, errlog=sys.stderr) as (read, write),
        ClientSession(
            read,
            write,
            message_handler=on_message,
            sampling_callback=sampling,
            elicitation_callback=elicitation,
            list_roots_callback=list_roots,
        ) as upstream,
    ):
        init = await upstream.initialize()
        proxy = GovernedProxy(governor, settings, upstream, init)
        holder.append(proxy)
        yield proxy


async def serve_stdio(governor: Governor, settings: ProxySettings) -> None:
    """Serve the proxy on this process's stdin/stdout until the client closes it."""
    from mcp.server.stdio import stdio_server

    async with open_proxy(governor, settings) as proxy, stdio_server() as (read, write):
        await proxy.server.run(read, write, proxy.initialization_options())


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port). OSError when the port is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve_http(
    governor: Governor,
    settings: ProxySettings,
    sock: socket.socket,
    *,
    path: str = "/mcp",
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the proxy over streamable HTTP on ``sock`` (see ``bind``) at ``path``, until cancelled."""
    import uvicorn
    from mcp.server.fastmcp.server import StreamableHTTPASGIApp
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.applications import Starlette
    from starlette.routing import Route

    host, port = sock.getsockname()[:2]
    # Browsers on the same machine must not reach the proxy through DNS rebinding: only these Host headers.
    hosts = [f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=[f"http://{h}" for h in hosts]
    )
    async with open_proxy(governor, settings) as proxy:
        manager = StreamableHTTPSessionManager(app=proxy.server, security_settings=security)

        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            async with manager.run():
                yield

        # The session manager runs sessions with the server's own initialization options; give it the real
        # server's (capabilities and instructions unchanged).
        proxy.server.create_initialization_options = (  # type: ignore[method-assign]
            lambda *a, **k: proxy.initialization_options()
        )
        app = Starlette(
            routes=[Route(path, endpoint=StreamableHTTPASGIApp(manager), methods=["GET", "POST", "DELETE"])],
            lifespan=lifespan,
        )
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        userver = uvicorn.Server(config)
        url = f"http://{host}:{port}{path}"
        if on_ready is not None:
            on_ready(url)
        await userver.serve(sockets=[sock])


def run(fn: Callable[[], Awaitable[None]]) -> None:
    """Run ``fn`` on an anyio event loop (asyncio)."""
    anyio.run(fn)
