"""The console's JSON API and pages through a real ASGI client: every status code, separation of duties, CSRF."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from claw_governance import Governor
from claw_governance.console.app import create_app
from claw_governance.model import EscalationStatus, Outcome

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
    - action: deploy
sensitive_fields: [customer_pin]
"""
BRIDGE_TOKEN = "bridge-token-0123456789abcdef0123"


@pytest.fixture
def gov(make_governor: Callable[..., Governor]) -> Governor:
    return make_governor(POLICY)


@pytest.fixture
def client(gov: Governor) -> Iterator[TestClient]:
    with TestClient(create_app(gov), base_url="http://127.0.0.1") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refund(gov: Governor, amount: int = 600) -> str:
    d = gov.agent("bot").check("refund", {"orderId": "A-1", "amount": amount, "customer_pin": "1234"})
    assert d.outcome is Outcome.ESCALATE and d.escalation_id
    return d.escalation_id


def login(client: TestClient, name: str, password: str) -> str:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token.group(1), "next": "/"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    inbox = client.get("/")
    found = re.search(r'name="csrf_token" value="([^"]+)"', inbox.text)
    assert found
    return found.group(1)


def test_every_status_code_of_the_api(gov: Governor, client: TestClient) -> None:
    _, fred = gov.reviewers.add("fred", groups=["finance"])
    _, bob = gov.reviewers.add("bob")
    eid = refund(gov)
    # 401: nothing, a malformed header, a token that is not a reviewer's
    assert client.get("/api/escalations").status_code == 401
    for header in ({"Authorization": "Basic Zm9vOmJhcg=="}, bearer("cgr_0000000000000000_" + "x" * 43)):
        r = client.get("/api/escalations", headers=header)
        assert r.status_code == 401 and list(r.json()) == ["detail"] and "\n" not in r.json()["detail"]
    # 200 list and get; redacted arguments only
    listed = client.get("/api/escalations?status=pending", headers=bearer(fred)).json()["escalations"]
    assert [e["id"] for e in listed] == [eid] and listed[0]["args"]["customer_pin"] != "1234"
    assert listed[0]["time_left"] and listed[0]["approvers"] == ["finance"]
    assert client.get(f"/api/escalations/{eid}", headers=bearer(fred)).json()["status"] == "pending"
    # 404
    r = client.get(f"/api/escalations/{'0' * 32}", headers=bearer(fred))
    assert r.status_code == 404 and "no escalation" in r.json()["detail"]
    assert (
        client.post(f"/api/escalations/{'0' * 32}/approve", json={"notes": "x"}, headers=bearer(fred)).status_code
        == 404
    )
    # 422: missing notes, bad JSON, unknown field, grant over max_grant, edit the policy denies, bad status filter
    for body in (
        {},
        {"notes": "  "},
        {"notes": "x", "for_seconds": 7200},
        {"notes": "x", "bogus": 1},
        {"notes": "x", "args": {"orderId": "A-1", "amount": 9000}},
    ):
        r = client.post(f"/api/escalations/{eid}/approve", json=body, headers=bearer(fred))
        assert r.status_code == 422, (body, r.text)
    assert client.post(f"/api/escalations/{eid}/approve", content=b"{nope", headers=bearer(fred)).status_code == 422
    assert client.get("/api/escalations?status=weird", headers=bearer(fred)).status_code == 422
    # 403: a reviewer outside the rule's approvers
    r = client.post(f"/api/escalations/{eid}/approve", json={"notes": "ok"}, headers=bearer(bob))
    assert r.status_code == 403 and "approvers" in r.json()["detail"]
    # 200 approve, then 409 for a second resolution
    r = client.post(f"/api/escalations/{eid}/approve", json={"notes": "checked"}, headers=bearer(fred))
    assert r.status_code == 200 and r.json()["status"] == "approved" and r.json()["resolver"] == "fred"
    assert r.json()["credential_id"].startswith("token:")
    r = client.post(f"/api/escalations/{eid}/deny", json={"notes": "late"}, headers=bearer(fred))
    assert r.status_code == 409 and "already approved" in r.json()["detail"]
    assert (
        gov.agent("bot").check("refund", {"orderId": "A-1", "amount": 600, "customer_pin": "1234"}).outcome
        is Outcome.ALLOW
    )


def test_deny_with_message_and_approve_for(gov: Governor, client: TestClient) -> None:
    _, fred = gov.reviewers.add("fred", groups=["finance"])
    first, second = refund(gov, 700), refund(gov, 800)
    r = client.post(
        f"/api/escalations/{first}/deny",
        json={"notes": "no", "message": "Ask the customer first"},
        headers=bearer(fred),
    )
    assert r.status_code == 200 and r.json()["message"] == "Ask the customer first"
    r = client.post(
        f"/api/escalations/{second}/approve", json={"notes": "batch", "for_seconds": 600}, headers=bearer(fred)
    )
    assert r.status_code == 200 and r.json()["grant_until"]
    assert gov.agent("bot").check("refund", {"amount": 999}).outcome is Outcome.ALLOW
    r = client.post(f"/api/escalations/{second}/revoke-grant", json={"notes": "done"}, headers=bearer(fred))
    assert r.status_code == 200
    assert gov.agent("bot").check("refund", {"amount": 999}).outcome is Outcome.ESCALATE


def test_separation_of_duties_agent_bridge_and_self(gov: Governor, client: TestClient) -> None:
    gov.reviewers.add("fred", groups=["finance"])
    eid = refund(gov)
    agent_key = gov.identities.ensure("bot")
    # an agent id, its key material, and the bridge's token are not reviewer credentials: 401
    for credential in ("bot", str(agent_key), BRIDGE_TOKEN):
        r = client.post(f"/api/escalations/{eid}/approve", json={"notes": "me"}, headers=bearer(credential))
        assert r.status_code == 401, credential
    # a reviewer record named like the agent, forged straight into the store (the registry refuses to add it)
    import hashlib

    from claw_governance.state.base import ReviewerRecord

    gov.state.delete_reviewer("fred")
    forged = "cgr_" + "b" * 16 + "_" + "s" * 43
    gov.state.put_reviewer(
        ReviewerRecord(
            "bot", ("admin",), ("finance",), token_id="b" * 16, token_hash=hashlib.sha256(forged.encode()).hexdigest()
        )
    )
    r = client.post(f"/api/escalations/{eid}/approve", json={"notes": "self"}, headers=bearer(forged))
    assert r.status_code == 403 and "agent identity" in r.json()["detail"]
    # an out-of-scope reviewer
    _, narrow = gov.reviewers.add("narrow", groups=["finance"], actions=["read:*"])
    r = client.post(f"/api/escalations/{eid}/approve", json={"notes": "x"}, headers=bearer(narrow))
    assert r.status_code == 403 and "scope" in r.json()["detail"]
    assert gov.escalations.get(eid).status is EscalationStatus.PENDING  # type: ignore[union-attr]


def test_self_approval_by_a_reviewer_named_like_the_agent_is_403(gov: Governor, client: TestClient) -> None:
    _, token = gov.reviewers.add("bot2", groups=["finance"])
    d = gov.agent("bot2")  # an agent created later with the reviewer's name
    assert d.agent_id == "bot2"
    eid = refund(gov)
    r = client.post(f"/api/escalations/{eid}/approve", json={"notes": "x"}, headers=bearer(token))
    assert r.status_code == 403 and "agent identity" in r.json()["detail"]


def test_session_login_csrf_and_cookie_flags(gov: Governor, client: TestClient) -> None:
    gov.reviewers.add("fred", groups=["finance"], password="correct horse battery")
    eid = refund(gov)
    assert client.get("/", follow_redirects=False).status_code == 303  # to /login
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    bad = client.post("/login", data={"name": "fred", "password": "wrong password", "csrf_token": token})
    assert bad.status_code == 401
    r = client.post(
        "/login",
        data={"name": "fred", "password": "correct horse battery", "csrf_token": token},
        follow_redirects=False,
    )
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text).group(1)  # type: ignore[union-attr]
    # API write with the session cookie but without the CSRF header: refused
    r = client.post(f"/api/escalations/{eid}/approve", json={"notes": "ok"})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    # form without / with a wrong token: refused, nothing resolved
    for given in ({}, {"csrf_token": "x" * 43}):
        r = client.post(f"/escalations/{eid}/resolve", data={"kind": "approve", "notes": "ok", **given})
        assert r.status_code == 403
    assert gov.escalations.get(eid).status is EscalationStatus.PENDING  # type: ignore[union-attr]
    r = client.post(f"/api/escalations/{eid}/approve", json={"notes": "ok"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["credential_id"] == "password:fred"


def test_pages_render_for_a_logged_in_reviewer(gov: Governor, client: TestClient) -> None:
    gov.reviewers.add("admin", roles=["admin"], groups=["finance"], password="correct horse battery")
    eid = refund(gov)
    csrf = login(client, "admin", "correct horse battery")
    inbox = client.get("/")
    assert eid in inbox.text and "Refunds over $500" in inbox.text and "1234" not in inbox.text
    detail = client.get(f"/escalations/{eid}")
    assert 'id="edit-form"' in detail.text and 'id="for-form"' in detail.text and 'id="respond-form"' in detail.text
    r = client.post(
        f"/escalations/{eid}/resolve",
        data={"kind": "approve_edit", "notes": "half", "args": '{"orderId": "A-1", "amount": 550}', "csrf_token": csrf},
    )
    assert r.status_code == 200 and "approved" in r.text and "550" in r.text and 'id="diff"' in r.text
    assert client.get("/agents").status_code == 200 and "bot" in client.get("/agents").text
    r = client.post("/agents/bot/revoke", data={"reason": "compromised", "csrf_token": csrf})
    assert r.status_code == 200 and gov.state.get_identity("bot").revoked  # type: ignore[union-attr]
    audit = client.get("/audit?type=escalation_resolved")
    assert audit.status_code == 200 and "Verified" in audit.text and "escalation_resolved" in audit.text
    assert gov.policy.hash in client.get("/policy").text


def test_agent_actions_need_admin(gov: Governor, client: TestClient) -> None:
    gov.agent("bot")
    _, plain = gov.reviewers.add("plain")
    _, boss = gov.reviewers.add("boss", roles=["admin"])
    r = client.post("/api/agents/bot/revoke", json={"reason": "x"}, headers=bearer(plain))
    assert r.status_code == 403
    assert client.post("/api/agents/bot/revoke", json={}, headers=bearer(boss)).status_code == 422
    assert client.post("/api/agents/nobody/revoke", json={"reason": "x"}, headers=bearer(boss)).status_code == 404
    assert client.post("/api/agents/bot/revoke", json={"reason": "x"}, headers=bearer(boss)).status_code == 200
    assert client.post("/api/agents/bot/reinstate", json={"reason": "ok"}, headers=bearer(boss)).status_code == 200
    denied = client.get("/api/audit?outcome=deny&type=policy_decision", headers=bearer(plain)).json()["entries"]
    assert all(e["decision"]["outcome"] == "deny" for e in denied)
    assert client.get("/api/audit?outcome=maybe", headers=bearer(plain)).status_code == 422
    assert client.get("/api/audit?since=someday-soon", headers=bearer(plain)).status_code == 422
    assert client.get("/api/audit/verify", headers=bearer(plain)).json()["valid"] is True
    agents = client.get("/api/agents", headers=bearer(plain)).json()["agents"]
    assert agents[0]["agent_id"] == "bot" and agents[0]["status"] == "active"


def test_openapi_document_is_valid_openapi_3_1(client: TestClient) -> None:
    from openapi_spec_validator import validate

    doc = client.get("/api/openapi.json").json()
    validate(doc)  # an implementation nobody here wrote
    assert {
        "/api/escalations",
        "/api/escalations/{escalation_id}",
        "/api/escalations/{escalation_id}/approve",
        "/api/escalations/{escalation_id}/deny",
    } <= set(doc["paths"])


def test_console_port_in_use_is_one_line(tmp_path: object) -> None:
    import socket

    from click.testing import CliRunner

    from claw_governance.cli import build_cli

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            build_cli(), ["console", "--port", str(port), "--audit", f"{tmp_path}/a", "--identities", f"{tmp_path}/i"]
        )
    assert result.exit_code == 2
    assert (
        result.output.strip() == f"error: 127.0.0.1:{port} is already in use (another console or service?): "
        "pick another --port"
    )
