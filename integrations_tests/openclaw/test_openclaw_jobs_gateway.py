"""End to end: job tokens and model-call receipts through a real OpenClaw 2026.9.6 gateway.

The plugin reads its job token from ``jobTokenFile`` once per run; the policy is a work contract (``models:
["fake/*"]``, ``token: {require_scope: true}``). The fake OpenAI-compatible model on 127.0.0.1 asks for
``read`` (inside the job's scope) and ``write`` (allowed by the policy, outside the scope):

1. a run under a valid token: ``read`` runs, ``write`` is denied as outside the scope, every decision and
   every ``model_call`` receipt names the job, and ``claw-gov proof export --job`` holds the receipts;
   then a run of a session key the operator bound to a write-only job: ``write`` runs, ``read`` is denied;
2. a run whose token was minted for another agent: OpenClaw's ``before_agent_run`` gate blocks the run
   before the model is asked (the fake model sees no request);
3. a run on a model route outside the contract (``--model rogue/...``): blocked before the model is asked;
4. the job revoked: the next run is blocked and its tools never run;
5. ``claw-gov proof verify`` accepts the first job's bundle (``receipts: required``: its receipts come before
   its tool calls).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner
from openclaw_fake_model import MODEL_ID, FakeModel
from openclaw_support import OpenClawInstall, free_port, running_gateway
from test_openclaw_gateway import BRIDGE_TOKEN, GATEWAY_TOKEN, BridgeServer, install_plugin

from claw_governance import Governor
from claw_governance.cli import build_cli

CONTRACT = """\
agent: main
permissions:
  allow: ["tool:read", "tool:write"]
  deny: ["tool:exec"]
models: ["fake/*"]
receipts: required
token: {require_scope: true}
"""


def _provider(base_url: str) -> dict[str, Any]:
    return {
        "baseUrl": base_url,
        "apiKey": "not-a-real-key",
        "api": "openai-completions",
        "models": [
            {
                "id": MODEL_ID,
                "name": "Fake tool caller",
                "reasoning": False,
                "input": ["text"],
                "contextWindow": 128000,
                "maxTokens": 4096,
                "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
            }
        ],
    }


def _tool_results(request: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for message in request["body"].get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "tool":
            content = message.get("content")
            out[str(message.get("tool_call_id"))] = content if isinstance(content, str) else json.dumps(content)
    return out


def test_job_tokens_and_model_receipts_through_the_gateway(openclaw_install: OpenClawInstall, tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "main.yaml").write_text(textwrap.dedent(CONTRACT))
    paths = {
        "policy_path": tmp_path / "policies",
        "audit_path": tmp_path / "audit",
        "identity_path": tmp_path / "ids",
    }
    home = tmp_path / "home"
    state = home / ".openclaw"
    state.mkdir(parents=True)
    workspace = home / "workspace"
    workspace.mkdir()
    notes = workspace / "notes.txt"
    notes.write_text("the notes say hello\n")
    written = workspace / "written.txt"
    fake = FakeModel(
        [
            {"id": "call_read", "name": "read", "arguments": {"path": str(notes)}},
            {"id": "call_write", "name": "write", "arguments": {"path": str(written), "content": "x"}},
        ]
    )
    token_file = tmp_path / "job.token"
    gov = Governor(**paths)
    bridge = BridgeServer(gov)
    port = free_port()
    config: dict[str, Any] = {
        "gateway": {
            "mode": "local",
            "port": port,
            "bind": "loopback",
            "auth": {"mode": "token", "token": GATEWAY_TOKEN},
        },
        "update": {"checkOnStart": False},
        "models": {
            "mode": "replace",
            "catalogRefresh": {"enabled": False},
            # "rogue" is the same fake server under a provider the contract does not allow
            "providers": {"fake": _provider(fake.base_url), "rogue": _provider(fake.base_url)},
        },
        "agents": {
            "defaults": {
                "model": {"primary": f"fake/{MODEL_ID}"},
                "workspace": str(workspace),
                "sandbox": {"mode": "off"},
            }
        },
        "tools": {"profile": "coding"},
    }
    (state / "openclaw.json").write_text(json.dumps(config, indent=2))
    install_plugin(openclaw_install, openclaw_install.env(home), home, tmp_path)
    config = json.loads((state / "openclaw.json").read_text())
    entry = config["plugins"]["entries"]["claw-governance"]
    entry["config"] = {
        "bridgeUrl": f"http://127.0.0.1:{bridge.port}",
        "token": BRIDGE_TOKEN,
        "timeoutMs": 5000,
        "jobTokenFile": str(token_file),
    }
    # before_agent_run (the run gate) and llm_input/llm_output are conversation hooks: OpenClaw registers them
    # for an installed plugin only with this grant
    entry["hooks"] = {"allowConversationAccess": True}
    (state / "openclaw.json").write_text(json.dumps(config, indent=2))
    log = tmp_path / "gateway.log"
    node, cli = str(openclaw_install.node), str(openclaw_install.cli)
    gateway = contextlib.ExitStack()  # stopped in the `finally` below, after the bridge
    env: dict[str, str] = {}  # the gateway's environment, once it runs

    def turn(session: str, *extra: str, flag: str = "--session-id") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                node,
                cli,
                "agent",
                "--agent",
                "main",
                flag,
                session,
                "--message",
                "Read the notes, then write the file.",
                "--json",
                "--timeout",
                "150",
                *extra,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            cwd=home,
            check=False,
        )

    try:
        env.update(gateway.enter_context(running_gateway(openclaw_install, home, port, log)))
        job = gov.start_job("job-1", "main", scope=["tool:read"], ttl=1800)
        token_file.write_text(job.token)

        # 1. a valid token: read runs, write (outside the scope) does not
        first = turn("job-1-run")
        assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
        followups = [r for r in fake.requests if _tool_results(r)]
        assert followups, (fake.requests, log.read_text()[-3000:])
        results = _tool_results(followups[0])
        text = "\n".join(results.values())
        assert "the notes say hello" in text, results
        assert 'Action "tool:write" is outside the scope of job job-1' in text, results
        assert not written.exists()
        decisions = gov.audit.query(type="policy_decision")
        assert {(e["action"], e["decision"]["outcome"], e["details"].get("job_id")) for e in decisions} == {
            ("tool:read", "allow", "job-1"),
            ("tool:write", "deny", "job-1"),
        }, decisions
        receipts = gov.audit.query(type="model_call")
        # one receipt per provider request (model_call_ended) and one per attempt (llm_output)
        calls = [e for e in receipts if e["details"].get("usage", {}).get("request_bytes") is not None]
        assert len(calls) == len([r for r in fake.requests if r["path"].endswith("/chat/completions")]), receipts
        assert receipts and all(e["details"]["job_id"] == "job-1" for e in receipts), receipts
        assert all(e["details"]["route"] == f"fake/{MODEL_ID}" and not e["details"]["violation"] for e in receipts)
        attempts = [e for e in receipts if e["details"].get("usage", {}).get("input") is not None]
        assert attempts and all(e["details"]["request_hash"] for e in attempts), receipts

        # 1b. the operator binds a job to a session key instead (the plugin has no token now): every call of
        # that session is checked under it, here a write-only scope
        token_file.write_text("")
        bound_job = gov.start_job("job-bound", "main", scope=["tool:write"], ttl=1800)
        _, operator = gov.reviewers.add("ops")
        bound = httpx.post(
            f"http://127.0.0.1:{bridge.port}/v1/openclaw/jobs/bind",
            json={"jobToken": bound_job.token, "sessionKey": "agent:main:invoice-4711"},
            headers={"authorization": f"Bearer {BRIDGE_TOKEN}", "x-claw-operator-token": operator},
            timeout=20,
        )
        assert bound.status_code == 200, bound.text
        before = len(fake.requests)
        bound_turn = turn("agent:main:invoice-4711", flag="--session-key")
        assert bound_turn.returncode == 0, bound_turn.stdout[-2000:] + bound_turn.stderr[-2000:]
        later = [r for r in fake.requests[before:] if _tool_results(r)]
        assert later, fake.requests[before:]
        text = "\n".join(_tool_results(later[0]).values())
        assert 'Action "tool:read" is outside the scope of job job-bound' in text, text
        assert written.exists()  # write is inside the bound job's scope
        bound_decisions = [
            e for e in gov.audit.query(type="policy_decision") if e["details"].get("job_id") == "job-bound"
        ]
        assert {(e["action"], e["decision"]["outcome"]) for e in bound_decisions} == {
            ("tool:read", "deny"),
            ("tool:write", "allow"),
        }, bound_decisions
        assert [e for e in gov.audit.query(type="model_call") if e["details"]["job_id"] == "job-bound"]
        asked = len(fake.requests)

        # 2. a token minted for another agent: the run is blocked before the model is asked
        theirs = gov.start_job("job-other", "other", scope=["tool:*"], ttl=1800)
        token_file.write_text(theirs.token)
        second = turn("job-other-run")
        assert len(fake.requests) == asked, fake.requests[asked:]
        assert 'is for agent "other"' in second.stdout + second.stderr + log.read_text(), second.stdout[-2000:]

        # 3. a model route outside the contract: blocked, never asked (under a second job: a refused route is a
        # violation in its job's evidence, and job-1's bundle is checked below)
        second_job = gov.start_job("job-2", "main", scope=["tool:read"], ttl=1800)
        token_file.write_text(second_job.token)
        third = turn("rogue-run", "--model", f"rogue/{MODEL_ID}")
        assert len(fake.requests) == asked, fake.requests[asked:]
        assert "outside the work contract" in third.stdout + third.stderr + log.read_text(), third.stdout[-2000:]
        assert any(
            e["details"].get("blocked") and e["details"]["route"] == f"rogue/{MODEL_ID}"
            for e in gov.audit.query(type="model_call")
            if e["details"]["job_id"] == "job-2"
        )

        # 4. revoked: the next run is blocked, its tools never run
        gov.revoke_job("job-2", "incident 42")
        fourth = turn("revoked-run")
        assert len(fake.requests) == asked, fake.requests[asked:]
        assert "Job job-2 was revoked" in fourth.stdout + fourth.stderr + log.read_text(), fourth.stdout[-2000:]
        assert len(gov.audit.query(type="policy_decision")) == 4  # runs 2-4: no tool call was even asked about
        assert gov.audit.verify().valid
    finally:
        bridge.stop()
        gateway.close()
        fake.close()
        tokens = [job.token, bound_job.token, theirs.token, second_job.token] if "second_job" in locals() else []
        (tmp_path / "key.pem").write_bytes(gov.audit.key.public.pem())
        gov.close()
    trail = "\n".join(p.read_text(errors="replace") for p in (tmp_path / "audit").rglob("*") if p.is_file())
    assert all(t not in trail and t not in log.read_text() for t in tokens)
    assert "Read the notes, then write the file." not in trail  # receipts hold hashes, not the conversation
    out = CliRunner().invoke(
        build_cli(),
        [
            "proof",
            "export",
            "--job",
            "job-1",
            str(tmp_path / "bundle"),
            "--policies",
            str(paths["policy_path"]),
            "--audit",
            str(paths["audit_path"]),
            "--identities",
            str(paths["identity_path"]),
        ],
        prog_name="claw-gov",
    )
    assert out.exit_code == 0, out.output
    lines = [json.loads(x) for x in (tmp_path / "bundle" / "entries.jsonl").read_text().splitlines()]
    assert len([e for e in lines if e["type"] == "model_call"]) >= 2, lines
    assert {e["action"] for e in lines if e["type"] == "policy_decision"} == {"tool:read", "tool:write"}
    verified = CliRunner().invoke(
        build_cli(),
        ["proof", "verify", str(tmp_path / "bundle"), "--public-key", str(tmp_path / "key.pem"), "--json"],
        prog_name="claw-gov",
    )
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["valid"] is True
