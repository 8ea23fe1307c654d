"""Reviewers as principals (issue 16): registry, credentials, separation of duties, edits, timed grants, respond."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from claw_governance import Governor
from claw_governance.errors import (
    ConfigError,
    EscalationClosed,
    EscalationInputError,
    EscalationNotFound,
    PolicyError,
    ReviewerForbidden,
)
from claw_governance.escalation.reviewers import Reviewer
from claw_governance.model import EscalationStatus, Outcome
from claw_governance.state.memory import MemoryStateStore
from claw_governance.state.sqlite import MIGRATIONS, SQLiteStateStore

POLICY = """\
agent: bot
permissions:
  allow: ["read:*"]
  deny:
    - action: refund
      condition: amount > 5000
  escalate:
    - action: refund
      condition: amount > 500
      reason: Refunds over $500 need finance approval
      approvers: [finance]
      max_grant: 30m
    - action: wipe
      approvers: [alice]
    - action: deploy
sensitive_fields: [customer_pin]
"""


@pytest.fixture
def gov(make_governor: Callable[..., Governor]) -> Governor:
    return make_governor(POLICY, state_sync_interval=0.1)


def _refund(gov: Governor, amount: int = 600, **extra: object) -> str:
    d = gov.agent("bot").check("refund", {"orderId": "A-1", "amount": amount, **extra})
    assert d.outcome is Outcome.ESCALATE and d.escalation_id
    return d.escalation_id


# ----------------------------------------------------------------------------------------------- registry


def test_token_is_shown_once_and_stored_as_a_hash_password_as_argon2(gov: Governor, tmp_path: Path) -> None:
    record, token = gov.reviewers.add("Carol@Example.com", groups=["finance"], password="correct horse")
    assert record.name == "carol@example.com" and token.startswith("cgr_")
    assert record.password_hash is not None and record.password_hash.startswith("$argon2id$")
    raw = (tmp_path / "identities" / ".state" / "state.db").read_bytes()
    assert token.encode() not in raw and b"correct horse" not in raw
    me = gov.reviewers.authenticate(token)
    assert me is not None and me.name == "carol@example.com" and me.credential_id == f"token:{record.token_id}"
    assert gov.reviewers.login("carol@example.com", "correct horse") is not None
    assert gov.reviewers.login("carol@example.com", "wrong horse!") is None
    assert gov.reviewers.login("nobody", "correct horse") is None
    new = gov.reviewers.rotate_token("carol@example.com")
    assert gov.reviewers.authenticate(token) is None and gov.reviewers.authenticate(new) is not None
    with pytest.raises(ConfigError, match="already exists"):
        gov.reviewers.add("carol@example.com")
    gov.reviewers.remove("carol@example.com")
    assert gov.reviewers.authenticate(new) is None and gov.reviewers.list() == []


def test_strings_that_are_not_reviewer_tokens_authenticate_nobody(gov: Governor) -> None:
    _, token = gov.reviewers.add("alice")
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    key = gov.identities.ensure("bot")
    for candidate in (
        "",
        "bridge-token-0123456789abcdef",
        tampered,
        token + "x",
        token.replace("cgr_", "cgx_"),
        str(key),
        "Bearer " + token,
    ):
        assert gov.reviewers.authenticate(candidate) is None


def test_an_agent_can_never_be_a_reviewer(gov: Governor) -> None:
    gov.agent("bot")
    with pytest.raises(ConfigError, match="agent identity"):
        gov.reviewers.add("bot")
    eid = _refund(gov)
    with pytest.raises(ReviewerForbidden, match="agent identity"):
        gov.resolve_escalation(eid, "approved", notes="self", resolver="bot")
    with pytest.raises(ReviewerForbidden, match="not a registered reviewer"):
        gov.resolve_escalation(eid, "approved", notes="who?", resolver="mallory")
    # a reviewer whose name becomes an agent's later loses the right at once
    gov.reviewers.add("deployer")
    gov.agent("deployer")
    d = gov.agent("bot").check("deploy")
    with pytest.raises(ReviewerForbidden):
        gov.resolve_escalation(
            d.escalation_id or "", "approved", notes="mine", resolver=Reviewer("deployer", ("approver",))
        )
    assert gov.escalations.get(eid).status is EscalationStatus.PENDING  # type: ignore[union-attr]


def test_self_approval_is_refused_even_for_a_forged_principal(gov: Governor) -> None:
    eid = gov.agent("bot").check("deploy").escalation_id or ""
    forged = Reviewer("bot", ("admin",))
    with pytest.raises(ReviewerForbidden):
        gov.resolve_escalation(eid, "approved", notes="me", resolver=forged)
    unregistered = Reviewer("eve", ("admin",))
    with pytest.raises(ReviewerForbidden, match="no longer registered"):
        gov.resolve_escalation(eid, "approved", notes="me", resolver=unregistered)


def test_rule_approvers_and_reviewer_scope(gov: Governor) -> None:
    gov.reviewers.add("fred", groups=["finance"])
    gov.reviewers.add("bob")
    gov.reviewers.add("alice", actions=["wipe"])
    gov.reviewers.add("scoped", groups=["finance"], agents=["other-*"])
    eid = _refund(gov)
    with pytest.raises(ReviewerForbidden, match="not among the rule's approvers"):
        gov.resolve_escalation(eid, "approved", notes="ok", resolver="bob")
    with pytest.raises(ReviewerForbidden, match="outside reviewer 'scoped'"):
        gov.resolve_escalation(eid, "approved", notes="ok", resolver="scoped")
    with pytest.raises(ReviewerForbidden):
        gov.resolve_escalation(eid, "approved", notes="ok", resolver="alice")  # not finance, and scope is wipe
    done = gov.resolve_escalation(eid, "approved", notes="checked the order", resolver="fred")
    assert done.resolver == "fred" and done.credential_id == "in-process"
    wipe = gov.agent("bot").check("wipe").escalation_id or ""
    with pytest.raises(ReviewerForbidden):
        gov.resolve_escalation(wipe, "approved", notes="ok", resolver="fred")
    assert gov.resolve_escalation(wipe, "denied", notes="no", resolver="alice").status is EscalationStatus.DENIED


def test_notes_are_required_and_every_resolution_audits_reviewer_and_credential(gov: Governor) -> None:
    _, token = gov.reviewers.add("fred", groups=["finance"])
    eid = _refund(gov)
    for notes in ("", "   "):
        with pytest.raises(EscalationInputError, match="notes are required"):
            gov.resolve_escalation(eid, "approved", notes=notes, resolver="fred")
    me = gov.reviewers.authenticate(token)
    assert me is not None
    gov.resolve_escalation(eid, "approved", notes="verified by phone", resolver=me)
    (entry,) = gov.audit.query(type="escalation_resolved")
    details = entry["details"]
    assert details["resolver"] == "fred" and details["credential_id"] == me.credential_id
    assert details["notes"] == "verified by phone" and details["grant"]["kind"] == "one-shot"
    with pytest.raises(EscalationClosed, match="already approved"):
        gov.resolve_escalation(eid, "denied", notes="again", resolver=me)
    with pytest.raises(EscalationNotFound):
        gov.resolve_escalation("0" * 32, "denied", notes="?", resolver=me)


def test_policy_approvers_and_max_grant_are_validated(compile_policy: Callable[..., object]) -> None:
    with pytest.raises(PolicyError, match=r"approvers only applies to escalate rules"):
        compile_policy("agent: a\npermissions:\n  allow:\n    - action: x\n      approvers: [a]\n")
    with pytest.raises(PolicyError, match=r"policy.yaml:5: .*approvers must be a non-empty list"):
        compile_policy("agent: a\npermissions:\n  escalate:\n    - action: x\n      approvers: []\n")
    with pytest.raises(PolicyError, match=r"max_grant must be a duration"):
        compile_policy("agent: a\npermissions:\n  escalate:\n    - action: x\n      max_grant: soon\n")


# -------------------------------------------------------------------------------------- edit and approve


def test_edit_and_approve_binds_the_grant_to_the_edited_args_and_audits_both(gov: Governor) -> None:
    gov.reviewers.add("fred", groups=["finance"])
    agent = gov.agent("bot")
    original = {"orderId": "A-1", "amount": 900, "customer_pin": "1234"}
    runs: list[dict[str, object]] = []
    result: dict[str, object] = {}

    def wait() -> None:
        r = agent.execute("refund", original, lambda c: runs.append(c) or "done", wait_for_approval=30)
        result["r"] = r

    t = threading.Thread(target=wait)
    t.start()
    while not gov.escalations.pending():
        time.sleep(0.01)
    eid = gov.escalations.pending()[0].id
    edited = {"orderId": "A-1", "amount": 600, "customer_pin": "1234"}
    done = gov.resolve_escalation(eid, "approved", notes="partial refund", resolver="fred", args=edited)
    t.join(30)
    assert runs == [edited] and result["r"].success  # type: ignore[attr-defined]
    assert done.edited_args_hash is not None and done.edited_args_hash != done.args_hash
    # the grant was for the edited call, and it is used up; the original call is still not approved
    assert agent.check("refund", original).outcome is Outcome.ESCALATE
    assert agent.check("refund", edited).outcome is Outcome.ESCALATE
    (entry,) = gov.audit.query(type="escalation_resolved")
    edit = entry["details"]["edit"]
    assert edit["original_args"]["amount"] == 900 and edit["edited_args"]["amount"] == 600
    assert edit["diff"] == [{"path": "/amount", "op": "changed", "old": 900, "new": 600}]
    assert "1234" not in str(entry)


def test_an_edit_that_the_policy_denies_is_refused_and_the_escalation_stays_pending(gov: Governor) -> None:
    gov.reviewers.add("fred", groups=["finance"])
    eid = _refund(gov)
    with pytest.raises(EscalationInputError, match="denied by policy"):
        gov.resolve_escalation(eid, "approved", notes="more", resolver="fred", args={"orderId": "A-1", "amount": 9000})
    with pytest.raises(EscalationInputError, match=r"\[REDACTED\]"):
        gov.resolve_escalation(eid, "approved", notes="x", resolver="fred", args={"customer_pin": "[REDACTED]"})
    with pytest.raises(EscalationInputError, match="JSON object"):
        gov.resolve_escalation(eid, "approved", notes="x", resolver="fred", args=[1, 2])  # type: ignore[arg-type]
    assert gov.escalations.get(eid).status is EscalationStatus.PENDING  # type: ignore[union-attr]
    assert not gov.state.list_grants(time.time())


# --------------------------------------------------------------------------------------- approve for N


def test_approve_for_is_a_standing_grant_bounded_by_max_grant_and_revocable(gov: Governor) -> None:
    gov.reviewers.add("fred", groups=["finance"])
    agent = gov.agent("bot")
    eid = _refund(gov)
    with pytest.raises(EscalationInputError, match="exceeds the rule's max_grant"):
        gov.resolve_escalation(eid, "approved", notes="long", resolver="fred", for_seconds=3600)
    with pytest.raises(EscalationInputError, match="positive"):
        gov.resolve_escalation(eid, "approved", notes="neg", resolver="fred", for_seconds=-1)
    done = gov.resolve_escalation(eid, "approved", notes="batch of refunds", resolver="fred", for_seconds=600)
    assert done.grant_until is not None and 590 < done.grant_until - time.time() <= 600
    for amount in (600, 700, 800):  # any arguments, many times
        assert agent.check("refund", {"orderId": "B", "amount": amount}).outcome is Outcome.ALLOW
    assert agent.check("refund", {"amount": 6000}).outcome is Outcome.DENY  # deny rules still win
    assert agent.check("deploy").outcome is Outcome.ESCALATE  # same agent, other action: not covered
    assert gov.escalations.revoke_grant(eid, gov.reviewers.principal("fred"), "enough", gov.reviewers)
    assert agent.check("refund", {"orderId": "B", "amount": 600}).outcome is Outcome.ESCALATE


def test_approve_for_needs_a_rule_max_grant(gov: Governor) -> None:
    gov.reviewers.add("ops")
    eid = gov.agent("bot").check("deploy").escalation_id or ""
    with pytest.raises(EscalationInputError, match="no max_grant"):
        gov.resolve_escalation(eid, "approved", notes="for a while", resolver="ops", for_seconds=60)


# ---------------------------------------------------------------------------------------------- respond


def test_respond_denies_with_a_message_for_the_model(gov: Governor) -> None:
    gov.reviewers.add("ops")
    out: dict[str, object] = {}
    t = threading.Thread(
        target=lambda: out.update(
            r=gov.agent("bot").execute("deploy", {"v": 2}, lambda c: pytest.fail("must not run"), wait_for_approval=30)
        )
    )
    t.start()
    while not gov.escalations.pending():
        time.sleep(0.01)
    eid = gov.escalations.pending()[0].id
    with pytest.raises(EscalationInputError, match="only applies to a denial"):
        gov.resolve_escalation(eid, "approved", notes="x", resolver="ops", message="hi")
    gov.resolve_escalation(eid, "denied", notes="freeze", resolver="ops", message="Deploys are frozen until Monday")
    t.join(30)
    r = out["r"]
    assert not r.success and "Deploys are frozen until Monday" in r.decision.reason  # type: ignore[attr-defined]
    (entry,) = gov.audit.query(type="escalation_resolved")
    assert entry["details"]["message"] == "Deploys are frozen until Monday"


# ------------------------------------------------------------------------------------------------ stores


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    made = MemoryStateStore() if request.param == "memory" else SQLiteStateStore(tmp_path / "s.db")
    yield made
    made.close()


def test_store_reviewer_methods_and_standing_grants(store: object) -> None:
    from claw_governance.model import Escalation
    from claw_governance.state.base import Resolution, ReviewerRecord

    s = store  # the same assertions for every implementation
    assert s.put_reviewer(ReviewerRecord("a", token_id="t1", token_hash="h"))  # type: ignore[attr-defined]
    assert not s.put_reviewer(ReviewerRecord("a"))  # type: ignore[attr-defined]
    assert s.reviewer_by_token("t1").name == "a"  # type: ignore[attr-defined]
    assert s.replace_reviewer(ReviewerRecord("a", token_id="t2", token_hash="h2"))  # type: ignore[attr-defined]
    assert s.reviewer_by_token("t1") is None  # type: ignore[attr-defined]
    assert [r.name for r in s.list_reviewers()] == ["a"]  # type: ignore[attr-defined]
    now = time.time()
    s.put_escalation(
        Escalation(
            "e1",
            "bot",
            "refund",
            "h1",
            {},
            None,
            "r",
            EscalationStatus.PENDING,
            now,  # type: ignore[attr-defined]
            now + 60,
            approvers=("finance",),
            max_grant=600.0,
            call_id="c1",
        )
    )
    got = s.get_escalation("e1")  # type: ignore[attr-defined]
    assert got.approvers == ("finance",) and got.max_grant == 600.0 and got.call_id == "c1"
    done = s.settle_escalation(
        "e1",
        Resolution(
            EscalationStatus.APPROVED,
            "a",
            "n",
            "token:t2",  # type: ignore[attr-defined]
            now + 300,
            standing=True,
        ),
        now,
    )
    assert done.grant_until == now + 300 and done.credential_id == "token:t2"
    assert s.consume_grant("bot", "refund", "h1", now) is None  # type: ignore[attr-defined]  # not one-shot
    assert s.use_standing_grant("bot", "refund", now) == "e1"  # type: ignore[attr-defined]
    assert s.use_standing_grant("bot", "refund", now) == "e1"  # type: ignore[attr-defined]  # not consumed
    assert s.revoke_grant("e1", now)  # type: ignore[attr-defined]
    assert s.use_standing_grant("bot", "refund", now) is None  # type: ignore[attr-defined]
    with pytest.raises(EscalationClosed):
        s.settle_escalation("e1", Resolution(EscalationStatus.DENIED, "a", "n"), now)  # type: ignore[attr-defined]
    assert s.delete_reviewer("a") and not s.delete_reviewer("a")  # type: ignore[attr-defined]


def test_sqlite_migrates_a_version_1_file(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[0][1]:
        db.execute(statement)
    db.execute("INSERT INTO escalations VALUES ('e1','bot','x','h','{}',NULL,'r','pending',1.0,9e9,NULL,NULL,NULL)")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    store = SQLiteStateStore(path)
    try:
        assert store.schema_version == MIGRATIONS[-1][0]
        old = store.get_escalation("e1")
        assert old is not None and old.approvers == () and old.max_grant is None
    finally:
        store.close()
