"""The OpenClaw plugin's job and model-call handlers (openclaw-plugin/index.js, run by the cached Node 26)
against a real bridge over HTTP: the job token file is read once per run (a run keeps its token, the next run
takes the new one), an unreadable token file blocks the call and the run (fail closed), an unreachable bridge
blocks the run gate, and model_call_ended / llm_input + llm_output become receipts under the run's job."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openclaw_support import PLUGIN_DIR, OpenClawInstall
from test_openclaw_gateway import BRIDGE_TOKEN, BridgeServer

from claw_governance import Governor

POLICY = """\
agent: main
permissions:
  allow: ["tool:read", "tool:write"]
models: ["fake/*"]
token: {require_scope: true}
"""

# Steps: ["tool", run, toolName] | ["gate", run, model] | ["write", text] | ["model", run] | ["attempt", run]
DRIVER = """
import { pathToFileURL } from "node:url";
import { writeFileSync } from "node:fs";
const [pluginPath, cfgJson, stepsJson] = process.argv.slice(2);
const { resolveSettings, createHandlers } = await import(pathToFileURL(pluginPath).href);
const cfg = JSON.parse(cfgJson);
const h = createHandlers(resolveSettings(cfg, {}), { warn: () => {}, info: () => {} });
const out = [];
let n = 0;
for (const [kind, a, b] of JSON.parse(stepsJson)) {
  n += 1;
  const ctx = { agentId: "main", runId: a, sessionKey: "agent:main:main", toolCallId: "tc" + n };
  if (kind === "write") { writeFileSync(cfg.jobTokenFile, a); out.push(null); continue; }
  if (kind === "tool") {
    const event = { toolName: b, params: { path: "/x" }, runId: a, toolCallId: "tc" + n };
    const r = await h.beforeToolCall(event, { ...ctx, toolName: b });
    out.push(r === undefined ? { ran: true } : r);
  } else if (kind === "gate") {
    const runCtx = { ...ctx, modelProviderId: "fake", modelId: b };
    out.push(await h.beforeAgentRun({ prompt: "secret prompt", messages: [] }, runCtx));
  } else if (kind === "model") {
    // model_call_ended: OpenClaw's ctx has no agentId
    await h.modelCallEnded({ runId: a, callId: "mc" + n, provider: "fake", model: "m1", durationMs: 7,
      outcome: "completed", requestPayloadBytes: 100, responseStreamBytes: 50 },
      { runId: a, sessionKey: "agent:main:main" });
    out.push(null);
  } else if (kind === "attempt") {
    h.llmInput({ runId: a, sessionId: "s", provider: "fake", model: "m1", prompt: "the secret prompt",
      historyMessages: [] }, ctx);
    await h.llmOutput({ runId: a, sessionId: "s", provider: "fake", model: "m1", assistantTexts: ["done"],
      usage: { input: 3, output: 2 } }, ctx);
    out.push(null);
  }
}
process.stdout.write(JSON.stringify(out));
"""


@pytest.fixture
def gov(tmp_path: Path) -> Iterator[Governor]:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "main.yaml").write_text(textwrap.dedent(POLICY))
    with Governor(
        policy_path=tmp_path / "policies", audit_path=tmp_path / "audit", identity_path=tmp_path / "ids"
    ) as g:
        yield g


def run_steps(install: OpenClawInstall, tmp_path: Path, cfg: dict[str, Any], steps: list[list[str]]) -> list[Any]:
    driver = tmp_path / "jobs-driver.mjs"
    driver.write_text(DRIVER)
    proc = subprocess.run(
        [str(install.node), str(driver), str(PLUGIN_DIR / "index.js"), json.dumps(cfg), json.dumps(steps)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results: list[Any] = json.loads(proc.stdout)
    return results


def test_the_token_file_is_read_once_per_run(openclaw_install: OpenClawInstall, gov: Governor, tmp_path: Path) -> None:
    bridge = BridgeServer(gov)
    try:
        narrow = gov.start_job("narrow", "main", scope=["tool:read"], ttl=600)
        wide = gov.start_job("wide", "main", scope=["tool:read", "tool:write"], ttl=600)
        token_file = tmp_path / "job.token"
        token_file.write_text(narrow.token)
        cfg = {"bridgeUrl": f"http://127.0.0.1:{bridge.port}", "token": BRIDGE_TOKEN, "jobTokenFile": str(token_file)}
        out = run_steps(
            openclaw_install,
            tmp_path,
            cfg,
            [
                ["gate", "run-1", "m1"],
                ["tool", "run-1", "read"],
                ["write", wide.token],  # swapped mid-run: run-1 keeps the narrow token
                ["tool", "run-1", "write"],
                ["tool", "run-2", "write"],  # the next run takes the new one
                ["model", "run-1"],
                ["attempt", "run-2"],
                ["gate", "run-3", "gpt-5"],  # fake/gpt-5 is inside fake/*: passes
            ],
        )
    finally:
        bridge.stop()
    assert out[0] == {"outcome": "pass"}
    assert out[1] == {"ran": True}
    assert out[3]["block"] is True and "outside the scope of job narrow" in out[3]["blockReason"], out[3]
    assert out[4] == {"ran": True}, out[4]
    assert out[7] == {"outcome": "pass"}
    by_job = {
        (e["action"], e["details"]["job_id"], e["decision"]["outcome"]) for e in gov.audit.query(type="policy_decision")
    }
    assert by_job == {
        ("tool:read", "narrow", "allow"),
        ("tool:write", "narrow", "deny"),
        ("tool:write", "wide", "allow"),
    }
    receipts = gov.audit.query(type="model_call")
    assert [(e["details"]["job_id"], e["details"]["run_id"]) for e in receipts] == [
        ("narrow", "run-1"),
        ("wide", "run-2"),
    ]
    assert receipts[0]["agent_id"] == "main" and receipts[0]["details"]["usage"] == {
        "request_bytes": 100,
        "response_bytes": 50,
    }
    assert receipts[1]["details"]["usage"] == {"input": 3, "output": 2} and receipts[1]["details"]["request_hash"]
    trail = "\n".join(p.read_text(errors="replace") for p in (tmp_path / "audit").rglob("*") if p.is_file())
    assert "secret prompt" not in trail and narrow.token not in trail and wide.token not in trail


def test_an_unreadable_token_file_or_a_missing_bridge_blocks(
    openclaw_install: OpenClawInstall, gov: Governor, tmp_path: Path
) -> None:
    bridge = BridgeServer(gov)
    try:
        cfg = {
            "bridgeUrl": f"http://127.0.0.1:{bridge.port}",
            "token": BRIDGE_TOKEN,
            "jobTokenFile": str(tmp_path / "missing.token"),
        }
        out = run_steps(openclaw_install, tmp_path, cfg, [["tool", "r1", "read"], ["gate", "r2", "m1"]])
        assert out[0]["block"] is True and "cannot read jobTokenFile" in out[0]["blockReason"], out[0]
        assert out[1]["outcome"] == "block" and "cannot read jobTokenFile" in out[1]["reason"], out[1]
        # no token at all under `token: {require_scope: true}`: the bridge denies the call and the run
        cfg = {"bridgeUrl": f"http://127.0.0.1:{bridge.port}", "token": BRIDGE_TOKEN}
        out = run_steps(openclaw_install, tmp_path, cfg, [["tool", "r3", "read"], ["gate", "r4", "m1"]])
        assert out[0]["block"] is True and "requires a job token" in out[0]["blockReason"], out[0]
        assert out[1]["outcome"] == "block" and "requires a job token" in out[1]["reason"], out[1]
    finally:
        bridge.stop()
    cfg = {"bridgeUrl": "http://127.0.0.1:9", "token": BRIDGE_TOKEN, "timeoutMs": 1000}
    out = run_steps(openclaw_install, tmp_path, cfg, [["gate", "r5", "m1"]])
    assert out[0]["outcome"] == "block" and "unreachable" in out[0]["reason"], out[0]
