"""Review of the core's fail-closed claims: each test here fails if the claim it names were false.

Written by a security review that broke the code on purpose (mutation checks) and found these claims
unguarded by any other test, plus regression tests for the holes it found.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import rfc8785

from claw_governance import Governor, Outcome
from claw_governance.audit import open_trail
from claw_governance.audit.layout import list_segments
from claw_governance.audit.redaction import DEFAULT_REDACTOR, Redactor
from claw_governance.audit.verify import VerifyReport, verify_directory
from claw_governance.config import GovernorConfig
from claw_governance.errors import AuditError, IdentityError, PolicyError
from claw_governance.model import AuditEvent, EscalationStatus, ToolCall
from claw_governance.policy import PolicySet
from claw_governance.state import MemoryStateStore

MakeGov = Callable[..., Governor]
Compile = Callable[..., PolicySet]
ALLOW_ALL = "agent: a\npermissions:\n  allow: ['*']\n  escalate: [refund]\n"


# ------------------------------------------------------------------------------------- decision path


def test_a_deny_condition_that_cannot_be_evaluated_denies_even_when_an_allow_matches(compile_policy: Compile) -> None:
    # test_conditions_fail_closed checks the deny case with nothing else allowing "pay", so a deny that
    # wrongly failed open would still end in the default deny there. Here an allow rule matches too.
    policy = compile_policy(
        "agent: a\npermissions:\n  allow: ['*']\n  deny:\n    - action: pay\n      condition: amount > 500\n"
    )
    for args in ({}, {"amount": "600"}, {"amount": None}, {"amount": [1]}):
        decision = policy.decide(ToolCall("a", "pay", args))
        assert decision.outcome is Outcome.DENY, args
        assert "could not be evaluated" in decision.reason
    assert policy.decide(ToolCall("a", "pay", {"amount": 10})).outcome is Outcome.ALLOW
    assert policy.decide(ToolCall("a", "pay", {"amount": 600})).outcome is Outcome.DENY


def test_pattern_text_around_a_star_is_literal_not_regex(compile_policy: Compile) -> None:
    policy = compile_policy("agent: a\npermissions:\n  allow: ['read:*.txt', 'f(*)+', 'x*a?b', '*[ab]']\n")
    assert policy.decide(ToolCall("a", "read:notes.txt")).outcome is Outcome.ALLOW
    assert policy.decide(ToolCall("a", "read:passwd_txt")).outcome is Outcome.DENY  # "." is not "any"
    assert policy.decide(ToolCall("a", "f(1)+")).outcome is Outcome.ALLOW
    assert policy.decide(ToolCall("a", "f(1)))")).outcome is Outcome.DENY
    assert policy.decide(ToolCall("a", "xyzab")).outcome is Outcome.DENY  # "?" is not optional
    assert policy.decide(ToolCall("a", "xyza?b")).outcome is Outcome.ALLOW
    assert policy.decide(ToolCall("a", "zzza")).outcome is Outcome.DENY  # "[ab]" is no class


def test_an_internal_error_of_the_governor_denies(make_governor: MakeGov, monkeypatch: pytest.MonkeyPatch) -> None:
    gov = make_governor(ALLOW_ALL)
    agent = gov.agent("a")
    assert agent.check("read:x").allowed

    def broken(*args: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(gov, "_facts", broken)
    decision = agent.check("read:x")
    assert decision.outcome is Outcome.DENY and decision.stage == "governor"
    ran: list[int] = []
    assert not agent.execute("read:x", {}, lambda ctx: ran.append(1)).success and not ran


@pytest.mark.parametrize(
    ("plugin", "stage"), [("identity", "identity"), ("policy", "policy"), ("escalation", "escalation")]
)
def test_a_missing_pipeline_plugin_denies(make_governor: MakeGov, plugin: str, stage: str) -> None:
    gov = make_governor(ALLOW_ALL)
    agent = gov.agent("a")
    action = "refund" if plugin == "escalation" else "read:x"
    gov.pm.unregister(name=plugin)  # the pipeline table is rebuilt: that step has no implementation now
    step = {"identity": "claw_verify_identity", "policy": "claw_decide", "escalation": "claw_open_escalation"}[plugin]
    assert step in gov.pipeline.hooked  # (the built-in entry is gone: the hook call, with whatever is left)
    decision = agent.check(action)
    assert decision.outcome is Outcome.DENY and decision.stage == stage, decision
    if plugin == "escalation":
        assert gov.escalations.pending() == []


def test_an_escalation_that_cannot_be_audited_can_never_be_approved(
    make_governor: MakeGov, monkeypatch: pytest.MonkeyPatch
) -> None:
    gov = make_governor(ALLOW_ALL)
    agent = gov.agent("a")
    real = gov.escalations._audit

    def failing(event: AuditEvent) -> None:
        if event.type == "escalation":
            raise AuditError("disk full")
        real(event)

    monkeypatch.setattr(gov.escalations, "_audit", failing)
    assert agent.check("refund", {"amount": 1}).outcome is Outcome.DENY
    assert gov.escalations.pending() == []
    (esc,) = gov.escalations.list_escalations()
    assert esc.status is EscalationStatus.DENIED
    monkeypatch.undo()
    with pytest.raises(Exception, match="already denied"):
        gov.resolve_escalation(esc.id, "approved", resolver=gov.reviewers.ensure("alice"), notes="ok")
    assert agent.check("refund", {"amount": 1}).outcome is Outcome.ESCALATE  # no grant: a new escalation


# ---------------------------------------------------------------------------------------------- redaction


def test_policy_sensitive_fields_are_redacted_even_when_the_value_looks_harmless(make_governor: MakeGov) -> None:
    # The existing test used an SSN as the value, which the SSN detector hides with or without the policy.
    gov = make_governor("agent: a\npermissions: {allow: ['*']}\nsensitive_fields: [favourite_colour]\n")
    gov.agent("a").execute(
        "read:x",
        {"Favourite-Colour": "mauve-harmless", "nested": [{"favourite_colour": "teal"}]},
        lambda ctx: {"favouriteColour": "ochre"},
    )
    text = "\n".join(str(e) for e in gov.audit.entries())
    for secret in ("mauve-harmless", "teal", "ochre"):
        assert secret not in text, secret


def test_tool_output_is_redacted_in_the_trail(make_governor: MakeGov) -> None:
    gov = make_governor(ALLOW_ALL)
    gov.agent("a").execute("read:x", {}, lambda ctx: {"rows": [{"api_key": "plain-output-secret"}]})
    (action,) = [e for e in gov.audit.entries() if e["type"] == "agent_action"]
    assert "plain-output-secret" not in str(action)
    assert action["details"]["output"] == {"rows": [{"api_key": "[REDACTED]"}]}


# ----------------------------------------------------------------------------------------------- verify


def _trail(tmp: Path, n: int, **cfg: Any) -> Any:
    config = GovernorConfig(audit_path=tmp / "audit", state_path=tmp / "state", **cfg)
    trail = open_trail(config, MemoryStateStore())
    for i in range(n):
        trail.append(
            AuditEvent(
                "policy_decision", "a", f"read:{i}", context={"i": i}, decision={"outcome": "allow", "allowed": True}
            )
        )
    return trail


def _rewrite(
    path: Path, edit: Callable[[dict[str, Any]], None], *, rehash: bool = True, prev: str | None = None
) -> str | None:
    """Apply ``edit`` to every entry of a segment, re-chaining with recomputed hashes (as an attacker
    without the governor's key would). Returns the last hash."""
    out = []
    for line in path.read_bytes().splitlines(keepends=True):
        entry = orjson.loads(line)
        entry.pop("hash")
        if prev is not None and rehash:
            entry["prev_hash"] = prev
        edit(entry)
        entry["hash"] = hashlib.sha256(rfc8785.dumps(entry)).hexdigest()
        prev = entry["hash"]
        out.append(orjson.dumps(entry) + b"\n")
    path.chmod(0o644)
    path.write_bytes(b"".join(out))
    return prev


def _verify(folder: Path, trail: Any) -> Any:
    return verify_directory(folder, trusted_keys=[trail.key.public])


def _errors(report: VerifyReport) -> str:
    assert not report.valid, report
    return " | ".join(e["message"] for e in report.errors)


def test_a_rechained_trail_is_caught_by_the_in_log_checkpoint_signatures(tmp_path: Path) -> None:
    # The attacker changes entry 3, recomputes every hash after it, and deletes checkpoint.json (no state
    # store at hand): only the signed checkpoints inside the log are left to catch it.
    trail = _trail(tmp_path, 10, audit_checkpoint_interval=5)
    trail.close()
    (path,) = [p for _, p in list_segments(tmp_path / "audit")]
    (tmp_path / "audit" / "checkpoint.json").unlink()
    original = [orjson.loads(line) for line in path.read_bytes().splitlines()]

    def tamper(entry: dict[str, Any], *, fix_checkpoint: bool) -> None:
        if entry["seq"] == 3:
            entry["context"] = {"i": 999}
        if entry["type"] == "checkpoint" and fix_checkpoint:
            entry["details"]["checkpoint_hash"] = entry["prev_hash"]  # the signature still covers the old hash

    # 1. checkpoint details follow the new chain: the signature no longer matches them
    _rewrite(path, lambda e: tamper(e, fix_checkpoint=True), prev=original[0]["prev_hash"])
    assert "does not match the recomputed Merkle tree" in _errors(_verify(tmp_path / "audit", trail))
    # 2. checkpoint details left as signed: they no longer cover the entry before them
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in original))
    _rewrite(path, lambda e: tamper(e, fix_checkpoint=False), prev=original[0]["prev_hash"])
    assert "does not match the recomputed Merkle tree" in _errors(_verify(tmp_path / "audit", trail))


def test_an_edited_last_checkpoint_is_caught_by_the_outside_anchor(tmp_path: Path) -> None:
    # `created` of a checkpoint is not covered by its signature; the copy outside the log still pins the
    # checkpoint entry's exact hash.
    trail = _trail(tmp_path, 4)
    trail.close()
    (path,) = [p for _, p in list_segments(tmp_path / "audit")]
    lines = path.read_bytes().splitlines(keepends=True)
    last = orjson.loads(lines[-1])
    assert last["type"] == "checkpoint"
    last.pop("hash")
    last["details"]["created"] = 1.0
    last["hash"] = hashlib.sha256(rfc8785.dumps(last)).hexdigest()
    path.chmod(0o644)
    path.write_bytes(b"".join(lines[:-1]) + orjson.dumps(last) + b"\n")
    assert "different hash" in _errors(_verify(tmp_path / "audit", trail))


def test_a_forged_checkpoint_file_is_reported(tmp_path: Path) -> None:
    trail = _trail(tmp_path, 6)
    trail.close()
    folder = tmp_path / "audit"
    (path,) = [p for _, p in list_segments(folder)]
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3]))  # cut the tail, then forge checkpoint.json to match it
    cp = orjson.loads((folder / "checkpoint.json").read_bytes())
    head = orjson.loads(lines[2])
    cp.update(seq=head["seq"], hash=head["hash"])
    (folder / "checkpoint.json").write_bytes(orjson.dumps(cp))
    assert "truncated" in _errors(_verify(folder, trail))


def test_a_forged_retention_record_does_not_excuse_a_deleted_oldest_segment(tmp_path: Path) -> None:
    trail = _trail(tmp_path, 60, audit_rotation_size_mb=0.004)
    trail.close()
    folder = tmp_path / "audit"
    segments = list_segments(folder)
    assert len(segments) > 2
    last_of_first = orjson.loads(segments[0][1].read_bytes().splitlines()[-1])
    record = {
        "trail_id": trail.trail_id,
        "created": time.time(),
        "key_id": trail.key.public.key_id,
        "resume_seq": segments[1][0],
        "resume_prev_hash": last_of_first["hash"],
        "retention_days": 1,
        "removed": [],
        "signature": "AAAA",
    }
    (folder / "retention.jsonl").write_bytes(orjson.dumps(record) + b"\n")
    segments[0][1].unlink()
    assert "not validly signed" in _errors(_verify(folder, trail))


def test_a_chain_must_start_at_this_trails_genesis(tmp_path: Path) -> None:
    trail = _trail(tmp_path, 5)  # still open: no checkpoint yet, so nothing but the genesis pins seq 1
    (path,) = [p for _, p in list_segments(tmp_path / "audit")]
    _rewrite(path, lambda e: None, prev="0" * 64)
    assert "prev_hash" in _errors(_verify(tmp_path / "audit", trail))
    trail.close()


def test_a_renamed_segment_is_reported(tmp_path: Path) -> None:
    trail = _trail(tmp_path, 60, audit_rotation_size_mb=0.004)
    trail.close()
    folder = tmp_path / "audit"
    segments = list_segments(folder)
    first, path = segments[1]
    path.rename(folder / f"segment-{first + 1:012d}.jsonl")  # still sorts in place; the chain is unbroken
    assert "should start at seq" in _errors(_verify(folder, trail))


# ------------------------------------------------------------------------------------------ holes found


def test_an_empty_condition_is_an_error_not_an_unconditional_rule(compile_policy: Compile) -> None:
    # `condition:` with nothing after it is YAML null: silently dropping it would turn a conditional allow
    # into an unconditional one.
    for effect in ("allow", "deny", "escalate"):
        with pytest.raises(PolicyError, match="condition"):
            compile_policy(f"agent: a\npermissions:\n  {effect}:\n    - action: pay\n      condition:\n")


def test_or_inside_a_string_literal_with_an_escaped_quote_is_left_alone(compile_policy: Compile) -> None:
    policy = compile_policy(
        "agent: a\npermissions:\n  allow: ['*']\n  deny:\n    - action: sql\n"
        '      condition: \'query.contains("\\" or 1=1")\'\n'
    )
    assert policy.decide(ToolCall("a", "sql", {"query": 'x" or 1=1'})).outcome is Outcome.DENY
    assert policy.decide(ToolCall("a", "sql", {"query": "select 1"})).outcome is Outcome.ALLOW


def test_a_spelling_variant_of_a_revoked_agent_gets_no_fresh_identity(make_governor: MakeGov) -> None:
    # Policies compare agent ids after NFKC, case folding and trimming; identities must not let "Bot" be a
    # new, unrevoked, full-trust agent that the policy treats as "bot".
    gov = make_governor("agent: bot\npermissions: {allow: ['*']}\n")
    gov.agent("bot")
    gov.identities.revoke("bot", "compromised")
    for variant in ("Bot", "bot ", "ＢＯＴ"):
        with pytest.raises(IdentityError, match="same agent"):
            gov.agent(variant)
        decision = gov.before_call(gov.make_call(variant, "read:x"))  # an adapter's path: no gov.agent()
        assert decision.outcome is Outcome.DENY, (variant, decision)
    assert gov.agent("bot").check("read:x").outcome is Outcome.DENY


def test_records_tuples_and_models_are_redacted_by_their_field_names() -> None:
    Creds = collections.namedtuple("Creds", "user password")

    @dataclasses.dataclass
    class Login:
        user: str
        api_key: str
        inner: Any = None

    class Model:  # the pydantic v2 shape, without importing pydantic
        def __init__(self, **fields: Any) -> None:
            self.fields = fields

        def model_dump(self) -> dict[str, Any]:
            return dict(self.fields)

        def __repr__(self) -> str:
            return f"Model({self.fields!r})"

    value = {
        "a": Creds("u", "hunter2"),
        "b": Login("u", "sk-live-1", Creds("v", "pw2")),
        "c": [Model(token="tok-9", n=1)],
    }
    for redacted in (
        DEFAULT_REDACTOR(value),
        DEFAULT_REDACTOR.for_audit(value),
        DEFAULT_REDACTOR.for_audit(value, strict=True),
        Redactor(["user"]).for_audit(value),
    ):
        text = str(redacted)
        for secret in ("hunter2", "sk-live-1", "pw2", "tok-9"):
            assert secret not in text, (secret, redacted)
    assert DEFAULT_REDACTOR.for_audit(value)["a"] == {"user": "u", "password": "[REDACTED]"}


@pytest.mark.parametrize(
    "key",
    [
        "db_password",
        "OPENAI_API_KEY",
        "github_token",
        "webhookSecret",
        "AWS_SECRET_KEY",
        "user-passphrase",
        "ssh_private_key",
        "session_cookie",
        "csrfToken",
    ],
)
def test_keys_ending_in_a_secret_name_are_redacted(key: str) -> None:
    # Exact names only let the most common real-world spellings through (db_password, OPENAI_API_KEY ...).
    assert DEFAULT_REDACTOR.for_audit({key: "s3cr3t-value"}) == {key: "[REDACTED]"}
    assert DEFAULT_REDACTOR({"x": [{key: "s3cr3t-value"}]}) == {"x": [{key: "[REDACTED]"}]}


@pytest.mark.parametrize("key", ["max_tokens", "token_count", "author", "description", "secretary_name"])
def test_keys_that_only_contain_a_secret_word_are_kept(key: str) -> None:
    assert DEFAULT_REDACTOR({key: 7}) == {key: 7}


@pytest.mark.parametrize(
    "edit",
    [
        # a duplicated key: orjson (last wins) still reads the original, a first-wins reader sees "allowed"
        (b'{"action":', b'{"decision":{"allowed":true,"outcome":"allow"},"action":'),
        (b'"seq":', b' "seq" : '),  # whitespace: same content, other bytes
        (b'"type":"policy_decision"', b'"type":"policy_\\u0064ecision"'),  # an escape that reads the same
    ],
)
def test_a_line_whose_bytes_are_not_what_was_hashed_is_reported(tmp_path: Path, edit: tuple[bytes, bytes]) -> None:
    trail = _trail(tmp_path, 3)
    trail.append(
        AuditEvent(
            "policy_decision",
            "a",
            "delete:users",
            decision={"outcome": "deny", "allowed": False},
            context={"big": 2**60},
        )
    )
    trail.close()
    (path,) = [p for _, p in list_segments(tmp_path / "audit")]
    lines = path.read_bytes().splitlines(keepends=True)
    assert b"delete:users" in lines[3]
    lines[3] = lines[3].replace(*edit, 1)
    path.chmod(0o644)
    path.write_bytes(b"".join(lines))
    report = verify_directory(tmp_path / "audit", trusted_keys=[trail.key.public])
    assert any(e["seq"] == 4 and "not the canonical form" in e["message"] for e in report.errors), report.errors
