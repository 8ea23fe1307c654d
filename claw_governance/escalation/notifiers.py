"""Escalation notifiers (``claw_notify_escalation``): console and webhook.

A notifier never blocks or breaks the decision path: the escalation is already stored when it is called.
The webhook notifier only puts the escalation on a bounded in-memory queue; one background thread POSTs
it (``timeout`` seconds per attempt, ``retries`` more attempts with exponential back-off through
``tenacity``). When the endpoint is down the notification is dropped after the last attempt and counted in
``claw_health``.

With a secret, each POST is signed as the Standard Webhooks specification says (``webhook-id``,
``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` keyed with the
base64-decoded part of ``whsec_...``), so any Standard Webhooks library verifies it. The ``webhook-id`` is the
escalation id: a receiver deduplicates retries by it. ``format="slack"`` sends Slack-compatible blocks (the
reason and an "Open in console" button) instead of the JSON document.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import queue
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import orjson

from claw_governance.audit.redaction import DEFAULT_REDACTOR, redact_text
from claw_governance.config import GovernorConfig
from claw_governance.hookspecs import hookimpl
from claw_governance.model import Escalation
from claw_governance.terminal import safe_text
from claw_governance.timeparse import human_utc_minutes

log = logging.getLogger("claw_governance.escalation")

QUEUE_SIZE = 1000


def console_link(escalation: Escalation, console_url: str | None) -> str | None:
    """The escalation's page in the reviewer console, or None without a console URL."""
    return None if not console_url else f"{console_url.rstrip('/')}/escalations/{escalation.id}"


def escalation_payload(escalation: Escalation, console_url: str | None = None) -> dict[str, Any]:
    """The JSON document a webhook receives (the context is the redacted one stored with the escalation)."""
    e = escalation
    payload: dict[str, Any] = DEFAULT_REDACTOR(
        {
            "type": "escalation",
            "id": e.id,
            "agent_id": e.agent_id,
            "action": e.action,
            "args_hash": e.args_hash,
            "context": dict(e.context),
            "rule": e.rule,
            "reason": e.reason,
            "status": e.status.value,
            "created": e.created,
            "expires": e.expires,
            "approvers": list(e.approvers),
            "console_url": console_link(e, console_url),
            "resolve": {
                "approve": f"claw-gov escalations approve {e.id} --token TOKEN --notes '...'",
                "deny": f"claw-gov escalations deny {e.id} --token TOKEN --notes '...'",
            },
        }
    )
    return payload


def slack_payload(escalation: Escalation, console_url: str | None = None) -> dict[str, Any]:
    """Slack-compatible blocks (incoming webhooks, Block Kit): the reason and an "Open in console" button."""
    e = escalation
    link = console_link(e, console_url)
    expires = human_utc_minutes(e.expires)
    text = f"Escalation: {e.agent_id} wants {e.action}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": text[:150]}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*Reason:* {e.reason}"[:3000]},
            "fields": [
                {"type": "mrkdwn", "text": f"*Agent:* {e.agent_id}"[:2000]},
                {"type": "mrkdwn", "text": f"*Expires:* {expires}"},
                {"type": "mrkdwn", "text": f"*Rule:* {e.rule or 'none'}"[:2000]},
                {"type": "mrkdwn", "text": f"*Id:* `{e.id}`"},
            ],
        },
    ]
    if link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in console"},
                        "url": link,
                        "style": "primary",
                        "action_id": "open_console",
                    }
                ],
            }
        )
    redacted: dict[str, Any] = DEFAULT_REDACTOR({"text": f"{text}: {e.reason}"[:3000], "blocks": blocks})
    return redacted


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256("id.timestamp.body")>``."""
    raw = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError:
        raise ValueError("the webhook secret must be 'whsec_' followed by base64") from None
    if not key:
        raise ValueError("the webhook secret is empty")
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class _HTTPStatusError(OSError):
    """A response outside 2xx (retried like a network error)."""


class _Stopped(Exception):
    """The notifier is closing: stop retrying."""


class ConsoleNotifier:
    """Prints each new escalation to stderr with the command that resolves it."""

    @hookimpl
    def claw_notify_escalation(self, escalation: Escalation) -> None:
        """One short block on stderr."""
        print(
            f"[claw-governance] escalation {escalation.id}: {safe_text(escalation.agent_id)} wants "
            f"{safe_text(repr(escalation.action))} - {safe_text(redact_text(escalation.reason))}\n"
            f"  resolve: claw-gov escalations approve "
            f"{escalation.id} --token TOKEN --notes '...'",
            file=sys.stderr,
        )


class WebhookNotifier:
    """POSTs each new escalation as JSON to ``url`` from a background thread, with retries and a timeout."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        headers: dict[str, str] | None = None,
        secret: str | None = None,
        format: str = "json",
        console_url: str | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must be http(s), not {url!r}")
        if format not in ("json", "slack"):
            raise ValueError(f"webhook format must be json or slack, not {format!r}")
        if secret is not None:
            sign_webhook(secret, "check", 0, b"")  # a malformed secret fails here, not at the first escalation
        self.url = url
        self.secret = secret
        self.format = format
        self.console_url = console_url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.headers = {"Content-Type": "application/json", "User-Agent": "claw-governance", **(headers or {})}
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._queue: queue.Queue[Escalation | None] = queue.Queue(QUEUE_SIZE)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="claw-webhook", daemon=True)
        self._thread.start()

    @hookimpl
    def claw_notify_escalation(self, escalation: Escalation) -> None:
        """Queue the escalation; returns at once (drops, and counts, when the queue is full)."""
        try:
            self._queue.put_nowait(escalation)
        except queue.Full:
            self.dropped += 1
            self.last_error = "queue full: notification dropped"

    def body(self, escalation: Escalation) -> bytes:
        """The bytes POSTed for ``escalation`` (JSON document or Slack blocks)."""
        make = slack_payload if self.format == "slack" else escalation_payload
        return orjson.dumps(make(escalation, self.console_url), default=str)

    def signed_headers(self, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The request headers, with the Standard Webhooks signature headers when there is a secret."""
        headers = dict(self.headers)
        if self.secret is not None:
            ts = int(time.time()) if timestamp is None else timestamp
            headers.update(
                {
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(ts),
                    "webhook-signature": sign_webhook(self.secret, msg_id, ts, body),
                }
            )
        return headers

    def _post(self, msg_id: str, body: bytes) -> None:
        # signed per attempt: the timestamp is fresh, so a receiver's tolerance window never rejects a retry
        request = urllib.request.Request(self.url, data=body, headers=self.signed_headers(msg_id, body), method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            if not 200 <= response.status < 300:
                raise _HTTPStatusError(f"HTTP {response.status} from the webhook")

    def _retry_wait(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped

    def deliver(self, escalation: Escalation) -> bool:
        """POST one escalation with retries (runs in the background thread). True when delivered."""
        from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

        body = self.body(escalation)
        attempts = 0

        def attempt() -> None:
            nonlocal attempts
            attempts += 1
            try:
                self._post(escalation.id, body)
            except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts are OSErrors
                self.last_error = f"{type(exc).__name__}: {exc}"
                raise

        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential(multiplier=self.backoff, min=self.backoff, max=60),
            retry=retry_if_exception_type((OSError, ValueError)),
            sleep=self._retry_wait,
            reraise=False,
        )
        try:
            retrying(attempt)
        except (RetryError, _Stopped, OSError, ValueError):
            self.failed += 1
            log.warning(
                "escalation webhook failed for %s after %d attempts: %s", escalation.id, attempts, self.last_error
            )
            return False
        self.sent += 1
        self.last_error = None
        return True

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self.deliver(item)
            finally:
                self._queue.task_done()

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every queued notification was attempted (tests, shutdown). True if the queue is empty."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    @hookimpl
    def claw_health(self) -> dict[str, Any]:
        """``{"escalation_webhook": {...}}``: degraded after a failed delivery until the next success."""
        degraded = self.failed > 0 and self.last_error is not None
        return {
            "escalation_webhook": {
                "status": "degraded" if degraded else "ok",
                "url": self.url,
                "sent": self.sent,
                "failed": self.failed,
                "dropped": self.dropped,
                "queued": self._queue.qsize(),
                "last_error": self.last_error,
            }
        }

    @hookimpl
    def claw_shutdown(self) -> None:
        """Give queued notifications up to one timeout to go out, then stop the thread."""
        self.close(self.timeout)

    def close(self, grace: float = 1.0) -> None:
        """Stop the background thread (after ``grace`` seconds at most for what is queued)."""
        self.drain(grace)
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout=grace + 0.5)


def default_notifiers(config: GovernorConfig) -> list[object]:
    """The notifier plugins a governor registers for ``config``: console (``escalation_console``) and a
    webhook (``escalation_webhook_url``)."""
    found: list[object] = []
    if config.escalation_console:
        found.append(ConsoleNotifier())
    if config.escalation_webhook_url:
        found.append(
            WebhookNotifier(
                config.escalation_webhook_url,
                timeout=config.escalation_webhook_timeout,
                retries=config.escalation_webhook_retries,
                secret=config.escalation_webhook_secret,
                format=config.escalation_webhook_format,
                console_url=config.console_url,
            )
        )
    return found
