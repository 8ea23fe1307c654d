"""Signed escalation webhooks (Standard Webhooks), verified with the `standardwebhooks` library; Slack blocks."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from claw_governance import Governor
from claw_governance.errors import ConfigError
from claw_governance.escalation import WebhookNotifier

POLICY = """\
agent: bot
permissions:
  escalate:
    - action: wipe
      reason: Wiping needs a human
"""
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()


class Recorder:
    """A local endpoint that keeps each request's headers and raw body; fails the first ``failures``."""

    def __init__(self, failures: int = 0) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.attempts = 0
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                me.attempts += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                me.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(500 if me.attempts <= failures else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    r = Recorder(failures=1)
    yield r
    r.close()


def _notifier(gov: Governor) -> WebhookNotifier:
    (webhook,) = [p for p in gov.pm.get_plugins() if isinstance(p, WebhookNotifier)]
    webhook.backoff = 0.01
    return webhook


def test_payload_is_signed_per_standard_webhooks_and_links_to_the_console(
    make_governor: Callable[..., Governor], recorder: Recorder
) -> None:
    gov = make_governor(
        POLICY,
        escalation_webhook_url=recorder.url,
        escalation_webhook_secret=SECRET,
        console_url="https://review.example.com/",
    )
    webhook = _notifier(gov)
    escalation_id = gov.agent("bot").check("wipe", {"disk": 1}).escalation_id
    assert webhook.drain(10) and webhook.sent == 1
    assert len(recorder.requests) == 2  # one failure, one retry
    ids = {h["webhook-id"] for h, _ in recorder.requests}
    assert ids == {escalation_id}  # the same id on every attempt: receivers deduplicate by it
    for headers, body in recorder.requests:
        payload = Webhook(SECRET).verify(body, headers)  # a Standard Webhooks implementation nobody here wrote
        assert payload["id"] == escalation_id
        assert payload["console_url"] == f"https://review.example.com/escalations/{escalation_id}"
    headers, body = recorder.requests[-1]
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"wipe", b"wip3"), headers)
    other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


def test_slack_format_has_the_reason_and_an_open_in_console_button(
    make_governor: Callable[..., Governor], recorder: Recorder
) -> None:
    gov = make_governor(
        POLICY,
        escalation_webhook_url=recorder.url,
        escalation_webhook_format="slack",
        console_url="https://review.example.com",
    )
    webhook = _notifier(gov)
    escalation_id = gov.agent("bot").check("wipe").escalation_id
    assert webhook.drain(10)
    headers, body = recorder.requests[-1]
    assert "webhook-signature" not in headers  # no secret configured: unsigned
    doc = json.loads(body)
    assert "Wiping needs a human" in doc["text"]
    assert any("Wiping needs a human" in b.get("text", {}).get("text", "") for b in doc["blocks"])
    (actions,) = [b for b in doc["blocks"] if b["type"] == "actions"]
    (button,) = actions["elements"]
    assert button["text"]["text"] == "Open in console"
    assert button["url"] == f"https://review.example.com/escalations/{escalation_id}"


def test_bad_settings_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        WebhookNotifier("http://127.0.0.1:9/x", secret="whsec_not base64!")
    with pytest.raises(ConfigError, match="escalation_webhook_format"):
        Governor(escalation_webhook_format="xml", load_entry_points=False)
    with pytest.raises(ConfigError, match="console_url"):
        Governor(console_url="ftp://x", load_entry_points=False)
