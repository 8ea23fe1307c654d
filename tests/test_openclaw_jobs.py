"""Job tokens and model-call receipts through the OpenClaw bridge, over real HTTP (uvicorn on 127.0.0.1).

Each test plays the OpenClaw plugin's requests (``before_tool_call`` with ``"job": {token, jobId}``, the
operator's ``/v1/openclaw/jobs/bind``, the ``before_agent_run`` gate, ``model_call`` reports) against a real
bridge and checks the decision and the audit trail. Every promise is checked from the attacker's side: a
token of another agent or job, a revoked, expired or out-of-scope one, a policy hot reload under a pinned
token, a binding made with the agent-facing bridge token alone.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from claw_governance_openclaw.bridge import BridgeSettings, create_app
from click.testing import CliRunner

from claw_governance import Governor
from claw_governance.cli import build_cli

TOKEN = "jobs-bridge-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POLICY = """\
agent: coder
permissions:
  allow: ["tool:read", "tool:write"]
  deny: ["tool:exec"]
  escalate: ["tool:message"]
models: ["fake/*"]
---
agent: other
permissions:
  allow: ["tool:read"]
"""
STRICT = """\
agent: billing
permissions:
  allow: ["tool:read"]
token: {require_scope: true}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Bridge:
    """The bridge served by uvicorn in a thread; ``post`` is a real HTTP request."""

    def __init__(self, gov: Governor) -> None:
        self.port = _free_port()
        app = create_app(gov, BridgeSettings(token=TOKEN))
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "bridge did not start"
            time.sleep(0.02)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=20)

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.post(path, json=body, headers={**AUTH, **(headers or {})})

    def tool(
        self,
        tool: str,
        agent: str = "coder",
        *,
        job: dict[str, Any] | None = None,
        run: str = "run-1",
        session: str | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """One before_tool_call as the plugin sends it; returns the bridge's answer."""
        call_id = f"call-{uuid.uuid4().hex[:8]}"
        ctx = {"agentId": agent, "runId": run, "toolCallId": call_id, "sessionKey": session or f"agent:{agent}:main"}
        body: dict[str, Any] = {
            "event": {"toolName": tool, "params": params, "runId": run, "toolCallId": call_id},
            "ctx": ctx,
        }
        if job is not None:
            body["job"] = job
        r = self.post("/v1/openclaw/before_tool_call", body)
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        answer["_body"] = body
        return answer

    def stop(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(20)


def _governor(tmp_path: Path, policy: str = POLICY) -> Governor:
    (tmp_path / "policies").mkdir(exist_ok=True)
    (tmp_path / "policies" / "agents.yaml").write_text(policy)
    return Governor(
        policy_path=tmp_path / "policies",
        audit_path=tmp_path / "audit",
        identity_path=tmp_path / "ids",
        load_entry_points=False,
    )


@pytest.fixture
def gov(tmp_path: Path) -> Iterator[Governor]:
    with _governor(tmp_path) as g:
        yield g


@pytest.fixture
def bridge(gov: Governor) -> Iterator[Bridge]:
    b = Bridge(gov)
    yield b
    b.stop()


def _decisions(gov: Governor) -> list[dict[str, Any]]:
    return [e for e in gov.audit.query(type="policy_decision")]


def _trail_text(tmp_path: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in (tmp_path / "audit").rglob("*") if p.is_file())


# --------------------------------------------------------------------------------------------- tool calls


def test_a_valid_token_runs_its_allowed_tool_and_the_trail_names_the_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with _governor(tmp_path, STRICT) as gov:
        bridge = Bridge(gov)
        try:
            job = gov.start_job("invoice-4711", "billing", scope=["tool:read"], ttl=600)
            answer = bridge.tool("read", "billing", job={"token": job.token, "jobId": "invoice-4711"}, path="/x")
            assert answer["decision"] == "allow" and answer["result"] == {}, answer
            # with `token: {require_scope: true}` a call without a token is denied
            bare = bridge.tool("read", "billing", path="/x")
            assert bare["decision"] == "deny" and "requires a job token" in bare["reason"], bare
            # the outcome report of the allowed call is recorded under the job too
            after = answer["_body"]
            after["event"].update(result={"content": "hello"}, durationMs=2)
            after["receipt"] = answer["receipt"]
            r = bridge.post("/v1/openclaw/after_tool_call", after)
            assert r.json() == {"ok": True, "recorded": "agent_action"}, r.text
        finally:
            bridge.stop()
        allowed = [e for e in _decisions(gov) if e["decision"]["outcome"] == "allow"]
        assert len(allowed) == 1 and allowed[0]["details"]["job_id"] == "invoice-4711"
        (action,) = gov.audit.query(type="agent_action")
        assert action["details"]["job_id"] == "invoice-4711"
        token = job.token
    # the token itself is never written to the trail or logged; its claims are
    assert token not in _trail_text(tmp_path)
    assert token not in caplog.text


def test_a_token_of_another_agent_or_another_job_is_refused(gov: Governor, bridge: Bridge) -> None:
    theirs = gov.start_job("other-job", "other", scope=["tool:*"], ttl=600)
    stolen = bridge.tool("read", "coder", job={"token": theirs.token}, path="/x")
    assert stolen["decision"] == "deny" and 'is for agent "other", not "coder"' in stolen["reason"], stolen
    mine = gov.start_job("job-a", "coder", scope=["tool:*"], ttl=600)
    replayed = bridge.tool("read", "coder", job={"token": mine.token, "jobId": "job-b"}, path="/x")
    assert replayed["decision"] == "deny" and "minted for job job-a, not job-b" in replayed["reason"], replayed
    assert bridge.tool("read", "coder", job={"token": mine.token, "jobId": "job-a"})["decision"] == "allow"
    forged = bridge.tool("read", "coder", job={"token": mine.token[:-4] + "AAAA"})
    assert forged["decision"] == "deny" and "Job token refused" in forged["reason"], forged


def test_revoked_mid_run_the_next_call_is_denied(gov: Governor, bridge: Bridge) -> None:
    job = gov.start_job("j-rev", "coder", scope=["tool:read"], ttl=600)
    first = bridge.tool("read", job={"token": job.token}, path="/a")
    assert first["decision"] == "allow", first
    gov.revoke_job("j-rev", "incident 42")
    second = bridge.tool("read", job={"token": job.token}, path="/b")
    assert second["decision"] == "deny" and "Job j-rev was revoked" in second["reason"], second


def test_an_expired_token_is_denied(gov: Governor, bridge: Bridge) -> None:
    job = gov.start_job("j-exp", "coder", scope=["tool:read"], ttl=1)
    time.sleep(1.2)
    answer = bridge.tool("read", job={"token": job.token}, path="/a")
    assert answer["decision"] == "deny" and "expired" in answer["reason"], answer


def test_a_call_outside_the_scope_is_denied(gov: Governor, bridge: Bridge) -> None:
    job = gov.start_job("j-scope", "coder", scope=["tool:read"], ttl=600)
    assert bridge.tool("read", job={"token": job.token})["decision"] == "allow"
    # the policy allows write; the job's scope does not
    answer = bridge.tool("write", job={"token": job.token}, path="/etc/passwd")
    assert answer["decision"] == "deny" and 'Action "tool:write" is outside the scope' in answer["reason"], answer
    assert answer["result"]["block"] is True


def test_pinned_policy_drift_after_a_hot_reload_is_denied(tmp_path: Path, gov: Governor, bridge: Bridge) -> None:
    job = gov.start_job("j-pin", "coder", scope=["tool:*"], ttl=600, pin_policy=True)
    assert bridge.tool("read", job={"token": job.token})["decision"] == "allow"
    (tmp_path / "policies" / "agents.yaml").write_text(POLICY.replace('"tool:write"]', '"tool:write", "tool:ls"]'))
    gov.reload_policies()
    answer = bridge.tool("read", job={"token": job.token})
    assert answer["decision"] == "deny" and "Policy drift: job j-pin pinned" in answer["reason"], answer


def test_a_malformed_job_field_is_a_400_that_does_not_echo_the_token(bridge: Bridge) -> None:
    body = {"event": {"toolName": "read", "params": {}}, "ctx": {"agentId": "coder"}, "job": "s3cret-token-text"}
    r = bridge.post("/v1/openclaw/before_tool_call", body)
    assert r.status_code == 400 and "s3cret" not in r.text
    body["job"] = {"token": ["s3cret-token-text"]}
    r = bridge.post("/v1/openclaw/before_tool_call", body)
    assert r.status_code == 400 and "s3cret" not in r.text


# ------------------------------------------------------------------------------------ operator bindings


def test_the_operator_binds_a_token_to_a_session_and_every_call_of_it_is_checked(gov: Governor, bridge: Bridge) -> None:
    job = gov.start_job("j-bind", "coder", scope=["tool:read"], ttl=600)
    session = "agent:coder:invoice-4711"
    bind = {"jobToken": job.token, "sessionKey": session}
    # the agent-facing bridge token alone binds nothing
    r = bridge.post("/v1/openclaw/jobs/bind", bind)
    assert r.status_code == 401 and "operator credential" in r.text, r.text
    _, reviewer_token = gov.reviewers.add("ops")
    operator = {"X-Claw-Operator-Token": reviewer_token}
    # a session of another agent cannot carry this agent's token
    r = bridge.post("/v1/openclaw/jobs/bind", {**bind, "sessionKey": "agent:other:x"}, operator)
    assert r.status_code == 400, r.text
    r = bridge.post("/v1/openclaw/jobs/bind", bind, operator)
    assert r.status_code == 200 and r.json()["jobId"] == "j-bind", r.text
    assert job.token not in r.text
    # the plugin sends no token: the session's binding applies (scope read only)
    assert bridge.tool("read", session=session)["decision"] == "allow"
    write = bridge.tool("write", session=session, path="/x")
    assert write["decision"] == "deny" and "outside the scope of job j-bind" in write["reason"], write
    # a wider token of another job presented on the bound session is refused
    wide = gov.start_job("j-wide", "coder", scope=["tool:*"], ttl=600)
    swap = bridge.tool("write", session=session, job={"token": wide.token}, path="/x")
    assert swap["decision"] == "deny" and "minted for job j-wide, not j-bind" in swap["reason"], swap
    # other sessions are not bound
    assert bridge.tool("write", session="agent:coder:main", path="/x")["decision"] == "allow"
    # the binding is audited with claims only
    (bound,) = [e for e in gov.audit.query(type="job") if e["details"].get("event") == "bound"]
    assert bound["details"]["job_id"] == "j-bind" and bound["details"]["by"] == "ops"
    # revoked: the bound session's next call is denied, and the job can no longer be bound
    gov.revoke_job("j-bind")
    assert "revoked" in bridge.tool("read", session=session)["reason"]
    r = bridge.post("/v1/openclaw/jobs/bind", {**bind, "runId": "r9"}, operator)
    assert r.status_code == 409 and "revoked" in r.text, r.text


def test_a_bound_session_cannot_be_escaped_by_spelling_placement_or_a_wider_run(gov: Governor, bridge: Bridge) -> None:
    """Red-team findings: case or invisible-character variants of a bound session key, a session key sent
    only in ``event``, and a run id bound to a wider job all escaped a session's narrow binding."""
    narrow = gov.start_job("j-narrow", "coder", scope=["tool:read"], ttl=600)
    wide = gov.start_job("j-wide2", "coder", scope=["tool:*"], ttl=600)
    _, reviewer_token = gov.reviewers.add("ops")
    operator = {"X-Claw-Operator-Token": reviewer_token}
    r = bridge.post("/v1/openclaw/jobs/bind", {"jobToken": narrow.token, "sessionKey": "agent:coder:inv-1"}, operator)
    assert r.status_code == 200, r.text
    r = bridge.post("/v1/openclaw/jobs/bind", {"jobToken": wide.token, "runId": "run-wide"}, operator)
    assert r.status_code == 200, r.text
    for variant in ("agent:Coder:inv-1", "agent:coder:INV-1", "agent:coder:inv-1\u200b", "agent:coder:ｉnv-1"):
        write = bridge.tool("write", session=variant, path="/x")
        assert write["decision"] == "deny" and "outside the scope of job j-narrow" in write["reason"], (variant, write)
    # the session key only in the event: still the bound session
    body = {
        "event": {
            "toolName": "write",
            "params": {"path": "/x"},
            "runId": "run-1",
            "toolCallId": "c-ev",
            "sessionKey": "agent:coder:inv-1",
        },
        "ctx": {"agentId": "coder", "runId": "run-1", "toolCallId": "c-ev"},
    }
    r = bridge.post("/v1/openclaw/before_tool_call", body)
    assert r.status_code == 200 and r.json()["decision"] == "deny", r.text
    # naming the wide run on the narrow session: bindings of two jobs, denied
    both = bridge.tool("write", session="agent:coder:inv-1", run="run-wide", path="/x")
    assert both["decision"] == "deny" and "bound to different jobs" in both["reason"], both
    # the wide run alone still runs under its own job
    assert bridge.tool("write", session="agent:coder:other", run="run-wide", path="/x")["decision"] == "allow"


def test_only_a_reviewer_who_may_act_for_the_agent_can_bind(gov: Governor, bridge: Bridge) -> None:
    job = gov.start_job("j-scope", "coder", scope=["tool:*"], ttl=600)
    _, elsewhere = gov.reviewers.add("ops-other", agents=["other"])
    r = bridge.post(
        "/v1/openclaw/jobs/bind",
        {"jobToken": job.token, "sessionKey": "agent:coder:s"},
        {"X-Claw-Operator-Token": elsewhere},
    )
    assert r.status_code == 403 and "outside reviewer 'ops-other'" in r.text, r.text
    assert not [e for e in gov.audit.query(type="job") if e["details"].get("event") == "bound"]


def test_a_run_id_binding_applies_to_that_run_only(gov: Governor, bridge: Bridge) -> None:
    job = gov.start_job("j-run", "coder", scope=["tool:read"], ttl=600)
    _, reviewer_token = gov.reviewers.add("ops")
    r = bridge.post(
        "/v1/openclaw/jobs/bind", {"jobToken": job.token, "runId": "run-77"}, {"X-Claw-Operator-Token": reviewer_token}
    )
    assert r.status_code == 200, r.text
    assert bridge.tool("write", run="run-77")["decision"] == "deny"
    assert bridge.tool("write", run="run-78")["decision"] == "allow"
    r = bridge.post(
        "/v1/openclaw/jobs/bind", {"jobToken": "not-a-token", "runId": "x"}, {"X-Claw-Operator-Token": reviewer_token}
    )
    assert r.status_code == 400 and "not a job token" in r.text


def test_claw_gov_openclaw_bind_binds_through_the_cli(gov: Governor, bridge: Bridge, tmp_path: Path) -> None:
    """`claw-gov openclaw bind` in a real process: the token comes from a file, never from argv; a refusal is
    exit 1 with the bridge's reason; without an operator credential nothing is sent."""
    import subprocess
    import sys

    job = gov.start_job("j-cli", "coder", scope=["tool:read"], ttl=600)
    _, reviewer_token = gov.reviewers.add("ops")
    (tmp_path / "job.token").write_text(job.token + "\n")
    (tmp_path / "bridge.token").write_text(TOKEN)
    (tmp_path / "operator.token").write_text(reviewer_token)
    base = [
        sys.executable,
        "-m",
        "claw_governance.cli",
        "openclaw",
        "bind",
        "--bridge",
        f"http://127.0.0.1:{bridge.port}",
    ]
    files = ["--job-token-file", str(tmp_path / "job.token"), "--token-file", str(tmp_path / "bridge.token")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAW_")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=120, env=env)

    missing = run(*files, "--session-key", "agent:coder:cli")
    assert missing.returncode == 2 and "no operator token" in missing.stderr, missing.stderr
    assert "Traceback" not in missing.stderr
    ok = run(*files, "--operator-token-file", str(tmp_path / "operator.token"), "--session-key", "agent:coder:cli")
    assert ok.returncode == 0, ok.stderr
    assert "bound job j-cli" in ok.stdout and job.token not in ok.stdout + ok.stderr
    write = bridge.tool("write", session="agent:coder:cli", path="/x")
    assert write["decision"] == "deny" and "outside the scope of job j-cli" in write["reason"], write
    # another agent's session: refused by the bridge, exit 1 with its reason
    other = run(*files, "--operator-token-file", str(tmp_path / "operator.token"), "--session-key", "agent:other:x")
    assert other.returncode == 1 and "is not a session of agent" in other.stderr, other.stderr
    # nothing listening: one line, exit 2
    dead = subprocess.run(
        [
            *base[:-1],
            f"http://127.0.0.1:{_free_port()}",
            *files,
            "--operator-token-file",
            str(tmp_path / "operator.token"),
            "--run-id",
            "r1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert dead.returncode == 2 and "cannot reach the bridge" in dead.stderr and "Traceback" not in dead.stderr


# ------------------------------------------------------------------------------------------ model calls


def _gate(bridge: Bridge, agent: str, model: str, job: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event": {},
        "ctx": {
            "agentId": agent,
            "runId": "run-g",
            "sessionKey": f"agent:{agent}:main",
            "modelProviderId": "fake",
            "modelId": model,
        },
    }
    if job is not None:
        body["job"] = job
    r = bridge.post("/v1/openclaw/before_agent_run", body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def test_the_run_gate_blocks_a_model_outside_the_contract_and_a_refused_token(gov: Governor, bridge: Bridge) -> None:
    job = gov.start_job("j-gate", "coder", scope=["tool:read"], ttl=600)
    assert _gate(bridge, "coder", "fake-tool-caller", {"token": job.token})["outcome"] == "pass"
    # the contract allows fake/* only
    r = bridge.post(
        "/v1/openclaw/before_agent_run",
        {"event": {}, "ctx": {"agentId": "coder", "runId": "r", "modelProviderId": "openai", "modelId": "gpt-5"}},
    )
    answer = r.json()
    assert answer["outcome"] == "block" and "outside the work contract" in answer["reason"], answer
    theirs = gov.start_job("j-theirs", "other", scope=["tool:read"], ttl=600)
    answer = _gate(bridge, "coder", "fake-tool-caller", {"token": theirs.token})
    assert answer["outcome"] == "block" and 'for agent "other"' in answer["reason"], answer
    assert _gate(bridge, "coder", "fake-x", {"token": job.token, "jobId": "j-else"})["outcome"] == "block"
    gov.revoke_job("j-gate")
    answer = _gate(bridge, "coder", "fake-tool-caller", {"token": job.token})
    assert answer["outcome"] == "block" and "revoked" in answer["reason"], answer
    blocked = [e for e in gov.audit.query(type="model_call") if e["details"].get("blocked")]
    assert blocked, "a refused route is audited as a model_call violation"
    no_model = bridge.post("/v1/openclaw/before_agent_run", {"event": {}, "ctx": {"agentId": "coder"}}).json()
    assert no_model["outcome"] == "block"


def test_model_call_receipts_are_recorded_and_exported_with_the_job(tmp_path: Path, gov: Governor) -> None:
    bridge = Bridge(gov)
    try:
        job = gov.start_job("j-model", "coder", scope=["tool:read"], ttl=600)
        jobf = {"token": job.token, "jobId": "j-model"}
        ctx = {"runId": "run-m", "sessionKey": "agent:coder:main", "modelProviderId": "fake", "modelId": "m1"}
        ended = {
            "runId": "run-m",
            "callId": "mc-1",
            "provider": "fake",
            "model": "fake-tool-caller",
            "durationMs": 42,
            "outcome": "completed",
            "requestPayloadBytes": 900,
            "responseStreamBytes": 300,
            "upstreamRequestIdHash": "abc123",
        }
        # model_call_ended carries no agentId: the session key names the agent
        r = bridge.post("/v1/openclaw/model_call", {"kind": "call", "event": ended, "ctx": ctx, "job": jobf})
        assert r.status_code == 200 and r.json() == {"ok": True}, r.text
        prompt = "summarise invoice 4711 for ACME"
        attempt = {
            "runId": "run-m",
            "provider": "fake",
            "model": "fake-tool-caller",
            "usage": {"input": 10, "output": 5},
        }
        r = bridge.post(
            "/v1/openclaw/model_call",
            {
                "kind": "attempt",
                "event": attempt,
                "ctx": {**ctx, "agentId": "coder"},
                "job": jobf,
                "request": {"prompt": prompt},
                "response": {"assistantTexts": ["All done."]},
                "durationMs": 120,
            },
        )
        assert r.status_code == 200, r.text
        # a model outside the contract's models is recorded as a violation (OpenClaw cannot block one call)
        r = bridge.post(
            "/v1/openclaw/model_call",
            {"kind": "call", "event": {**ended, "provider": "openai", "model": "gpt-5"}, "ctx": ctx, "job": jobf},
        )
        assert r.status_code == 200, r.text
        assert bridge.tool("read", job=jobf)["decision"] == "allow"
        bad = bridge.post("/v1/openclaw/model_call", {"kind": "x", "event": ended, "ctx": ctx})
        assert bad.status_code == 400
    finally:
        bridge.stop()
    receipts = gov.audit.query(type="model_call")
    assert len(receipts) == 3, receipts
    call, att, outside = receipts
    assert call["details"]["job_id"] == "j-model" and call["details"]["run_id"] == "run-m"
    assert call["details"]["route"] == "fake/fake-tool-caller" and call["details"]["duration_ms"] == 42
    assert call["details"]["usage"] == {"request_bytes": 900, "response_bytes": 300}
    assert call["details"]["framework"] == "openclaw" and call["details"]["violation"] is None
    assert att["details"]["usage"] == {"input": 10, "output": 5} and att["details"]["request_hash"]
    assert att["details"]["duration_ms"] == 120
    assert "outside the work contract" in outside["details"]["violation"]
    token = job.token
    gov.close()
    assert prompt not in _trail_text(tmp_path) and token not in _trail_text(tmp_path)
    out = CliRunner().invoke(
        build_cli(),
        [
            "proof",
            "export",
            "--job",
            "j-model",
            str(tmp_path / "bundle"),
            "--policies",
            str(tmp_path / "policies"),
            "--audit",
            str(tmp_path / "audit"),
            "--identities",
            str(tmp_path / "ids"),
        ],
        prog_name="claw-gov",
    )
    assert out.exit_code == 0, out.output
    lines = [json.loads(x) for x in (tmp_path / "bundle" / "entries.jsonl").read_text().splitlines()]
    exported = [e for e in lines if e["type"] == "model_call"]
    assert len(exported) == 3 and all(e["details"]["job_id"] == "j-model" for e in exported)
    assert token not in "\n".join(p.read_text() for p in (tmp_path / "bundle").rglob("*") if p.is_file())


def _approve(bridge: Bridge, gov: Governor, answer: dict[str, Any]) -> dict[str, Any]:
    _, reviewer_token = gov.reviewers.add(f"oncall-{uuid.uuid4().hex[:6]}")
    ctx = answer["_body"]["ctx"]
    r = bridge.post(
        "/v1/openclaw/approval",
        {
            "escalationId": answer["escalationId"],
            "resolution": "allow-once",
            "agentId": "coder",
            "runId": ctx["runId"],
            "toolCallId": ctx["toolCallId"],
        },
        {"X-Claw-Approval-Token": reviewer_token},
    )
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def test_an_approved_call_is_decided_again_under_its_job_token(gov: Governor, bridge: Bridge) -> None:
    job = gov.start_job("j-esc", "coder", scope=["tool:*"], ttl=600)
    first = bridge.tool("message", job={"token": job.token}, text="hi")
    assert first["decision"] == "escalate", first
    assert _approve(bridge, gov, first)["decision"] == "allow"
    regranted = [e for e in _decisions(gov) if e["action"] == "tool:message" and e["decision"]["outcome"] == "allow"]
    assert len(regranted) == 1 and regranted[0]["details"]["job_id"] == "j-esc", regranted
    # revoked while a human was deciding: the approval no longer lets the call run
    second = bridge.tool("message", job={"token": job.token}, text="again")
    assert second["decision"] == "escalate", second
    gov.revoke_job("j-esc")
    assert _approve(bridge, gov, second)["decision"] == "deny"


def test_an_expired_binding_denies_instead_of_falling_back_to_the_policy(gov: Governor, bridge: Bridge) -> None:
    _, reviewer_token = gov.reviewers.add("ops")
    operator = {"X-Claw-Operator-Token": reviewer_token}
    short = gov.start_job("j-short", "coder", scope=["tool:read"], ttl=1)
    r = bridge.post("/v1/openclaw/jobs/bind", {"jobToken": short.token, "sessionKey": "agent:coder:s1"}, operator)
    assert r.status_code == 200, r.text
    time.sleep(1.2)
    later = gov.start_job("j-later", "coder", scope=["tool:read"], ttl=600)
    r = bridge.post("/v1/openclaw/jobs/bind", {"jobToken": later.token, "sessionKey": "agent:coder:s2"}, operator)
    assert r.status_code == 200, r.text
    # the policy alone would allow write; the session was bound to a job, so it stays denied
    answer = bridge.tool("write", session="agent:coder:s1", path="/x")
    assert answer["decision"] == "deny" and "expired" in answer["reason"], answer
