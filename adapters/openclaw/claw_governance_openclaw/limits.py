"""What keeps the bridge (``claw-gov serve``) from being exhausted or fooled by its input (issue 13, class 8).

* :func:`token_problem`: the shared token must be long and random enough (length and Shannon entropy).
* :func:`read_body`: the request body, streamed and counted chunk by chunk, refused with 413 as soon as it
  passes the limit (never buffered whole first) and with 408 when it does not arrive within the deadline.
* :func:`parse_json`: malformed or too deeply nested JSON is a 400 with one line (never a traceback).
* :class:`GuardedH11Protocol` / :func:`server_config`: uvicorn with a header read timeout (a connection that
  has not sent a complete request head in time is closed; uvicorn itself has none), a keep-alive timeout, and
  a hard limit on open connections.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

MIN_TOKEN_LENGTH = 32
MIN_TOKEN_ENTROPY_BITS_PER_CHAR = 2.5  # "a"*32: 0; "abcd"*8: 2.0; random 32 hex digits: >= 2.8 (300k draws)


class BodyError(Exception):
    """A request body that is refused: ``status`` (400, 408, 413) and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text``'s own character distribution (0.0 for an empty text)."""
    if not text:
        return 0.0
    counts = Counter(text)
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def token_problem(token: str) -> str | None:
    """Why ``token`` is too weak to guard the bridge, or None when it is strong enough."""
    if len(token) < MIN_TOKEN_LENGTH:
        return (
            f"the bridge token has {len(token)} characters; it needs at least {MIN_TOKEN_LENGTH} random ones "
            "(e.g. `openssl rand -hex 32 > bridge.token`)"
        )
    bits = shannon_entropy(token)
    if bits < MIN_TOKEN_ENTROPY_BITS_PER_CHAR:
        return (
            f"the bridge token looks guessable ({bits:.2f} bits of entropy per character, at least "
            f"{MIN_TOKEN_ENTROPY_BITS_PER_CHAR} needed); use a random one (e.g. `openssl rand -hex 32`)"
        )
    return None


async def read_body(chunks: AsyncIterator[bytes], limit: int, seconds: float) -> bytes:
    """Read a streamed body of at most ``limit`` bytes within ``seconds``; BodyError(413 / 408) otherwise.

    The count is checked on every chunk, so a chunked 200 MB body costs at most ``limit`` bytes of memory.
    """
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise BodyError(413, f"request body too large (limit {limit} bytes)")
                parts.append(chunk)
    except TimeoutError:
        raise BodyError(408, f"request body not received within {seconds:g} s") from None
    return b"".join(parts)


def _depth_over(value: Any, limit: int) -> bool:
    """True if ``value`` nests containers deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_json(body: bytes, max_depth: int) -> Any:
    """Parse a request body; BodyError(400) with one line when it is not JSON or nests too deep."""
    try:
        data = orjson.loads(body or b"null")
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc) or "recursion" in str(exc):
            raise BodyError(400, f"request body is nested too deeply (more than {max_depth} levels)") from None
        raise BodyError(400, "request body is not JSON") from None
    if _depth_over(data, max_depth):
        raise BodyError(400, f"request body is nested too deeply (more than {max_depth} levels)")
    return data


# ------------------------------------------------------------------------------------------ the server


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Socket-level limits of ``claw-gov serve``."""

    header_timeout_seconds: float = 10.0  # a complete request head must arrive within this
    keep_alive_seconds: float = 5.0  # an idle keep-alive connection is closed after this (whole seconds)
    max_connections: int = 256  # open connections; more are closed at once
    max_header_bytes: int = 16 * 1024  # h11's limit on an incomplete request head


def guarded_protocol(limits: ServerLimits) -> type[Any]:
    """uvicorn's h11 protocol with a header read timeout and a hard connection limit."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        """Closes a connection whose request head has not arrived in time, and any beyond the limit."""

        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                transport.abort()  # over the limit: no answer, no resources held
                return
            self._arm_head_timer()

        def _arm_head_timer(self) -> None:
            self._cancel_head_timer()
            self._head_timer = self.loop.call_later(limits.header_timeout_seconds, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            waiting_for_head = self.cycle is None or self.cycle.response_complete
            if waiting_for_head and not self.transport.is_closing():
                self.transport.close()

        def handle_events(self) -> None:
            before = self.cycle
            super().handle_events()
            if self.cycle is not before and self.cycle is not None:  # a request head arrived
                self._cancel_head_timer()

        def on_response_complete(self) -> None:
            self._arm_head_timer()  # the next request on this connection must come in time too
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

    return GuardedH11Protocol


def server_config(
    app: Any,
    host: str,
    port: int,
    limits: ServerLimits | None = None,
    *,
    log_level: str = "warning",
    fd: int | None = None,
) -> Any:
    """The ``uvicorn.Config`` of the bridge: the guarded protocol and the limits above (on ``fd``, an already
    bound socket, when given: then a port in use was reported before uvicorn starts)."""
    import uvicorn

    limits = limits or ServerLimits()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        fd=fd,
        http=guarded_protocol(limits),
        log_level=log_level,
        access_log=False,
        timeout_keep_alive=max(1, round(limits.keep_alive_seconds)),
        limit_concurrency=limits.max_connections + 1,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        lifespan="off",
    )
