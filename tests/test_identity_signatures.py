"""Signed calls: missing / malformed / wrong cost trust; replay and stale are denied; rotation; revocation."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from claw_governance import Governor
from claw_governance.identity import keys as K
from claw_governance.identity import signing_payload
from claw_governance.model import Outcome, Signature, ToolCall

FAST = {"identity_scrypt_log2_n": 14, "state_sync_interval": 0.1}
POLICY = """\
agent: bot
permissions:
  allow: ["read:*"]
trust: {min_score: 50, recovery_score: 80}
"""


@pytest.fixture
def gov(make_governor: Callable[..., Governor]) -> Governor:
    g = make_governor(POLICY, require_signature=True, **FAST)
    g.agent("bot")
    return g


def sign_as(
    gov: Governor, call: ToolCall, timestamp: float, key: K.PrivateKey | None = None, key_id: str | None = None
) -> ToolCall:
    loaded = gov.identities.load_private_key(call.agent_id)
    nonce = os.urandom(16).hex()
    value = K.sign(key or loaded.key, signing_payload(call.agent_id, call.action, call.args_hash, nonce, timestamp))
    return dataclasses.replace(call, signature=Signature(K.b64e(value), nonce, timestamp, key_id or loaded.key_id))


def test_a_signed_call_is_allowed(gov: Governor) -> None:
    call = gov.make_call("bot", "read:x", {"id": 1})
    assert call.signature is not None and len(call.signature.nonce) == 32
    assert gov.before_call(call).allowed
    assert gov.trust_score("bot") == 100


def test_missing_signature_is_denied_and_costs_trust(gov: Governor) -> None:
    d = gov.before_call(ToolCall("bot", "read:x", {}))
    assert (d.outcome, d.stage) == (Outcome.DENY, "identity") and "unsigned" in d.reason
    assert gov.trust_score("bot") == 90


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: dataclasses.replace(s, value="%%% not base64"),
        lambda s: dataclasses.replace(s, nonce="short"),
        lambda s: dataclasses.replace(s, timestamp=float("nan")),
        lambda s: dataclasses.replace(s, value=123),
    ],
)
def test_malformed_signature_is_denied_and_costs_trust(gov: Governor, mutate: Callable[[Signature], Signature]) -> None:
    call = gov.make_call("bot", "read:x", {})
    assert call.signature is not None
    d = gov.before_call(dataclasses.replace(call, signature=mutate(call.signature)))
    assert d.outcome is Outcome.DENY and "Malformed" in d.reason
    assert gov.trust_score("bot") == 90


def test_wrong_signature_is_denied_and_costs_trust(gov: Governor) -> None:
    call = gov.make_call("bot", "read:x", {"amount": 1})
    tampered = dataclasses.replace(call, args={"amount": 1000})  # arguments changed after signing
    d = gov.before_call(tampered)
    assert d.outcome is Outcome.DENY and "Invalid signature" in d.reason
    forged = sign_as(gov, ToolCall("bot", "read:x", {}), time.time(), key=K.generate_key())
    assert "Invalid signature" in gov.before_call(forged).reason
    unknown = sign_as(gov, ToolCall("bot", "read:x", {}), time.time(), key_id="f" * 32)
    assert "unknown key" in gov.before_call(unknown).reason
    assert gov.trust_score("bot") == 70


def test_replayed_nonce_is_denied_without_penalty_even_in_another_governor(
    gov: Governor, make_governor: Callable[..., Governor]
) -> None:
    call = gov.make_call("bot", "read:x", {})
    assert gov.before_call(call).allowed
    again = gov.before_call(call)
    assert again.outcome is Outcome.DENY and "Replayed" in again.reason
    other = make_governor(POLICY, require_signature=True, **FAST)  # same state file, its own connection
    assert "Replayed" in other.before_call(call).reason
    assert gov.trust_score("bot") == 100


def test_stale_or_future_timestamp_is_denied_without_penalty(gov: Governor) -> None:
    old = sign_as(gov, ToolCall("bot", "read:x", {}), time.time() - 301)
    d = gov.before_call(old)
    assert d.outcome is Outcome.DENY and "Stale signature" in d.reason
    future = sign_as(gov, ToolCall("bot", "read:x", {}), time.time() + 3600)
    assert "in the future" in gov.before_call(future).reason
    assert gov.trust_score("bot") == 100


def test_rotation_keeps_old_public_keys_for_old_signatures(gov: Governor) -> None:
    before = gov.make_call("bot", "read:x", {})  # signed with the first key
    old_key = gov.identities.load_private_key("bot")
    gov.identities.rotate("bot", by="ops", reason="scheduled")
    keys = gov.identities.keys("bot")
    assert len(keys) == 2 and keys[0].retired is not None and keys[1].retired is None
    assert gov.before_call(before).allowed  # made before the rotation: still verifies
    after = sign_as(gov, ToolCall("bot", "read:x", {}), time.time(), key=old_key.key, key_id=old_key.key_id)
    d = gov.before_call(after)
    assert d.outcome is Outcome.DENY and "retired" in d.reason  # the old key cannot sign new calls
    assert gov.before_call(gov.make_call("bot", "read:x", {})).allowed  # the new key signs
    assert [e["details"]["event"] for e in gov.audit.query(type="identity")][-1] == "rotated"


def test_unknown_agents_are_denied(make_governor: Callable[..., Governor]) -> None:
    g = make_governor(POLICY, auto_create_identity=False, **FAST)
    g.agent("bot")
    d = g.before_call(ToolCall("bot", "read:x", {}))
    assert d.outcome is Outcome.DENY and "no identity" in d.reason
    g.identities.create("bot")
    assert g.before_call(ToolCall("bot", "read:x", {})).allowed


def test_identity_created_elsewhere_is_known_at_once(make_governor: Callable[..., Governor]) -> None:
    a = make_governor(POLICY, auto_create_identity=False, state_sync_interval=30)
    b = make_governor(POLICY, auto_create_identity=False, state_sync_interval=30)
    a.identities.create("bot")
    assert b.before_call(ToolCall("bot", "read:x", {})).allowed  # no waiting for b's next sync


def test_revocation_by_another_process_takes_effect_within_the_sync_interval(
    make_governor: Callable[..., Governor], tmp_path: Path
) -> None:
    interval = 0.2
    g = make_governor(POLICY, state_sync_interval=interval)
    agent = g.agent("bot")
    assert agent.check("read:x").allowed
    cmd = [
        sys.executable,
        "-m",
        "claw_governance.cli",
        "identity",
        "revoke",
        "bot",
        "--reason",
        "leaked key",
        "--by",
        "sec@example.com",
        "--policies",
        str(tmp_path / "policies"),
        "--audit",
        str(tmp_path / "cli-audit"),
        "--identities",
        str(tmp_path / "identities"),
    ]
    done = subprocess.run(
        [sys.executable, "-c", "from claw_governance.cli import main; main()", *cmd[3:]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    revoked_at = time.monotonic()
    while agent.check("read:x").allowed:
        assert time.monotonic() - revoked_at < interval + 1.0, "revocation not seen in time"
        time.sleep(0.02)
    assert "revoked" in agent.check("read:x").reason
