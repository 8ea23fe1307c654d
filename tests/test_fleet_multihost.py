"""Several hosts, one PostgreSQL: every scenario runs real processes, each "host" with its own local folders
(policies, audit trail, identities) and nothing shared but the database.

- an escalation opened on host A is approved with the CLI on host B; the tool on A runs exactly once;
- 4 processes on 2 hosts update one trust score; no update is lost;
- a signed call replayed on the other host is denied (the nonce is unique across hosts);
- a revocation made on host B stops host A's agent within the sync interval.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from claw_governance.model import EscalationStatus
from claw_governance.state.postgres import PostgresStateStore

POLICY = """\
agent: bot
permissions:
  allow: ["read:*", "work"]
  escalate:
    - action: refund
      condition: amount > 500
      timeout: 10m
trust: {initial: 500, max_score: 1000, min_score: 10}
"""


def host(tmp_path: Path, name: str) -> Path:
    """A host's own folder with its own copy of the policy."""
    root = tmp_path / name
    (root / "policies").mkdir(parents=True, exist_ok=True)
    (root / "policies" / "bot.yaml").write_text(POLICY)
    return root


def python(code: str, *args: str, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "STATE_URL": url},
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> dict[str, object]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def cli(root: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from claw_governance.cli import main; main()",
            *args,
            "--policies",
            str(root / "policies"),
            "--audit",
            str(root / "audit"),
            "--identities",
            str(root / "identities"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "STATE_URL": url},
    )


GOV = """
    import json, os, sys, time
    from pathlib import Path
    from claw_governance import Governor
    root = Path(sys.argv[1])
    def governor(**kw):
        return Governor(root / "policies", root / "audit", root / "identities", load_entry_points=False,
                        state_url=os.environ["STATE_URL"], **kw)
"""

ESCALATING_AGENT = (
    GOV
    + """
    def refund(ctx):
        with open(root / "runs.txt", "a") as fh:
            fh.write(f"refunded {ctx['amount']}\\n")
        return "refunded"

    with governor() as gov:
        agent = gov.agent("bot")
        r = agent.execute("refund", {"orderId": "A-7", "amount": 900}, refund, wait_for_approval=90)
        again = agent.execute("refund", {"orderId": "A-7", "amount": 900}, refund)
        print(json.dumps({"success": r.success, "reason": r.decision.reason, "escalation_id": r.escalation_id,
                          "again": again.decision.outcome.value}))
"""
)


def test_escalation_on_a_approved_by_cli_on_b_runs_once_on_a(tmp_path: Path, pg_url: str) -> None:
    a, b = host(tmp_path, "host-a"), host(tmp_path, "host-b")
    agent = python(ESCALATING_AGENT, str(a), url=pg_url)
    store = PostgresStateStore(pg_url)
    try:
        deadline = time.monotonic() + 90
        pending = []
        while not pending and time.monotonic() < deadline:
            assert agent.poll() is None, agent.communicate()
            pending = store.list_escalations(EscalationStatus.PENDING)
            time.sleep(0.05)
        assert pending, "host A never opened an escalation"
        escalation_id = pending[0].id
        listed = cli(b, pg_url, "escalations", "list", "--json")  # B sees A's queue
        assert listed.returncode == 0, listed.stderr
        assert [e["id"] for e in json.loads(listed.stdout)] == [escalation_id]
        added = cli(b, pg_url, "reviewer", "add", "alice@example.com")  # a reviewer in the fleet's registry
        assert added.returncode == 0, added.stderr
        approved = cli(
            b,
            pg_url,
            "escalations",
            "approve",
            escalation_id,
            "--by",
            "alice@example.com",
            "--notes",
            "verified by phone",
        )
        assert approved.returncode == 0, approved.stderr
        result = finish(agent)
    finally:
        store.close()
        if agent.poll() is None:
            agent.kill()
    assert result["success"] and result["escalation_id"] == escalation_id
    assert "Approved by a human" in str(result["reason"])
    assert result["again"] == "escalate"  # the grant is used up on every host
    assert (a / "runs.txt").read_text().splitlines() == ["refunded 900"]
    assert not (b / "runs.txt").exists()
    assert (
        not (a / "identities" / ".state" / "state.db").exists()
        and not (b / "identities" / ".state" / "state.db").exists()
    )
    grant_again = PostgresStateStore(pg_url)
    try:
        assert grant_again.consume_grant("bot", "refund", pending[0].args_hash, time.time()) is None
    finally:
        grant_again.close()


TRUST_WORKER = (
    GOV
    + """
    n_ok, n_fail = int(sys.argv[2]), int(sys.argv[3])
    with governor(state_sync_interval=0.2) as gov:
        agent = gov.agent("bot")
        for i in range(max(n_ok, n_fail)):
            if i < n_ok:
                assert agent.execute("work", {"i": i}, lambda ctx: "ok").success
            if i < n_fail:
                r = agent.execute("work", {"i": i}, lambda ctx: 1 / 0)
                assert r.decision.allowed and not r.success
    print(json.dumps({"done": True}))
"""
)


def test_four_processes_on_two_hosts_lose_no_trust_update(tmp_path: Path, pg_url: str) -> None:
    a, b = host(tmp_path, "host-a"), host(tmp_path, "host-b")
    n_ok, n_fail = 40, 6
    # identity created once first, so the four workers race on updates, not on creation
    setup = python(
        GOV + "\n    with governor() as gov:\n        gov.agent('bot')\n    print('{}')\n", str(a), url=pg_url
    )
    finish(setup)
    workers = [python(TRUST_WORKER, str(root), str(n_ok), str(n_fail), url=pg_url) for root in (a, a, b, b)]
    for w in workers:
        assert finish(w) == {"done": True}
    store = PostgresStateStore(pg_url)
    try:
        # initial 500, far from 0 and from the 1000 ceiling: nothing is clamped, so every update shows
        assert store.get_trust("bot") == 500 + 4 * (n_ok * 1 + n_fail * -5)
    finally:
        store.close()


SIGNER = (
    GOV
    + """
    from claw_governance.model import Outcome
    with governor(require_signature=True) as gov:
        agent = gov.agent("bot")
        used = gov.make_call("bot", "read:file", {"path": "/etc/motd"})
        assert gov.before_call(used).outcome is Outcome.ALLOW
        fresh = gov.make_call("bot", "read:file", {"path": "/srv/other"})
        def dump(call):
            s = call.signature
            return {"agent_id": call.agent_id, "action": call.action, "args": dict(call.args),
                    "signature": [s.value, s.nonce, s.timestamp, s.key_id]}
        print(json.dumps({"used": dump(used), "fresh": dump(fresh)}))
"""
)

VERIFIER = (
    GOV
    + """
    from claw_governance.model import Signature, ToolCall
    calls = json.loads(sys.argv[2])
    with governor(require_signature=True, auto_create_identity=False) as gov:
        out = {}
        for name in ("used", "fresh", "used"):
            c = calls[name]
            call = ToolCall(c["agent_id"], c["action"], c["args"], signature=Signature(*c["signature"]))
            d = gov.before_call(call)
            out.setdefault(name, []).append([d.outcome.value, d.reason])
        print(json.dumps(out))
"""
)


def test_a_signed_call_replayed_on_the_other_host_is_denied(tmp_path: Path, pg_url: str) -> None:
    a, b = host(tmp_path, "host-a"), host(tmp_path, "host-b")
    signed = finish(python(SIGNER, str(a), url=pg_url))
    assert not any((b / "identities").glob("*.key")) if (b / "identities").exists() else True
    seen = finish(python(VERIFIER, str(b), json.dumps(signed), url=pg_url))
    (replayed, replayed_again), (fresh,) = seen["used"], seen["fresh"]  # type: ignore[misc]
    assert replayed[0] == "deny" and "replay" in replayed[1].lower(), replayed
    assert replayed_again[0] == "deny"
    # B verifies A's signatures with the public key from the shared store: the first use of a nonce passes,
    # so the replay above was refused for its nonce, not for an unknown key
    assert fresh[0] == "allow", fresh
    assert not any((b / "identities").glob("*.key"))  # B never had A's private key


LOOPING_AGENT = (
    GOV
    + """
    started = time.time()
    with governor(state_sync_interval=float(sys.argv[2])) as gov:
        agent = gov.agent("bot")
        (root / "ready").write_text("1")
        allowed = 0
        while time.time() - started < 60:
            d = agent.check("read:data")
            if not d.allowed:
                print(json.dumps({"denied_at": time.time(), "reason": d.reason, "allowed": allowed}))
                break
            allowed += 1
            time.sleep(0.01)
"""
)


def test_a_revocation_on_b_stops_the_agent_on_a_within_the_sync_interval(tmp_path: Path, pg_url: str) -> None:
    a, b = host(tmp_path, "host-a"), host(tmp_path, "host-b")
    agent = python(LOOPING_AGENT, str(a), "0.5", url=pg_url)
    try:
        deadline = time.monotonic() + 90
        while not (a / "ready").exists():
            assert agent.poll() is None and time.monotonic() < deadline, agent.communicate()
            time.sleep(0.05)
        revoked = cli(b, pg_url, "identity", "revoke", "bot", "--reason", "key leaked", "--by", "sec@example.com")
        revoked_at = time.time()  # the CLI has returned: the revocation is committed
        assert revoked.returncode == 0, revoked.stderr
        result = finish(agent)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert int(result["allowed"]) > 0  # it was running before
    assert "revoked" in str(result["reason"]).lower()
    # seen within one sync interval (0.5 s) of the commit, plus scheduling slack on a loaded 2-core machine
    assert float(result["denied_at"]) - revoked_at < 0.5 + 2.0
    shutil.rmtree(a / "audit", ignore_errors=True)


def test_listen_notify_brings_a_revocation_long_before_the_next_sync(tmp_path: Path, pg_url: str) -> None:
    a, b = host(tmp_path, "host-a"), host(tmp_path, "host-b")
    agent = python(LOOPING_AGENT, str(a), "60", url=pg_url)  # the periodic sync would take up to a minute
    try:
        deadline = time.monotonic() + 90
        while not (a / "ready").exists():
            assert agent.poll() is None and time.monotonic() < deadline, agent.communicate()
            time.sleep(0.05)
        time.sleep(1.0)  # the listener is connected
        revoked = cli(b, pg_url, "identity", "revoke", "bot", "--reason", "key leaked", "--by", "sec@example.com")
        revoked_at = time.time()
        assert revoked.returncode == 0, revoked.stderr
        result = finish(agent)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert "revoked" in str(result["reason"]).lower()
    assert float(result["denied_at"]) - revoked_at < 10  # NOTIFY at commit, not the 60 s sync


SINK_WORKER = (
    GOV
    + """
    with governor(audit_sink=os.environ["STATE_URL"], audit_sink_interval=0.2) as gov:
        agent = gov.agent("bot")
        for i in range(int(sys.argv[2])):
            agent.execute("read:file", {"i": i}, lambda ctx: "ok")
            agent.check("refund", {"amount": 900 + i})
        trail = gov.audit.trail_id
    print(json.dumps({"trail": trail}))
"""
)


def test_two_hosts_audit_sinks_make_one_verifiable_fleet_trail(tmp_path: Path, pg_url: str) -> None:
    a, b = host(tmp_path, "host-a"), host(tmp_path, "host-b")
    workers = [python(SINK_WORKER, str(a), "30", url=pg_url), python(SINK_WORKER, str(b), "20", url=pg_url)]
    trails = [finish(w)["trail"] for w in workers]
    local = {r: sum(len(p.read_bytes().splitlines()) for p in (r / "audit").glob("segment-*.jsonl")) for r in (a, b)}
    ops = tmp_path / "ops"
    ops.mkdir()
    verified = subprocess.run(
        [
            sys.executable,
            "-c",
            "from claw_governance.cli import main; main()",
            "audit",
            "verify",
            "--store",
            pg_url,
            "--public-key",  # the keys of the hosts, obtained from them (never from the database)
            f"{a}/identities/.state/governor_ed25519.pem,{b}/identities/.state/governor_ed25519.pem",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ops,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert (
        report["valid"]
        and report["entries"] == local[a] + local[b]
        and set(report["trail_id"].split(",")) == set(trails)
    )
    queued = subprocess.run(
        [
            sys.executable,
            "-c",
            "from claw_governance.cli import main; main()",
            "audit",
            "query",
            "--store",
            pg_url,
            "--outcome",
            "escalate",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ops,
    )
    assert queued.returncode == 0, queued.stderr
    assert len(queued.stdout.splitlines()) == 50  # every escalation of both hosts, from one place
