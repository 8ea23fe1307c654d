"""Console authentication: bearer reviewer tokens, password sessions (server-side), CSRF tokens.

- ``Authorization: Bearer <reviewer token>``: checked against the reviewer registry on every request; no
  cookie is involved, so no CSRF token is needed (a browser never sends this header on its own).
- Password login: a random session id in a cookie (HttpOnly, SameSite=Strict, Secure over HTTPS); the session
  lives in this process only and ends at logout, expiry, or when the reviewer is removed. Each session has
  its own CSRF token, required on every form post and every cookie-authenticated API write (form field
  ``csrf_token`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from claw_governance.errors import AuthenticationError
from claw_governance.escalation.reviewers import Reviewer, ReviewerRegistry

SESSION_COOKIE = "claw_console_session"
LOGIN_CSRF_COOKIE = "claw_console_login"
CSRF_HEADER = "x-csrf-token"
SESSION_SECONDS = 8 * 3600
MAX_SESSIONS = 10_000


@dataclass(frozen=True, slots=True)
class Session:
    """One logged-in reviewer."""

    reviewer: str
    credential_id: str
    csrf: str
    expires: float


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for, and how it authenticated (``via``: "bearer" | "session")."""

    reviewer: Reviewer
    via: str
    csrf: str | None = None
    session_id: str | None = None


class Sessions:
    """Server-side sessions of this console process (a restart logs everyone out)."""

    def __init__(self, reviewers: ReviewerRegistry, lifetime: float = SESSION_SECONDS) -> None:
        self.reviewers = reviewers
        self.lifetime = lifetime
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, reviewer: Reviewer) -> tuple[str, Session]:
        """A new session for a reviewer who just logged in: (session id, session)."""
        sid = secrets.token_urlsafe(32)
        session = Session(reviewer.name, reviewer.credential_id, secrets.token_urlsafe(32), time.time() + self.lifetime)
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                now = time.time()
                self._sessions = {k: v for k, v in self._sessions.items() if v.expires > now}
            self._sessions[sid] = session
        return sid, session

    def end(self, sid: str | None) -> None:
        """Log out."""
        if sid:
            with self._lock:
                self._sessions.pop(sid, None)

    def principal(self, sid: str | None) -> Principal | None:
        """The principal of a live session, re-read from the registry (a removed reviewer is logged out)."""
        if not sid:
            return None
        with self._lock:
            session = self._sessions.get(sid)
        if session is None or session.expires <= time.time():
            self.end(sid)
            return None
        record = self.reviewers.get(session.reviewer)
        if record is None or record.password_hash is None:
            self.end(sid)
            return None
        return Principal(Reviewer.from_record(record, session.credential_id), "session", session.csrf, sid)


def bearer_principal(reviewers: ReviewerRegistry, header: str | None) -> Principal | None:
    """The principal of an ``Authorization: Bearer`` header; AuthenticationError for a bad one, None if absent."""
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("the Authorization header must be 'Bearer <reviewer token>'")
    reviewer = reviewers.authenticate(token.strip())
    if reviewer is None:
        raise AuthenticationError("the bearer token is not a valid reviewer token")
    return Principal(reviewer, "bearer")


def csrf_ok(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token (False when either is missing)."""
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
