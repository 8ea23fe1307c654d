"""Escalation notifiers (``claw_notify_escalation``): console and webhook.

A notifier never blocks or breaks the decision path: the escalation is already stored when it is called.
The webhook notifier only puts the escalation on a bounded in-memory queue; one background thread POSTs
it (JSON, ``timeout`` seconds per attempt, ``retries`` more attempts with exponential back-off). When the
endpoint is down the notification is dropped after the last attempt and counted in ``claw_health``.
"""

from __future__ import annotations

import contextlib
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

log = logging.getLogger("claw_governance.escalation")

QUEUE_SIZE = 1000


def escalation_payload(escalation: Escalation) -> dict[str, Any]:
    """The JSON document a webhook receives (the context is the redacted one stored with the escalation)."""
    e = escalation
    payload: dict[str, Any] = DEFAULT_REDACTOR({
            "type": "escalation", "id": e.id, "agent_id": e.agent_id, "action": e.action,
            "args_hash": e.args_hash, "context": dict(e.context), "rule": e.rule, "reason": e.reason,
            "status": e.status.value, "created": e.created, "expires": e.expires,
            "resolve": {"approve": f"claw-gov escalations approve {e.id} --resolver YOU --notes '...'",
                        "deny": f"claw-gov escalations deny {e.id} --resolver YOU --notes '...'"}})
    return payload


class ConsoleNotifier:
    """Prints each new escalation to stderr with the command that resolves it."""

    @hookimpl
    def claw_notify_escalation(self, escalation: Escalation) -> None:
        """One short block on stderr."""
        print(f"[claw-governance] escalation {escalation.id}: {safe_text(escalation.agent_id)} wants "
              f"{safe_text(repr(escalation.action))} - {safe_text(redact_text(escalation.reason))}\n"
              f"  resolve: claw-gov escalations approve "
              f"{escalation.id} --resolver YOU --notes '...'", file=sys.stderr)


class WebhookNotifier:
    """POSTs each new escalation as JSON to ``url`` from a background thread, with retries and a timeout."""

    def __init__(self, url: str, *, timeout: float = 5.0, retries: int = 3, backoff: float = 0.5,
                 headers: dict[str, str] | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must be http(s), not {url!r}")
        self.url = url
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

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            if not 200 <= response.status < 300:
                raise urllib.error.HTTPError(self.url, response.status, "unexpected status", response.headers, None)

    def deliver(self, escalation: Escalation) -> bool:
        """POST one escalation with retries (runs in the background thread). True when delivered."""
        body = orjson.dumps(escalation_payload(escalation), default=str)
        for attempt in range(self.retries + 1):
            try:
                self._post(body)
            except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts are OSErrors
                self.last_error = f"{type(exc).__name__}: {exc}"
                if attempt < self.retries and not self._stop.wait(self.backoff * (2 ** attempt)):
                    continue
                self.failed += 1
                log.warning("escalation webhook failed for %s after %d attempts: %s", escalation.id,
                            attempt + 1, self.last_error)
                return False
            self.sent += 1
            self.last_error = None
            return True
        return False

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
        return {"escalation_webhook": {"status": "degraded" if degraded else "ok", "url": self.url,
                                       "sent": self.sent, "failed": self.failed, "dropped": self.dropped,
                                       "queued": self._queue.qsize(), "last_error": self.last_error}}

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
        found.append(WebhookNotifier(config.escalation_webhook_url, timeout=config.escalation_webhook_timeout,
                                     retries=config.escalation_webhook_retries))
    return found
