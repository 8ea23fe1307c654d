"""Agent identities: Ed25519 keys, call signatures, revocation and reinstatement.

Public records (key ids, public keys, status) live in the state store, shared by every process; private
keys live in ``<identity_path>/<agent>.key`` (0600, encrypted with ``CLAW_IDENTITY_PASSPHRASE`` when set;
see ``identity.keys``), or in memory when there is no identity path.

Verification without signatures is two set lookups on a cached view (``identity.shared``); a revocation
made by another process is seen within ``config.state_sync_interval`` seconds (1 s by default); one made
in this process at once.

With ``require_signature=True`` a call must carry ``Signature(value, nonce, timestamp, key_id)`` over
``signing_payload(agent_id, action, args_hash, nonce, timestamp)`` by a key of the agent that was valid at
``timestamp`` (a rotated-out key still verifies what it signed before its rotation). Missing, malformed or
wrong: DENY with a trust penalty. Stale (more than ``signature_max_age_seconds`` off the clock) or a nonce
seen before (in any process): DENY without penalty.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from claw_governance.config import GovernorConfig
from claw_governance.errors import IdentityError
from claw_governance.identity import keys as K
from claw_governance.identity.shared import SharedState
from claw_governance.keys import PublicKey
from claw_governance.keys import key_id as public_key_id
from claw_governance.model import AuditEvent, IdentityVerdict, Signature, ToolCall
from claw_governance.policy import PolicySet, TrustSettings
from claw_governance.policy.names import forbidden_character, skeleton_keys
from claw_governance.state.base import ACTIVE, REVOKED, IdentityRecord, KeyRecord, StateStore

log = logging.getLogger("claw_governance.identity")

SIGNATURE_VERSION = "claw-sig/1"
_OK = IdentityVerdict(True)
_MAX_NONCE = 128


def signing_payload(agent_id: str, action: str, args_hash: str, nonce: str, timestamp: float) -> bytes:
    """The bytes an agent signs: the JSON array ``["claw-sig/1", agent, action, args_hash, nonce, ts]``."""
    return orjson.dumps([SIGNATURE_VERSION, agent_id, action, args_hash, nonce, timestamp])


@dataclasses.dataclass(frozen=True, slots=True)
class _PublicKey:
    key: PublicKey
    created: float
    retired: float | None


class IdentityRegistry:
    """Creates, loads, rotates, revokes and reinstates identities; verifies and signs calls."""

    def __init__(self, config: GovernorConfig, store: StateStore, audit: Callable[[AuditEvent], Any]) -> None:
        self.config = config
        self.store = store
        self._audit = audit
        self._shared = SharedState.for_store(store, config.state_sync_interval)
        self._lock = threading.Lock()
        self._public: dict[str, dict[str, _PublicKey]] = {}
        self._signers: dict[str, K.LoadedKey] = {}
        self._memory_keys: dict[str, K.LoadedKey] = {}  # private keys when there is no identity path
        self._shared.on_identity_change.append(self._forget)

    # --------------------------------------------------------------------------------------- lookups

    def key_path(self, agent_id: str) -> Path | None:
        """Where the agent's private key file is (None: keys are kept in memory)."""
        if self.config.identity_path is None:
            return None
        return self.config.identity_path / K.key_file_name(agent_id)

    def get(self, agent_id: str) -> IdentityRecord | None:
        """The stored identity, or None."""
        return self.store.get_identity(agent_id)

    def require(self, agent_id: str) -> IdentityRecord:
        """The stored identity; IdentityError if there is none."""
        record = self.store.get_identity(agent_id)
        if record is None:
            raise IdentityError(f"no identity for agent {agent_id!r}")
        return record

    def list_identities(self) -> list[IdentityRecord]:
        """Every identity."""
        return self.store.list_identities()

    def keys(self, agent_id: str) -> list[KeyRecord]:
        """Every public key of the agent, retired ones included."""
        return self.store.keys(agent_id)

    def is_revoked(self, agent_id: str) -> bool:
        """Whether the agent is revoked, as this process currently sees it."""
        return agent_id in self._shared.revoked

    def _forget(self, agent_id: str) -> None:
        with self._lock:
            self._public.pop(agent_id, None)
            self._signers.pop(agent_id, None)

    # -------------------------------------------------------------------------------------- creation

    def ensure(self, agent_id: str) -> None:
        """Create the agent's identity if it does not exist and auto-creation is on."""
        if agent_id in self._shared.known or not self.config.auto_create_identity:
            return
        if self.store.get_identity(agent_id) is not None:
            self._shared.refresh_identities()
            return
        try:
            self.create(agent_id)
        except IdentityError:
            if self.store.get_identity(agent_id) is None:  # not a lost creation race: a real failure
                raise
            self._shared.refresh_identities()

    def create(
        self,
        agent_id: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        private_key: K.PrivateKey | None = None,
        created_by: str | None = None,
    ) -> IdentityRecord:
        """Create an identity with a new Ed25519 key (or ``private_key``, an imported Ed25519/RSA key)."""
        if not isinstance(agent_id, str) or not agent_id.strip():
            raise IdentityError(f"agent id must be a non-empty string, not {agent_id!r}")
        bad = forbidden_character(agent_id)
        if bad is not None:
            raise IdentityError(
                f"agent id {agent_id!r} contains {bad}: refused (such characters are never stripped or ignored)"
            )
        # Policies compare agent ids after NFKC, case folding and trimming: "Bot" gets the rules of "bot". A
        # second identity under such a variant, or under a look-alike ("bоt" with a Cyrillic о, "b0t"), would
        # pass for the same agent to a human and to the policy, but be a fresh, unrevoked, full-trust one to the
        # identity and trust steps, so it is refused: ids are compared by their UTS #39 confusable skeleton.
        canonical = skeleton_keys(agent_id)
        for other in self.store.list_identities():
            if other.agent_id != agent_id and skeleton_keys(other.agent_id) & canonical:
                state = " (revoked)" if other.revoked else ""
                raise IdentityError(
                    f"agent id {agent_id!r} looks like the existing agent {other.agent_id!r}{state}, "
                    "the same agent to the policies and to a human (ids are compared by their Unicode "
                    "confusable skeleton, after NFKC, case folding and trimming): "
                    f"use {other.agent_id!r}"
                )
        key = private_key if private_key is not None else K.generate_key()
        der = K.public_der(key)
        key_id, algorithm, now = public_key_id(der), K.algorithm_of(key), time.time()
        record = IdentityRecord(agent_id, key_id, ACTIVE, now, now, None, 1, dict(metadata or {}))
        key_record = KeyRecord(key_id, agent_id, algorithm, K.b64e(der), now)
        path = self.key_path(agent_id)
        tmp: Path | None = None
        if path is not None:  # sealed before the store knows the identity: no window without a key file
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.new")
            K.write_key_file(tmp, self._seal(agent_id, key_id, key))
        try:
            if not self.store.create_identity(record, key_record):
                raise IdentityError(f"identity {agent_id!r} already exists")
        except BaseException:
            if tmp is not None:
                K.with_suppress_unlink(tmp)
            raise
        if path is not None and tmp is not None:
            if path.exists():  # a key file no store knows of: keep it aside, never silently destroy a key
                os.replace(path, path.with_name(f"{path.name}.orphaned-{int(now)}"))
            os.replace(tmp, path)
        else:
            self._memory_keys[agent_id] = K.LoadedKey(key_id, algorithm, key, False)
        self._shared.note_identity(agent_id, ACTIVE, record.version)
        self._audit(
            AuditEvent(
                "identity",
                agent_id,
                details={
                    "event": "created",
                    "key_id": key_id,
                    "algorithm": algorithm,
                    "imported": private_key is not None,
                    "encrypted": bool(self.config.identity_passphrase) and path is not None,
                    "by": created_by,
                    "metadata": dict(metadata or {}),
                },
            )
        )
        return record

    def _seal(self, agent_id: str, key_id: str, key: K.PrivateKey) -> bytes:
        return K.seal_key(agent_id, key_id, key, self.config.identity_passphrase, self.config.identity_scrypt_log2_n)

    # ------------------------------------------------------------------------------------ key changes

    def rotate(self, agent_id: str, *, by: str | None = None, reason: str | None = None) -> IdentityRecord:
        """A new Ed25519 key becomes current; the old public key is kept (retired) for old signatures."""
        old = self.require(agent_id)
        key = K.generate_key()
        der = K.public_der(key)
        key_id, now = public_key_id(der), time.time()
        self.store.add_key(KeyRecord(key_id, agent_id, "ed25519", K.b64e(der), now))
        path = self.key_path(agent_id)
        if path is not None:
            K.write_key_file(path, self._seal(agent_id, key_id, key))
        else:
            self._memory_keys[agent_id] = K.LoadedKey(key_id, "ed25519", key, False)
        record = self.store.activate_key(agent_id, key_id, now)
        if record is None:
            raise IdentityError(f"identity {agent_id!r} disappeared during rotation")
        self._shared.note_identity(agent_id, record.status, record.version)
        self._audit(
            AuditEvent(
                "identity",
                agent_id,
                details={"event": "rotated", "old_key_id": old.key_id, "key_id": key_id, "by": by, "reason": reason},
            )
        )
        return record

    def revoke(self, agent_id: str, reason: str, by: str | None = None) -> IdentityRecord:
        """Revoke: every call of the agent is denied until a human reinstates it. Idempotent."""
        current = self.require(agent_id)
        if current.revoked:
            self._shared.note_identity(agent_id, REVOKED, current.version)
            return current
        record = self.store.set_identity_status(agent_id, REVOKED, reason, time.time())
        if record is None:
            raise IdentityError(f"no identity for agent {agent_id!r}")
        self._shared.note_identity(agent_id, REVOKED, record.version)
        self._audit(AuditEvent("identity", agent_id, details={"event": "revoked", "reason": reason, "by": by}))
        return record

    def reinstate(
        self, agent_id: str, by: str | None = None, reason: str | None = None, recovery_score: int | None = None
    ) -> IdentityRecord:
        """Undo a revocation and set the trust score to ``recovery_score`` (policy ``trust.recovery_score``)."""
        current = self.require(agent_id)
        if not current.revoked:
            raise IdentityError(f"identity {agent_id!r} is not revoked")
        score = TrustSettings().recovery_score if recovery_score is None else int(recovery_score)
        change = self._shared.set_trust(agent_id, score)
        record = self.store.set_identity_status(agent_id, ACTIVE, reason, time.time())
        if record is None:
            raise IdentityError(f"no identity for agent {agent_id!r}")
        self._shared.note_identity(agent_id, ACTIVE, record.version)
        self._audit(
            AuditEvent(
                "trust_change",
                agent_id,
                details={
                    "old": change.old,
                    "new": change.new,
                    "delta": change.new - change.old,
                    "reason": f"reinstated by {by or 'unknown'}",
                },
            )
        )
        self._audit(
            AuditEvent(
                "identity",
                agent_id,
                details={"event": "reinstated", "by": by, "reason": reason, "trust_score": change.new},
            )
        )
        return record

    # ----------------------------------------------------------------------------------- private keys

    def load_private_key(self, agent_id: str) -> K.LoadedKey:
        """The agent's current private key (checked permissions, decrypted, matched to the store)."""
        record = self.require(agent_id)
        path = self.key_path(agent_id)
        if path is None:
            loaded = self._memory_keys.get(agent_id)
            if loaded is None:
                raise IdentityError(f"no private key for {agent_id!r} in this process (no identity_path)")
        else:
            loaded = K.read_key_file(path, agent_id, self.config.identity_passphrase)
        if loaded.key_id != record.key_id:
            raise IdentityError(
                f"{path or agent_id}: key file holds key {loaded.key_id[:12]}, but the current "
                f"key is {record.key_id[:12]} (interrupted rotation? run identity rotate)"
            )
        return loaded

    def sign_call(self, call: ToolCall) -> ToolCall:
        """A copy of ``call`` signed with the agent's current key (fresh nonce, current time)."""
        with self._lock:
            signer = self._signers.get(call.agent_id)
        if signer is None:
            signer = self.load_private_key(call.agent_id)
            with self._lock:
                self._signers[call.agent_id] = signer
        nonce, timestamp = os.urandom(16).hex(), time.time()
        value = K.sign(signer.key, signing_payload(call.agent_id, call.action, call.args_hash, nonce, timestamp))
        return dataclasses.replace(call, signature=Signature(K.b64e(value), nonce, timestamp, signer.key_id))

    # ---------------------------------------------------------------------------------- verification

    def verify(self, call: ToolCall, policy: PolicySet) -> IdentityVerdict:
        """May this agent act at all? Known, not revoked and, when required, a valid fresh signature."""
        agent_id = call.agent_id
        shared = self._shared
        if agent_id not in shared.known:
            record = self.store.get_identity(agent_id)  # created by another process since the last sync?
            if record is None:
                return IdentityVerdict(False, f'Unknown agent "{agent_id}": no identity')
            shared.note_identity(agent_id, record.status, record.version)
        if agent_id in shared.revoked:
            return IdentityVerdict(False, f'Identity of "{agent_id}" is revoked')
        if not self.config.require_signature:
            return _OK
        return self._verify_signature(call)

    def _public_keys(self, agent_id: str, reload: bool = False) -> dict[str, _PublicKey]:
        with self._lock:
            found = None if reload else self._public.get(agent_id)
        if found is None:
            found = {
                k.key_id: _PublicKey(K.load_public(k.public_key), k.created, k.retired)
                for k in self.store.keys(agent_id)
            }
            with self._lock:
                self._public[agent_id] = found
        return found

    def _verify_signature(self, call: ToolCall) -> IdentityVerdict:
        sig = call.signature
        if sig is None:
            return IdentityVerdict(False, "Signature required but the call is unsigned", trust_penalty=True)
        if (
            not isinstance(sig.value, str)
            or not isinstance(sig.nonce, str)
            or not 16 <= len(sig.nonce) <= _MAX_NONCE
            or isinstance(sig.timestamp, bool)
            or not isinstance(sig.timestamp, int | float)
            or not math.isfinite(sig.timestamp)
            or not isinstance(sig.key_id, str | None)
        ):
            return IdentityVerdict(
                False, "Malformed signature (value, nonce of 16-128 characters, timestamp)", trust_penalty=True
            )
        try:
            raw = K.b64d(sig.value)
        except ValueError:
            return IdentityVerdict(False, "Malformed signature (not base64)", trust_penalty=True)
        keys = self._public_keys(call.agent_id)
        key_id = sig.key_id
        if key_id is None:
            record = self.store.get_identity(call.agent_id)
            key_id = record.key_id if record is not None else None
        if key_id not in keys:
            keys = self._public_keys(call.agent_id, reload=True)  # rotated by another process just now?
        public = keys.get(key_id) if key_id is not None else None
        if public is None:
            return IdentityVerdict(
                False, f'Signature by an unknown key ({str(key_id)[:16]}) for "{call.agent_id}"', trust_penalty=True
            )
        payload = signing_payload(call.agent_id, call.action, call.args_hash, sig.nonce, float(sig.timestamp))
        if not public.key.verify(raw, payload):
            return IdentityVerdict(
                False, "Invalid signature: not made by the agent's key over this call", trust_penalty=True
            )
        if public.retired is not None and sig.timestamp >= public.retired:
            return IdentityVerdict(
                False,
                f"Signature by key {key_id[:12] if key_id else ''}, retired before the signature's time",
                trust_penalty=True,
            )
        max_age = self.config.signature_max_age_seconds
        age = time.time() - sig.timestamp
        if age > max_age:
            return IdentityVerdict(False, f"Stale signature: {age:.0f}s old, limit {max_age:.0f}s")
        if age < -max_age:
            return IdentityVerdict(False, f"Signature timestamp is {-age:.0f}s in the future")
        if not self.store.use_nonce(call.agent_id, sig.nonce, sig.timestamp + max_age + 1.0):
            return IdentityVerdict(False, "Replayed signature: this nonce was already used")
        return _OK

    def health(self) -> dict[str, Any]:
        """Status of the identity/trust sync for ``health_check()``."""
        shared = self._shared
        return {
            "status": "degraded" if shared.last_error else "ok",
            "identities": len(shared.known),
            "revoked": len(shared.revoked),
            "last_sync": shared.last_sync,
            "last_error": shared.last_error,
            "sync_interval": shared.interval,
            "require_signature": self.config.require_signature,
        }

    def close(self) -> None:
        """Flush pending trust deltas (audited) and stop the sync thread. Call before the audit trail closes."""
        self._shared.close()
        with self._lock:
            self._signers.clear()
