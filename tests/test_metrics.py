"""Prometheus metrics: gov.metrics(), the ASGI app, the bridge's /metrics, read back with prometheus_client's
own parser (not ours)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from claw_governance import Governor
from claw_governance import metrics as M
from claw_governance.cli import build_cli
from claw_governance.hookspecs import hookimpl

POLICY = """\
agent: "*"
permissions:
  allow: ["read:*"]
  deny: ["delete:*"]
  escalate:
    - action: refund
      timeout: 1h
"""


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} as an independent parser reads the exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, tuple(sorted(labels.items())))]


def test_decisions_escalations_trust_and_revocations(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(POLICY)
    a, b = gov.agent("alpha"), gov.agent("beta")
    for i in range(3):
        assert a.execute("read:x", {"i": i}, lambda ctx: 1).success
    assert not a.check("delete:x").allowed
    assert not b.check("delete:y").allowed
    b.execute("read:y", {}, lambda ctx: 1 / 0)  # a failure: -5
    esc = a.check("refund", {"amount": 10})
    assert esc.escalation_id
    gov.identities.revoke("beta", "test", by="ops")
    text = gov.metrics()
    assert value(text, "claw_decisions_total", agent="alpha", outcome="allow") == 3
    assert value(text, "claw_decisions_total", agent="alpha", outcome="deny") == 1
    assert value(text, "claw_decisions_total", agent="alpha", outcome="escalate") == 1
    assert value(text, "claw_decisions_total", agent="beta", outcome="deny") == 1
    assert value(text, "claw_decisions_total", agent="beta", outcome="allow") == 1
    assert value(text, "claw_audit_append_seconds_count") == 7
    assert value(text, "claw_audit_append_seconds_bucket", le="+Inf") == 7
    assert 0 < value(text, "claw_audit_append_seconds_sum") < 7
    assert value(text, "claw_escalations_pending") == 1
    assert value(text, "claw_escalation_oldest_pending_age_seconds") >= 0
    assert value(text, "claw_escalations_overdue", sla_seconds="86400") == 0
    assert value(text, "claw_trust_score", agent="alpha") == gov.trust_score("alpha") == 100
    assert value(text, "claw_trust_score", agent="beta") == gov.trust_score("beta") == 95
    assert value(text, "claw_identities_revoked") == 1 and value(text, "claw_identities") == 2
    assert value(text, "claw_state_sync_ok") == 1
    assert value(text, "claw_audit_last_seq") > 7
    assert 0 < value(text, "claw_audit_disk_free_ratio") <= 1
    assert value(text, "claw_component_ok", component="policy") == 1


def test_overdue_escalations_count_against_the_sla(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(POLICY)
    gov.agent("alpha").check("refund", {"amount": 1})
    registry = M.CollectorRegistry(auto_describe=False)
    registry.register(M.GovernorCollector(gov, sla_seconds=0.0))
    time.sleep(0.01)
    text = M.render(registry)
    assert value(text, "claw_escalations_overdue", sla_seconds="0") == 1


class Broken:
    @hookimpl
    def claw_decide(self, call: object, policy: object) -> None:
        raise RuntimeError("plugin bug")


def test_plugin_faults_and_policy_reload_failures(make_governor: Callable[..., Governor], tmp_path: Path) -> None:
    gov = make_governor(POLICY)
    gov.register_plugin(Broken(), name="broken")
    assert not gov.agent("alpha").check("read:x").allowed  # fails closed
    (tmp_path / "policies" / "policy.yaml").write_text("agent: [unclosed\n")
    assert gov.reload_policies().error
    text = gov.metrics()
    assert value(text, "claw_plugin_faults_total", component="plugin") == 1
    assert value(text, "claw_policy_reload_failures_total") == 1
    assert value(text, "claw_decisions_total", agent="alpha", outcome="deny") == 1
    assert value(text, "claw_component_ok", component="policy") == 0


def test_agent_labels_stay_bounded(make_governor: Callable[..., Governor], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(M, "MAX_AGENT_SERIES", 2)
    gov = make_governor(POLICY)
    for name in ("a1", "a2", "a3", "a4"):
        gov.agent(name).check("delete:x")
    text = gov.metrics()
    assert value(text, "claw_decisions_total", agent="_other", outcome="deny") == 2
    assert {labels for (name, labels) in samples(text) if name == "claw_decisions_total"} == {
        (("agent", "a1"), ("outcome", "deny")),
        (("agent", "a2"), ("outcome", "deny")),
        (("agent", "_other"), ("outcome", "deny")),
    }


def test_asgi_app_for_a_console_to_mount(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(POLICY)
    gov.agent("alpha").check("read:x")
    app = Starlette(routes=[Mount("/metrics", app=M.metrics_app(gov))])
    with TestClient(app) as client:
        got = client.get("/metrics/")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/plain")
    assert value(got.text, "claw_decisions_total", agent="alpha", outcome="allow") == 1


def test_bridge_serves_metrics_to_an_authenticated_scraper(make_governor: Callable[..., Governor]) -> None:
    from claw_governance_openclaw.bridge import BridgeSettings, create_app

    gov = make_governor(POLICY)
    gov.agent("alpha").check("delete:x")
    token = "metrics-token-0123456789abcdef"
    with TestClient(create_app(gov, BridgeSettings(token=token))) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
        got = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200
    assert value(got.text, "claw_decisions_total", agent="alpha", outcome="deny") == 1


def test_last_verify_from_the_cli_shows_in_the_metrics(make_governor: Callable[..., Governor], tmp_path: Path) -> None:
    gov = make_governor(POLICY)
    gov.agent("alpha").check("read:x")
    gov.audit.checkpoint()
    assert "claw_audit_last_verify_valid" not in gov.metrics()
    ran = CliRunner().invoke(
        build_cli(),
        ["audit", "verify", "--audit", str(tmp_path / "logs" / "audit"), "--identities", str(tmp_path / "identities")],
    )
    assert ran.exit_code == 0, ran.output
    text = gov.metrics()
    assert value(text, "claw_audit_last_verify_valid") == 1
    assert time.time() - value(text, "claw_audit_last_verify_timestamp_seconds") < 600


def test_sink_lag_metrics(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a.yaml").write_text(POLICY)
    with Governor(
        tmp_path / "p",
        tmp_path / "audit",
        tmp_path / "ids",
        load_entry_points=False,
        audit_sink="postgresql://postgres@127.0.0.1:1/none",
        audit_sink_interval=3600,
    ) as gov:
        gov.agent("alpha").check("read:x")
        gov.audit_sink.sync()
        text = gov.metrics()
    assert value(text, "claw_audit_sink_ok") == 0
    assert value(text, "claw_audit_unreplicated_entries") > 0
    assert value(text, "claw_audit_replication_lag_seconds") >= 0


def test_claw_gov_serve_process_serves_metrics(tmp_path: Path) -> None:
    """The real `claw-gov serve` process, scraped over HTTP like Prometheus would."""
    import os
    import socket
    import subprocess
    import sys

    import httpx

    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "a.yaml").write_text(POLICY)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "scrape-token-7f3a9c1e5b2d8046a1c3e5f7b9d2"  # 32+ characters of some entropy (serve checks)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from claw_governance.cli import main; main()",
            "serve",
            "--port",
            str(port),
            "--policies",
            str(tmp_path / "policies"),
            "--audit",
            str(tmp_path / "audit"),
            "--identities",
            str(tmp_path / "ids"),
        ],
        env={**os.environ, "CLAW_BRIDGE_TOKEN": token},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code in (200, 503):
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)
        auth = {"Authorization": f"Bearer {token}"}
        hook = {
            "event": {"toolName": "read", "params": {}},
            "ctx": {"agentId": "alpha", "toolName": "read", "toolCallId": "c1", "runId": "r1"},
        }
        httpx.post(f"{url}/v1/openclaw/before_tool_call", json=hook, headers=auth, timeout=10)
        assert httpx.get(f"{url}/metrics", timeout=10).status_code == 401
        got = httpx.get(f"{url}/metrics", headers=auth, timeout=10)
    finally:
        proc.terminate()
        proc.wait(30)
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/plain")
    decisions = {labels: v for (name, labels), v in samples(got.text).items() if name == "claw_decisions_total"}
    assert sum(decisions.values()) == 1, decisions
