"""Reviewers: the humans who may resolve escalations, as principals with credentials, roles and a scope.

A reviewer is registered in the state store (``claw-gov reviewer add``), so every process of a deployment (the
agent, the CLI, the console) sees the same ones. Credentials:

- an API token ``cgr_<token id>_<secret>``, shown once; the store keeps only its SHA-256 (a 256-bit random
  secret needs no slow hash) and the public token id, which is the *credential id* audited with every
  resolution;
- an optional password for the web console, stored as an argon2id hash (``argon2-cffi``).

Separation of duties (``authorize``): a reviewer must hold the ``approver`` or ``admin`` role; no registered
agent identity can be a reviewer (names are checked both at ``add`` and at every resolution, so an agent
created later under a reviewer's name stops that reviewer at once); nobody resolves an escalation of an agent
with their own name; a rule's ``approvers`` (names or groups) and the reviewer's own scope (action and agent
patterns) must both admit the escalation. An agent's key or the OpenClaw bridge's token is not a reviewer
token, so ``authenticate`` returns None for it.

In-process code that holds the Governor (and so the state store itself) may act as a registered reviewer
with ``gov.reviewers.principal("alice")``; the credential id is then ``"in-process"``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from claw_governance.errors import ConfigError, ReviewerForbidden
from claw_governance.model import Escalation
from claw_governance.policy.patterns import glob_match, normalize
from claw_governance.state.base import ReviewerRecord, StateStore

ROLES = ("approver", "admin")
TOKEN_PREFIX = "cgr_"
IN_PROCESS = "in-process"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,127}$")
_TOKEN = re.compile(r"^cgr_([0-9a-f]{16})_([A-Za-z0-9_-]{20,128})$")
if TYPE_CHECKING:
    from argon2 import PasswordHasher


@functools.cache
def _hasher() -> PasswordHasher:
    """argon2id with the library's current recommended parameters (imported on first use)."""
    from argon2 import PasswordHasher

    return PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so a login takes as long as a wrong password (made on first
    use: hashing costs tens of milliseconds, which importing the package must not pay)."""
    return _hasher().hash(secrets.token_urlsafe(16))


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str, what: str = "reviewer name") -> str:
    """The normalised (lower-case) name, or ConfigError naming what is wrong."""
    if not isinstance(name, str):
        raise ConfigError(f"{what} must be text, not {type(name).__name__}")
    clean = name.strip().lower()
    if not _NAME.match(clean):
        raise ConfigError(
            f"{what} {name!r} must be 1-128 characters of a-z 0-9 . _ @ + - (starting with a letter or digit)"
        )
    return clean


@dataclass(frozen=True, slots=True)
class Reviewer:
    """An authenticated reviewer: what ``authenticate``/``login``/``principal`` return and resolutions take."""

    name: str
    roles: tuple[str, ...]
    groups: tuple[str, ...] = ()
    scope_actions: tuple[str, ...] = ()
    scope_agents: tuple[str, ...] = ()
    credential_id: str = IN_PROCESS  # "token:<id>", "password:<name>" or "in-process"

    @property
    def is_admin(self) -> bool:
        """True for the ``admin`` role (may also revoke and reinstate agents in the console)."""
        return "admin" in self.roles

    @classmethod
    def from_record(cls, record: ReviewerRecord, credential_id: str) -> Reviewer:
        """The principal of a stored reviewer, authenticated with ``credential_id``."""
        return cls(
            record.name,
            tuple(record.roles),
            tuple(record.groups),
            tuple(record.scope_actions),
            tuple(record.scope_agents),
            credential_id,
        )

    def agent_refusal(self, agent_id: str) -> str | None:
        """Why this reviewer may NOT act for ``agent_id`` at all (roles, same name, agent scope), or None: the
        part of :meth:`refusal` that does not depend on an escalation (an operator binding a job, say)."""
        if not set(self.roles) & set(ROLES):
            return f"reviewer {self.name!r} has no approver role"
        if normalize(self.name) == normalize(agent_id):
            return f"reviewer {self.name!r} cannot act for the agent with the same name"
        if self.scope_agents and not any(glob_match(normalize(p), normalize(agent_id)) for p in self.scope_agents):
            return f"agent {agent_id!r} is outside reviewer {self.name!r}'s scope"
        return None

    def refusal(self, escalation: Escalation) -> str | None:
        """Why this reviewer may NOT resolve ``escalation`` (roles, approvers, scope, self), or None."""
        if not set(self.roles) & set(ROLES):
            return f"reviewer {self.name!r} has no approver role"
        if normalize(self.name) == normalize(escalation.agent_id):
            return f"reviewer {self.name!r} cannot resolve an escalation of the agent with the same name"
        if escalation.approvers:
            mine = {self.name, *self.groups}
            if not mine & set(escalation.approvers):
                return f"reviewer {self.name!r} is not among the rule's approvers ({', '.join(escalation.approvers)})"
        if self.scope_actions and not any(
            glob_match(normalize(p), normalize(escalation.action)) for p in self.scope_actions
        ):
            return f"action {escalation.action!r} is outside reviewer {self.name!r}'s scope"
        if self.scope_agents and not any(
            glob_match(normalize(p), normalize(escalation.agent_id)) for p in self.scope_agents
        ):
            return f"agent {escalation.agent_id!r} is outside reviewer {self.name!r}'s scope"
        return None


class ReviewerRegistry:
    """Adds, lists, removes reviewers, rotates their tokens, authenticates credentials, authorizes resolutions.

    ``is_agent(name)`` says whether a name belongs to a registered agent identity (such a name can never be a
    reviewer).
    """

    def __init__(self, store: StateStore, is_agent: Callable[[str], bool]) -> None:
        self.store = store
        self._is_agent = is_agent

    # -------------------------------------------------------------------------------------- management

    def add(
        self,
        name: str,
        *,
        roles: Iterable[str] = ("approver",),
        groups: Iterable[str] = (),
        actions: Iterable[str] = (),
        agents: Iterable[str] = (),
        password: str | None = None,
    ) -> tuple[ReviewerRecord, str]:
        """Register a reviewer; returns the record and the API token (shown once, never stored)."""
        clean = check_name(name)
        if self._is_agent(clean):
            raise ConfigError(f"{clean!r} is an agent identity; an agent can never be a reviewer")
        role_set = tuple(sorted({r.strip().lower() for r in roles}))
        bad = [r for r in role_set if r not in ROLES]
        if bad or not role_set:
            raise ConfigError(f"roles must be among {', '.join(ROLES)}, not {', '.join(bad) or 'none'}")
        group_set = tuple(sorted({check_name(g, "group name") for g in groups}))
        token_id, token = self._new_token()
        now = time.time()
        record = ReviewerRecord(
            clean,
            role_set,
            group_set,
            tuple(a.strip() for a in actions if a.strip()),
            tuple(a.strip() for a in agents if a.strip()),
            token_id,
            _token_digest(token),
            self._hash_password(password) if password is not None else None,
            now,
            now,
        )
        if not self.store.put_reviewer(record):
            raise ConfigError(f"reviewer {clean!r} already exists (rotate its token or remove it first)")
        return record, token

    def list(self) -> list[ReviewerRecord]:
        """Every reviewer, by name."""
        return self.store.list_reviewers()

    def get(self, name: str) -> ReviewerRecord | None:
        """One reviewer's record, or None."""
        try:
            return self.store.get_reviewer(check_name(name))
        except ConfigError:
            return None

    def remove(self, name: str) -> None:
        """Delete a reviewer; ConfigError if unknown."""
        if not self.store.delete_reviewer(check_name(name)):
            raise ConfigError(f"no reviewer named {name!r}")

    def rotate_token(self, name: str) -> str:
        """A new API token for ``name`` (the old one stops working at once); returns it (shown once)."""
        record = self._require(name)
        token_id, token = self._new_token()
        self.store.replace_reviewer(
            replace(record, token_id=token_id, token_hash=_token_digest(token), updated=time.time())
        )
        return token

    def set_password(self, name: str, password: str) -> None:
        """Set (or replace) the web-login password of ``name``."""
        record = self._require(name)
        self.store.replace_reviewer(replace(record, password_hash=self._hash_password(password), updated=time.time()))

    # ---------------------------------------------------------------------------------- authentication

    def authenticate(self, token: str | None) -> Reviewer | None:
        """The reviewer whose current API token this is, or None (any other string: agent keys, bridge tokens)."""
        if not token:
            return None
        match = _TOKEN.match(token.strip())
        if match is None:
            return None
        record = self.store.reviewer_by_token(match.group(1))
        if record is None or record.token_hash is None:
            return None
        if not hmac.compare_digest(record.token_hash, _token_digest(token.strip())):
            return None
        return Reviewer.from_record(record, f"token:{record.token_id}")

    def login(self, name: str, password: str) -> Reviewer | None:
        """The reviewer if ``password`` is theirs (argon2 verify), else None. Same cost for unknown names."""
        record = self.get(name) if isinstance(name, str) else None
        stored = record.password_hash if record is not None and record.password_hash else _dummy_hash()
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            _hasher().verify(stored, password)
        except (VerificationError, InvalidHashError):  # VerifyMismatchError is a VerificationError
            return None
        if record is None or not record.password_hash:
            return None
        return Reviewer.from_record(record, f"password:{record.name}")

    def principal(self, name: str, credential_id: str = IN_PROCESS) -> Reviewer:
        """A registered reviewer as a principal for in-process code (which holds the state store anyway).

        ReviewerForbidden for an unknown name or an agent identity's name."""
        if not isinstance(name, str) or not name.strip():
            raise ReviewerForbidden("a resolution needs a registered reviewer (resolver=...)")
        if self._is_agent(name.strip()) or self._is_agent(name.strip().lower()):
            raise ReviewerForbidden(f"{name.strip()!r} is an agent identity; an agent can never resolve escalations")
        record = self.get(name)
        if record is None:
            raise ReviewerForbidden(
                f"{name.strip()!r} is not a registered reviewer (add one with `claw-gov reviewer add NAME`)"
            )
        return Reviewer.from_record(record, credential_id)

    def ensure(self, name: str, **settings: Any) -> Reviewer:
        """The in-process principal of reviewer ``name``, registering it first (with ``settings`` as for
        ``add``) when it does not exist yet. For scripts and tests that hold the Governor; refuses agent ids."""
        if self.get(name) is None:
            try:
                self.add(name, **settings)
            except ConfigError:
                if self.get(name) is None:  # not a lost race with another process: a real error
                    raise
        return self.principal(name)

    def authorize(self, reviewer: Reviewer, escalation: Escalation) -> None:
        """Raise ReviewerForbidden unless ``reviewer`` may resolve ``escalation`` (re-read from the store, so a
        removed reviewer or a narrowed scope takes effect at once)."""
        if not isinstance(reviewer, Reviewer):
            raise ReviewerForbidden(
                "a resolution needs a Reviewer principal (gov.reviewers.authenticate(token) or "
                "gov.reviewers.principal(name))"
            )
        if self._is_agent(reviewer.name):
            raise ReviewerForbidden(f"{reviewer.name!r} is an agent identity; an agent can never resolve escalations")
        record = self.store.get_reviewer(reviewer.name)
        if record is None:
            raise ReviewerForbidden(f"reviewer {reviewer.name!r} is no longer registered")
        if reviewer.credential_id.startswith("token:") and reviewer.credential_id != f"token:{record.token_id}":
            raise ReviewerForbidden(f"the token of reviewer {reviewer.name!r} was rotated")
        current = Reviewer.from_record(record, reviewer.credential_id)
        reason = current.refusal(escalation)
        if reason is not None:
            raise ReviewerForbidden(reason)

    # ----------------------------------------------------------------------------------------- helpers

    def _require(self, name: str) -> ReviewerRecord:
        record = self.get(name)
        if record is None:
            raise ConfigError(f"no reviewer named {name!r}")
        return record

    @staticmethod
    def _new_token() -> tuple[str, str]:
        token_id = secrets.token_hex(8)
        return token_id, f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"

    @staticmethod
    def _hash_password(password: str) -> str:
        if not isinstance(password, str) or len(password) < 8:
            raise ConfigError("a reviewer password needs at least 8 characters")
        return _hasher().hash(password)
