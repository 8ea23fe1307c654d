"""Unit tests of the governance bridge (``claw-gov serve``'s ASGI app): OpenClaw result shapes, auth,
signatures, approvals and the audit trail."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from claw_governance_openclaw.bridge import BridgeSettings, create_app, sign_request
from starlette.testclient import TestClient

from claw_governance import Governor

TOKEN = "t0ken-for-tests-0123456789"
POLICY = """\
agent: coder
permissions:
  allow: ["tool:read", "tool:write"]
  deny: ["tool:exec"]
  escalate:
    - action: "tool:message"
      reason: Messages leave the building
      timeout: 2m
"""


@pytest.fixture
def gov(tmp_path: Path) -> Iterator[Governor]:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "coder.yaml").write_text(textwrap.dedent(POLICY))
    with Governor(
        policy_path=tmp_path / "policies", audit_path=tmp_path / "audit", identity_path=tmp_path / "ids"
    ) as g:
        yield g


def client(gov: Governor, **settings: Any) -> TestClient:
    return TestClient(create_app(gov, BridgeSettings(token=TOKEN, **settings)))


def payload(tool: str, agent: str | None = "coder", call_id: str = "c1", **params: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = {"toolName": tool, "toolCallId": call_id, "runId": "r1", "sessionKey": "agent:coder:main"}
    if agent is not None:
        ctx["agentId"] = agent
    return {"event": {"toolName": tool, "params": params, "toolCallId": call_id, "runId": "r1"}, "ctx": ctx}


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def approver(gov: Governor, name: str = "oncall") -> dict[str, str]:
    """The bridge token plus the approval credential: a registered reviewer's token."""
    _, token = gov.reviewers.add(name)
    return {**AUTH, "X-Claw-Approval-Token": token}


def test_allow_runs_and_after_call_is_audited(gov: Governor) -> None:
    c = client(gov)
    r = c.post("/v1/openclaw/before_tool_call", json=payload("read", path="/tmp/x"), headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["decision"] == "allow" and body["result"] == {}
    after = payload("read", path="/tmp/x")
    after["event"].update(result={"content": "hello"}, durationMs=3)
    after["receipt"] = body["receipt"]
    r = c.post("/v1/openclaw/after_tool_call", json=after, headers=AUTH)
    assert r.json() == {"ok": True, "recorded": "agent_action"}
    types = [(e.type if hasattr(e, "type") else e["type"]) for e in gov.audit.entries()]
    assert "policy_decision" in types and "agent_action" in types


def test_deny_is_a_block_with_reason(gov: Governor) -> None:
    r = client(gov).post("/v1/openclaw/before_tool_call", json=payload("Bash", command="ls"), headers=AUTH)
    body = r.json()
    assert body["decision"] == "deny"
    assert body["result"]["block"] is True
    assert "tool:exec" in body["result"]["blockReason"] and "exec" in body["result"]["blockReason"]


def test_a_blocked_call_reported_as_run_is_audited(gov: Governor) -> None:
    c = client(gov)
    first = c.post(
        "/v1/openclaw/before_tool_call", json=payload("exec", call_id="b1", command="ls"), headers=AUTH
    ).json()
    assert first["decision"] == "deny"
    blocked = payload("exec", call_id="b1", command="ls")
    blocked["receipt"] = first["receipt"]
    blocked["event"]["error"] = "blocked by plugin claw-governance"  # what OpenClaw sends for a blocked call
    assert c.post("/v1/openclaw/after_tool_call", json=blocked, headers=AUTH).json()["recorded"] == "blocked"
    second = c.post(
        "/v1/openclaw/before_tool_call", json=payload("exec", call_id="b2", command="ls"), headers=AUTH
    ).json()
    assert second["decision"] == "deny"
    ran = payload("exec", call_id="b2", command="ls")
    ran["receipt"] = second["receipt"]
    ran["event"].update(result={"content": "bin etc home"}, durationMs=4)  # no error: the tool ran anyway
    assert c.post("/v1/openclaw/after_tool_call", json=ran, headers=AUTH).json()["recorded"] == "ran-despite-block"
    (entry,) = gov.audit.query(type="agent_action", action="tool:exec")
    assert entry["details"]["success"] is True and "although governance decided deny" in entry["details"]["note"]


def test_unknown_agent_and_missing_agent_are_blocked(gov: Governor) -> None:
    c = client(gov)
    r = c.post("/v1/openclaw/before_tool_call", json=payload("read", agent="stranger"), headers=AUTH)
    assert r.json()["result"]["block"] is True
    r = c.post("/v1/openclaw/before_tool_call", json=payload("read", agent=None), headers=AUTH)
    assert r.json()["result"]["block"] is True and "agentId" in r.json()["result"]["blockReason"]


def test_escalate_requires_approval_and_resolution_is_audited(gov: Governor) -> None:
    c = client(gov)
    r = c.post("/v1/openclaw/before_tool_call", json=payload("message", call_id="m1", text="hi"), headers=AUTH)
    body = r.json()
    assert body["decision"] == "escalate"
    approval = body["result"]["requireApproval"]
    assert approval["timeoutMs"] == 120_000
    assert approval["allowedDecisions"] == ["allow-once", "deny"]
    assert len(approval["title"]) <= 80 and len(approval["description"]) <= 512
    assert "Messages leave the building" in approval["description"]
    esc = body["escalationId"]
    assert gov.escalations.get(esc).status.value == "pending"  # type: ignore[union-attr]
    ok = approver(gov)
    r = c.post(
        "/v1/openclaw/approval",
        headers=ok,
        json={
            "escalationId": esc,
            "resolution": "allow-once",
            "agentId": "coder",
            "sessionKey": "agent:coder:main",
            "runId": "r1",
            "toolCallId": "m1",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved" and r.json()["decision"] == "allow"
    assert gov.escalations.get(esc).status.value == "approved"  # type: ignore[union-attr]
    # the one-shot grant was used by the bridge: the same call asks again
    r = c.post("/v1/openclaw/before_tool_call", json=payload("message", call_id="m2", text="hi"), headers=AUTH)
    assert r.json()["decision"] == "escalate"
    # resolving twice is a clear conflict
    r = c.post(
        "/v1/openclaw/approval",
        headers=ok,
        json={"escalationId": esc, "resolution": "deny", "agentId": "coder", "runId": "r1", "toolCallId": "m1"},
    )
    assert r.status_code in (404, 409)
    types = [(e.type if hasattr(e, "type") else e["type"]) for e in gov.audit.entries()]
    assert "escalation_resolved" in types


def test_approval_denied_timeout_and_wrong_agent(gov: Governor) -> None:
    c = client(gov)
    answer = c.post("/v1/openclaw/before_tool_call", json=payload("message", text="a"), headers=AUTH).json()
    esc = answer["escalationId"]
    ok = approver(gov)
    r = c.post(
        "/v1/openclaw/approval", headers=ok, json={"escalationId": esc, "resolution": "timeout", "agentId": "someone"}
    )
    assert r.status_code == 403
    r = c.post(
        "/v1/openclaw/approval",
        headers=ok,
        json={"escalationId": esc, "resolution": "timeout", "agentId": "coder", "runId": "r1", "toolCallId": "c1"},
    )
    assert r.json()["status"] == "denied"
    r = c.post(
        "/v1/openclaw/approval", headers=ok, json={"escalationId": "nope", "resolution": "deny", "agentId": "coder"}
    )
    assert r.status_code == 404
    r = c.post("/v1/openclaw/approval", headers=ok, json={"escalationId": esc, "resolution": "maybe"})
    assert r.status_code == 400


def test_the_bridge_token_alone_resolves_nothing(gov: Governor) -> None:
    c = client(gov)
    esc = c.post("/v1/openclaw/before_tool_call", json=payload("message", text="a"), headers=AUTH).json()[
        "escalationId"
    ]
    body = {"escalationId": esc, "resolution": "allow-once", "agentId": "coder", "runId": "r1", "toolCallId": "c1"}
    for headers in (AUTH, {**AUTH, "X-Claw-Approval-Token": TOKEN}, {**AUTH, "X-Claw-Approval-Token": "cgr_x"}):
        r = c.post("/v1/openclaw/approval", headers=headers, json=body)
        assert r.status_code == 401 and "approval credential" in r.json()["error"]
    assert gov.escalations.get(esc).status.value == "pending"  # type: ignore[union-attr]


def test_only_the_escalation_this_bridge_opened_for_that_run_and_call(gov: Governor) -> None:
    c = client(gov)
    ok = approver(gov)
    other = gov.agent("coder").check("tool:message", {"text": "from another process"}).escalation_id
    r = c.post(
        "/v1/openclaw/approval",
        headers=ok,
        json={"escalationId": other, "resolution": "allow-once", "agentId": "coder", "runId": "r1", "toolCallId": "c1"},
    )
    assert r.status_code == 404
    esc = c.post("/v1/openclaw/before_tool_call", json=payload("message", call_id="m7", text="a"), headers=AUTH).json()[
        "escalationId"
    ]
    for run, call in (("r2", "m7"), ("r1", "m8"), (None, None)):
        r = c.post(
            "/v1/openclaw/approval",
            headers=ok,
            json={
                "escalationId": esc,
                "resolution": "allow-once",
                "agentId": "coder",
                "runId": run,
                "toolCallId": call,
            },
        )
        assert r.status_code == 403, (run, call)
    assert gov.escalations.get(esc).status.value == "pending"  # type: ignore[union-attr]
    assert gov.escalations.get(other or "").status.value == "pending"  # type: ignore[union-attr]


def test_rule_approvers_apply_to_openclaw_approvals(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "coder.yaml").write_text(
        textwrap.dedent(POLICY).replace("      timeout: 2m", "      timeout: 2m\n      approvers: [comms]")
    )
    with Governor(
        policy_path=tmp_path / "policies", audit_path=tmp_path / "audit", identity_path=tmp_path / "ids"
    ) as g:
        c = client(g)
        esc = c.post("/v1/openclaw/before_tool_call", json=payload("message", text="a"), headers=AUTH).json()[
            "escalationId"
        ]
        body = {"escalationId": esc, "resolution": "allow-once", "agentId": "coder", "runId": "r1", "toolCallId": "c1"}
        r = c.post("/v1/openclaw/approval", headers=approver(g, "outsider"), json=body)
        assert r.status_code == 403 and "approvers" in r.json()["error"]


def test_with_signatures_the_approval_is_consumed_exactly_once(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "coder.yaml").write_text(textwrap.dedent(POLICY))
    with Governor(
        policy_path=tmp_path / "policies",
        audit_path=tmp_path / "audit",
        identity_path=tmp_path / "ids",
        require_signature=True,
    ) as g:
        c = client(g)
        held = c.post(
            "/v1/openclaw/before_tool_call", json=payload("message", call_id="s1", text="a"), headers=AUTH
        ).json()
        esc = held["escalationId"]
        r = c.post(
            "/v1/openclaw/approval",
            headers=approver(g),
            json={
                "escalationId": esc,
                "resolution": "allow-once",
                "agentId": "coder",
                "runId": "r1",
                "toolCallId": "s1",
                "approvalId": "plugin:abc123",
                "operator": {"id": "U42", "name": "Dana"},
            },
        )
        assert r.status_code == 200 and r.json()["decision"] == "allow", r.text  # re-signed: not a replay
        # the tool runs (after_tool_call matches the ALLOW, quoting the receipt the plugin kept); a second run of
        # the same call needs a new approval
        done = c.post(
            "/v1/openclaw/after_tool_call",
            json={**payload("message", call_id="s1", text="a"), "receipt": held["receipt"]},
            headers=AUTH,
        )
        assert done.json()["recorded"] == "agent_action"
        again = c.post("/v1/openclaw/before_tool_call", json=payload("message", call_id="s2", text="a"), headers=AUTH)
        assert again.json()["decision"] == "escalate"
        (entry,) = g.audit.query(type="escalation_resolved")
        notes = entry["details"]["notes"]
        assert "plugin:abc123" in notes and "Dana" in notes and entry["details"]["resolver"] == "oncall"


def test_token_required(gov: Governor) -> None:
    c = client(gov)
    assert c.post("/v1/openclaw/before_tool_call", json=payload("read")).status_code == 401
    r = c.post("/v1/openclaw/before_tool_call", json=payload("read"), headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "token" in r.json()["error"]
    assert c.post("/v1/openclaw/before_tool_call", content=b"{", headers=AUTH).status_code == 400
    assert c.post("/v1/openclaw/before_tool_call", json={"event": 1}, headers=AUTH).status_code == 400
    with pytest.raises(ValueError):
        create_app(gov, BridgeSettings(token="short"))


def test_health(gov: Governor) -> None:
    c = client(gov)
    assert set(c.get("/health").json()) == {"status"}
    full = c.get("/health", headers=AUTH).json()
    assert "components" in full and full["status"] in ("ok", "degraded")


def _signed(c: TestClient, path: str, data: dict[str, Any], agent: str, secret: str, **kw: Any) -> Any:
    body = json.dumps(data).encode()
    headers = {
        **AUTH,
        "Content-Type": "application/json",
        "X-Claw-Agent": agent,
        **sign_request(secret, path, body, **kw),
    }
    return c.post(path, content=body, headers=headers), headers, body


def test_per_agent_signatures(gov: Governor) -> None:
    secret = "coder-secret-0123456789"
    c = client(gov, require_signature=True, agent_keys={"coder": secret})
    path = "/v1/openclaw/before_tool_call"
    assert c.post(path, json=payload("read"), headers=AUTH).status_code == 401
    r, headers, body = _signed(c, path, payload("read"), "coder", secret)
    assert r.status_code == 200 and r.json()["decision"] == "allow"
    assert c.post(path, content=body, headers=headers).status_code == 401  # replay
    r, _, _ = _signed(c, path, payload("read"), "coder", "wrong-secret-0123456789")
    assert r.status_code == 401 and "bad request signature" in r.json()["error"]
    r, _, _ = _signed(c, path, payload("read", agent="other"), "coder", secret)
    assert r.status_code == 401  # signer is not the calling agent
    r, _, _ = _signed(c, path, payload("read"), "coder", secret, timestamp_ms=1)
    assert r.status_code == 401 and "expired" in r.json()["error"]
