"""Job tokens: JWTs (RFC 7519) signed with EdDSA (RFC 8037, Ed25519) by the governor's own key.

A token binds one job to one agent, a scope (action patterns) and, when pinned, one policy set hash. It is
verified with PyJWT, and any JOSE implementation can check it with the governor's public key (the ``kid``
header is the key id that ``claw-gov audit public-key`` prints). Claims:

``iss``          ``claw-governance``
``sub``          the agent id
``jti``          a unique token id (a retry mints a new one; the job then refuses the old token)
``iat`` / ``exp`` issued-at and expiry (seconds since the epoch)
``job``          the job id
``scope``        the action patterns the job may use
``scope_hash``   SHA-256 of the RFC 8785 canonical JSON of the sorted, normalised scope
``policy_hash``  the pinned policy set hash, or null when the job is not pinned
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from claw_governance.audit.canonical import jcs_dumps
from claw_governance.errors import ClawGovernanceError
from claw_governance.keys import PublicKey

ISSUER = "claw-governance"
ALGORITHM = "EdDSA"


class JobTokenError(ClawGovernanceError):
    """A job token that cannot be trusted (malformed, unknown key, bad signature, expired)."""


def scope_hash(scope: Iterable[str]) -> str:
    """The hash a token carries for its scope: order and duplicates do not matter."""
    return hashlib.sha256(jcs_dumps(sorted(set(scope)))).hexdigest()


def new_token_id() -> str:
    """A fresh, unguessable token id (``jti``)."""
    return secrets.token_urlsafe(18)


@dataclass(frozen=True, slots=True)
class JobClaims:
    """What a verified job token says."""

    job_id: str
    agent_id: str
    scope: tuple[str, ...]
    scope_hash: str
    policy_hash: str | None
    issued_at: int
    expires_at: int
    token_id: str
    key_id: str

    def as_dict(self) -> dict[str, Any]:
        """The JWT claims (what proof bundles show instead of the token itself)."""
        return {
            "iss": ISSUER,
            "sub": self.agent_id,
            "jti": self.token_id,
            "iat": self.issued_at,
            "exp": self.expires_at,
            "job": self.job_id,
            "scope": list(self.scope),
            "scope_hash": self.scope_hash,
            "policy_hash": self.policy_hash,
            "kid": self.key_id,
        }


def mint(claims: JobClaims, private_key: Ed25519PrivateKey) -> str:
    """Sign ``claims`` into a compact JWS."""
    payload = claims.as_dict()
    payload.pop("kid")
    return jwt.encode(payload, private_key, algorithm=ALGORITHM, headers={"kid": claims.key_id, "typ": "JWT"})


def verify(token: str, keys: Mapping[str, PublicKey], *, leeway: float = 0.0) -> JobClaims:
    """Check signature, issuer and expiry with a trusted key (by ``kid``, under any of its ids: see
    ``claw_governance.keys.by_alias``); JobTokenError says why not."""
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > 8192:
        raise JobTokenError("job token is not a compact JWT")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise JobTokenError(f"job token is malformed ({type(exc).__name__})") from None
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise JobTokenError("job token has no key id (kid)")
    key = keys.get(kid)
    if key is None or key.algorithm != "ed25519":
        raise JobTokenError("job token is signed by a key this governor does not trust")
    if header.get("alg") != ALGORITHM:
        raise JobTokenError(f"job token uses alg {header.get('alg')!r}; only {ALGORITHM} is accepted")
    try:
        payload = jwt.decode(
            token,
            key.crypto,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            leeway=leeway,
            options={"require": ["iss", "sub", "jti", "iat", "exp", "job", "scope", "scope_hash"]},
        )
    except jwt.ExpiredSignatureError:
        raise JobTokenError("job token has expired") from None
    except jwt.PyJWTError as exc:
        raise JobTokenError(f"job token is invalid ({type(exc).__name__}: {exc})") from None
    scope = payload.get("scope")
    if not isinstance(scope, list) or not all(isinstance(s, str) for s in scope):
        raise JobTokenError("job token scope must be a list of action patterns")
    if scope_hash(scope) != payload["scope_hash"]:
        raise JobTokenError("job token scope does not match its scope_hash")
    pinned = payload.get("policy_hash")
    if pinned is not None and not isinstance(pinned, str):
        raise JobTokenError("job token policy_hash must be a string or null")
    for claim in ("sub", "jti", "job"):
        if not isinstance(payload[claim], str) or not payload[claim]:
            raise JobTokenError(f"job token claim {claim!r} must be a non-empty string")
    return JobClaims(
        payload["job"],
        payload["sub"],
        tuple(scope),
        payload["scope_hash"],
        pinned,
        int(payload["iat"]),
        int(payload["exp"]),
        payload["jti"],
        kid,
    )
