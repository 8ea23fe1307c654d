"""Notifiers: console and webhook (a real HTTP server on 127.0.0.1), never blocking the decision path."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from claw_governance import Governor
from claw_governance.config import GovernorConfig
from claw_governance.escalation import ConsoleNotifier, WebhookNotifier, default_notifiers
from claw_governance.model import Outcome

POLICY = """\
agent: bot
permissions:
  escalate: [wipe]
"""


class Hook:
    """A local webhook endpoint: records JSON bodies; fails the first ``failures`` requests with 500."""

    def __init__(self, failures: int = 0, delay: float = 0.0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hook.attempts += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                if hook.attempts <= failures:
                    self.send_response(500)
                    self.end_headers()
                    return
                hook.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/escalations"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def governor_with(
    make_governor: Callable[..., Governor], url: str, **settings: Any
) -> tuple[Governor, WebhookNotifier]:
    gov = make_governor(POLICY, escalation_webhook_url=url, **settings)  # the Governor registers the notifier
    (webhook,) = [p for p in gov.pm.get_plugins() if isinstance(p, WebhookNotifier)]
    return gov, webhook


def test_default_notifiers_follow_the_config() -> None:
    assert default_notifiers(GovernorConfig()) == []
    (console,) = default_notifiers(GovernorConfig(escalation_console=True))
    assert isinstance(console, ConsoleNotifier)
    found = default_notifiers(GovernorConfig(escalation_webhook_url="http://127.0.0.1:9/x"))
    assert [type(n) for n in found] == [WebhookNotifier]
    for n in found:
        n.close(0)  # type: ignore[attr-defined]


def test_webhook_receives_the_escalation_as_json(make_governor: Callable[..., Governor], hook: Hook) -> None:
    gov, webhook = governor_with(make_governor, hook.url)
    d = gov.agent("bot").check("wipe", {"disk": "sda", "password": "hunter2"})
    assert webhook.drain(5)
    (body,) = hook.bodies
    assert body["id"] == d.escalation_id and body["agent_id"] == "bot" and body["action"] == "wipe"
    assert body["status"] == "pending" and body["context"]["disk"] == "sda"
    assert "hunter2" not in json.dumps(body)
    assert "claw-gov escalations approve" in body["resolve"]["approve"]
    assert gov.health_check()["components"]["escalation_webhook"]["sent"] == 1


def test_webhook_retries_server_errors(make_governor: Callable[..., Governor]) -> None:
    flaky = Hook(failures=2)
    try:
        gov, webhook = governor_with(make_governor, flaky.url, escalation_webhook_retries=3)
        webhook.backoff = 0.01
        gov.agent("bot").check("wipe")
        assert webhook.drain(5)
        assert flaky.attempts == 3 and len(flaky.bodies) == 1 and webhook.sent == 1
    finally:
        flaky.close()


def test_endpoint_down_never_blocks_or_breaks_decisions(make_governor: Callable[..., Governor]) -> None:
    gov, webhook = governor_with(
        make_governor,
        f"http://127.0.0.1:{free_port()}/nobody",
        escalation_webhook_retries=1,
        escalation_webhook_timeout=0.5,
    )
    webhook.backoff = 0.01
    started = time.perf_counter()
    decisions = [gov.agent("bot").check("wipe", {"n": i}) for i in range(5)]
    elapsed = time.perf_counter() - started
    assert all(d.outcome is Outcome.ESCALATE for d in decisions)
    assert elapsed < 0.5  # the POSTs happen in the background
    assert webhook.drain(10)
    health = gov.health_check()
    assert health["components"]["escalation_webhook"]["status"] == "degraded"
    assert health["components"]["escalation_webhook"]["failed"] == 5
    assert len(gov.escalations.pending()) == 5  # stored regardless


def test_slow_endpoint_times_out_without_blocking(make_governor: Callable[..., Governor]) -> None:
    slow = Hook(delay=1.0)
    try:
        gov, webhook = governor_with(
            make_governor, slow.url, escalation_webhook_retries=0, escalation_webhook_timeout=0.2
        )
        started = time.perf_counter()
        assert gov.agent("bot").check("wipe").outcome is Outcome.ESCALATE
        assert time.perf_counter() - started < 0.3
        assert webhook.drain(5) and webhook.failed == 1 and "timed out" in (webhook.last_error or "")
    finally:
        slow.close()


def test_console_notifier_prints_the_resolve_command(
    make_governor: Callable[..., Governor], capsys: pytest.CaptureFixture[str]
) -> None:
    gov = make_governor(POLICY, escalation_console=True)
    d = gov.agent("bot").check("wipe")
    err = capsys.readouterr().err
    assert f"claw-gov escalations approve {d.escalation_id}" in err


def test_webhook_url_must_be_http() -> None:
    with pytest.raises(Exception, match="http"):
        GovernorConfig(escalation_webhook_url="file:///etc/passwd")
