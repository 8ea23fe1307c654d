"""The console's replay of a candidate policy (``POST /api/policy/replay``, ``/policy/replay``) and its view of
shadow decisions (``/api/audit?shadow=...``), through a real ASGI client."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from claw_governance import Governor
from claw_governance.cli import build_cli
from claw_governance.console.app import create_app

POLICY = """\
agent: bot
permissions:
  allow: ["read:*", "http:post", "pay"]
  deny:
    - action: http:post
      condition: '!url.startsWith("https://internal.example.com/")'
      mode: shadow
  escalate:
    - action: pay
      condition: amount > 500
"""
CANDIDATE = """\
agent: bot
permissions:
  allow: ["read:*", "pay"]
  deny:
    - action: pay
      condition: amount > 5000
"""


def today() -> str:
    return datetime.now(UTC).date().isoformat()


@pytest.fixture
def gov(make_governor: Callable[..., Governor]) -> Governor:
    gov = make_governor(POLICY)
    bot = gov.agent("bot")
    for i in range(3):
        bot.check("http:post", {"url": f"https://evil.example.net/{i}"})  # allowed; the shadow deny would deny
    bot.check("http:post", {"url": "https://internal.example.com/ok"})  # allowed either way
    bot.check("pay", {"amount": 9000})  # escalate; the candidate denies
    bot.check("read:x")
    return gov


@pytest.fixture
def client(gov: Governor) -> Iterator[TestClient]:
    with TestClient(create_app(gov), base_url="http://127.0.0.1") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def body(**extra: object) -> dict[str, object]:
    return {"policy": CANDIDATE, "from": today(), "to": today(), **extra}


def test_replay_api_returns_the_clis_json(
    gov: Governor, client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, admin = gov.reviewers.add("root", roles=["admin"])
    r = client.post("/api/policy/replay", json=body(), headers=bearer(admin))
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["replayed"] == 6 and report["flips"] == 5 and report["allow_deny_flips"] == 4
    groups = {(g["rule"], g["before"], g["after"]): g["calls"] for g in report["groups"]}
    assert groups == {
        ("(no rule matched: default deny)", "allow", "deny"): 4,
        ('deny "pay" when amount > 5000 (candidate.yaml:5)', "escalate", "deny"): 1,
    }
    # The same report as `claw-gov policy replay candidate.yaml --json` over the same trail (run where the
    # file is, so that the rules' sources read `candidate.yaml:LINE` in both).
    (tmp_path / "cand").mkdir()
    (tmp_path / "cand" / "candidate.yaml").write_text(CANDIDATE)
    monkeypatch.chdir(tmp_path / "cand")
    candidate = Path("candidate.yaml")
    cli = CliRunner().invoke(
        build_cli(),
        ["policy", "replay", str(candidate), "--from", today(), "--to", today(), "--audit", str(gov.config.audit_path)],
    )
    assert cli.exit_code == 1, cli.output  # allow <-> deny flips fail the CI gate
    cli_json = CliRunner().invoke(
        build_cli(),
        [
            "policy",
            "replay",
            str(candidate),
            "--from",
            today(),
            "--to",
            today(),
            "--audit",
            str(gov.config.audit_path),
            "--json",
        ],
    )
    assert json.loads(cli_json.output) == report
    # --agent narrows it as in the CLI
    other = client.post("/api/policy/replay", json=body(agent_id="someone-else"), headers=bearer(admin)).json()
    assert other["replayed"] == 0 and other["groups"] == []


def test_replay_needs_an_admin_and_csrf_and_reads_no_server_path(gov: Governor, client: TestClient) -> None:
    _, plain = gov.reviewers.add("plain")
    _, admin = gov.reviewers.add("root", roles=["admin"], password="correct horse battery")
    assert client.post("/api/policy/replay", json=body()).status_code == 401
    r = client.post("/api/policy/replay", json=body(), headers=bearer(plain))
    assert r.status_code == 403 and "admin" in r.json()["detail"]
    # A path instead of a policy: there is no field for one, and a path as the text is YAML, not a file name.
    r = client.post("/api/policy/replay", json=body(path="/etc/passwd"), headers=bearer(admin))
    assert r.status_code == 422 and "unknown field" in r.json()["detail"]
    r = client.post("/api/policy/replay", json=body(policy="/etc/passwd"), headers=bearer(admin))
    assert r.status_code == 422 and r.json()["detail"].startswith("candidate.yaml:1:")
    assert "root:" not in r.text
    for bad in (
        body(policy="agent: bot\npermissions: {allow: [x]\n"),  # invalid YAML
        body(policy="agent: bot\npermissions:\n  alow: [x]\n"),  # unknown key
        body(policy=""),
        body(**{"from": "not a day"}),
        body(to=None),
        body(to="9999-12-31"),  # out of range: a one-line 422, not a 500 (red-team finding)
        body(**{"from": "1e400"}),
        body(to="1e400"),
    ):
        r = client.post("/api/policy/replay", json=bad, headers=bearer(admin))
        assert r.status_code == 422, (bad, r.text)
        assert "\n" not in r.json()["detail"]
    r = client.post(
        "/api/policy/replay", json=body(policy="agent: bot\npermissions:\n  alow: [x]\n"), headers=bearer(admin)
    )
    assert r.json()["detail"].startswith("candidate.yaml:3:")
    assert client.post("/api/policy/replay", content=b"x" * (300 * 1024), headers=bearer(admin)).status_code == 422
    # A session needs the CSRF header on this write, as on every other.
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    client.post("/login", data={"name": "root", "password": "correct horse battery", "csrf_token": token})
    r = client.post("/api/policy/replay", json=body())
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text).group(1)  # type: ignore[union-attr]
    assert client.post("/api/policy/replay", json=body(), headers={"X-CSRF-Token": csrf}).status_code == 200


def test_replay_page_shows_the_groups_as_a_table(gov: Governor, client: TestClient) -> None:
    gov.reviewers.add("root", roles=["admin"], password="correct horse battery")
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    client.post("/login", data={"name": "root", "password": "correct horse battery", "csrf_token": token})
    form = client.get("/policy/replay")
    assert form.status_code == 200 and 'id="replay-form"' in form.text and "replay-groups" not in form.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    fields = {"policy": CANDIDATE, "from": today(), "to": today(), "agent_id": ""}
    assert client.post("/policy/replay", data=fields).status_code == 403  # no CSRF token
    shown = client.post("/policy/replay", data={**fields, "csrf_token": csrf})
    assert shown.status_code == 200
    groups = shown.text.split('id="replay-groups"')[1].split("</table>")[0]
    assert "default deny" in groups and "allow &rarr; deny" in groups and "<td>4</td>" in groups
    assert "candidate.yaml:5" in groups and "escalate &rarr; deny" in groups
    bad = client.post("/policy/replay", data={**fields, "policy": "agent: [", "csrf_token": csrf})
    assert bad.status_code == 422 and 'id="error"' in bad.text and "candidate.yaml:1" in bad.text
    assert "agent: [" in bad.text  # the text stays in the form, to fix
    huge = client.post("/policy/replay", data={**fields, "policy": "#" * (300 * 1024), "csrf_token": csrf})
    assert huge.status_code == 422 and "over 262144 bytes" in huge.text  # the form has the API's bound


def test_audit_shadow_filter_lists_would_deny_entries(gov: Governor, client: TestClient) -> None:
    _, plain = gov.reviewers.add("plain")
    entries = client.get("/api/audit?shadow=would_deny", headers=bearer(plain)).json()["entries"]
    assert [e["context"]["url"] for e in entries] == [f"https://evil.example.net/{i}" for i in range(3)]
    assert all(
        e["decision"]["outcome"] == "allow" and e["decision"]["shadow"]["would"] == "would_deny" for e in entries
    )
    assert client.get("/api/audit?shadow=would_escalate", headers=bearer(plain)).json()["entries"] == []
    assert len(client.get("/api/audit?shadow=any&limit=2", headers=bearer(plain)).json()["entries"]) == 2
    # without the filter the limit counts every entry; with it, only the shadow ones
    assert client.get("/api/audit?shadow=maybe", headers=bearer(plain)).status_code == 422


def test_openapi_describes_replay_and_the_shadow_filter(gov: Governor, client: TestClient) -> None:
    from jsonschema import Draft202012Validator
    from openapi_spec_validator import validate

    doc = client.get("/api/openapi.json").json()
    validate(doc)
    assert "post" in doc["paths"]["/api/policy/replay"]
    shadow = [p for p in doc["paths"]["/api/audit"]["get"]["parameters"] if p["name"] == "shadow"]
    assert shadow and shadow[0]["schema"]["enum"] == ["any", "would_deny", "would_escalate", "would_allow"]
    _, admin = gov.reviewers.add("root", roles=["admin"])
    report = client.post("/api/policy/replay", json=body(), headers=bearer(admin)).json()
    for name, instance in (("ReplayReport", report), ("ReplayRequest", body())):
        schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
        Draft202012Validator(schema).validate(instance)
    with pytest.raises(Exception, match="Additional properties"):
        Draft202012Validator({"$ref": "#/components/schemas/ReplayRequest", "components": doc["components"]}).validate(
            body(path="/etc/passwd")
        )
