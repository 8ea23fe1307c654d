"""The fleet-wide audit view: local trails copied to PostgreSQL, verified and queried from the database."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import psycopg
from click.testing import CliRunner

from claw_governance import Governor
from claw_governance.audit.keys import PublicKey, public_key_from_text
from claw_governance.audit.sink import AuditReplicator, FleetReader
from claw_governance.cli import build_cli

POLICY = """\
agent: bot
permissions:
  allow: ["read:*"]
  deny: ["delete:*"]
"""


def governor(root: Path, sink: str, **kw: object) -> Governor:
    (root / "policies").mkdir(parents=True, exist_ok=True)
    (root / "policies" / "bot.yaml").write_text(POLICY)
    kw.setdefault("audit_checkpoint_interval", 10)
    kw.setdefault("audit_sink_interval", 0.2)
    return Governor(
        root / "policies", root / "audit", root / "identities", audit_sink=sink, load_entry_points=False, **kw
    )  # type: ignore[arg-type]


def local_lines(root: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in (root / "audit").glob("segment-*.jsonl"))


def public_key(root: Path) -> Path:
    with Governor(None, None, root / "identities", load_entry_points=False) as gov:
        pem = gov.audit.key.public.pem()
    path = root / "governor.pem"
    path.write_bytes(pem)
    return path


def work(gov: Governor, n: int) -> None:
    agent = gov.agent("bot")
    for i in range(n):
        assert agent.execute("read:file", {"i": i}, lambda ctx: "ok").success
        assert not agent.check("delete:file", {"i": i}).allowed


def test_two_hosts_copy_their_trails_once_and_the_fleet_verifies(tmp_path: Path, pg_url: str) -> None:
    a, b = tmp_path / "host-a", tmp_path / "host-b"
    with governor(a, pg_url) as gov_a, governor(b, pg_url) as gov_b:
        work(gov_a, 15)
        work(gov_b, 7)
        trail_a = gov_a.audit.trail_id
    # close() made a final copy: every local line is in the database, once
    with psycopg.connect(pg_url) as conn:
        counts = dict(conn.execute("SELECT trail_id, COUNT(*) FROM claw_audit_entries GROUP BY trail_id").fetchall())
    assert sorted(counts.values()) == sorted([local_lines(a), local_lines(b)])
    assert counts[trail_a] == local_lines(a)
    # a second copier of the same trail (a restart, another process) adds nothing
    again = AuditReplicator(a / "audit", pg_url)
    assert again.sync() == 0 and again.replicated_seq == local_lines(a) and again.last_error is None
    again.close()
    reader = FleetReader(pg_url, public_keys=[_key(a), _key(b)])  # only keys obtained from the hosts vouch
    try:
        report = reader.verify()
        assert report.valid, report.errors
        assert report.entries == local_lines(a) + local_lines(b) and report.segments == 2
        assert report.checkpoints >= 2
        assert {t["trail_id"] for t in reader.trails()} == set(counts)
        denied = reader.query(agent_id="bot", outcome="deny")
        assert len(denied) == 22 and {e["trail_id"] for e in denied} == set(counts)
    finally:
        reader.close()


def _key(host: Path) -> PublicKey:
    return public_key_from_text(public_key(host).read_bytes())


def test_tampering_with_a_row_is_detected_like_tampering_with_a_file(tmp_path: Path, pg_url: str) -> None:
    a = tmp_path / "host-a"
    with governor(a, pg_url) as gov:
        work(gov, 12)
        trail = gov.audit.trail_id
    key = public_key(a)
    run = CliRunner()
    ok = run.invoke(build_cli(), ["audit", "verify", "--store", pg_url, "--public-key", str(key)])
    assert ok.exit_code == 0, ok.output
    assert "VALID" in ok.output and "keys: given" in ok.output
    with psycopg.connect(pg_url, autocommit=True) as conn:
        line = conn.execute("SELECT line FROM claw_audit_entries WHERE trail_id=%s AND seq=5", (trail,)).fetchone()[0]
        assert '"i":' in line
        conn.execute(
            "UPDATE claw_audit_entries SET line=%s WHERE trail_id=%s AND seq=5",
            (line.replace('"i":', '"j":', 1), trail),
        )
    bad = run.invoke(build_cli(), ["audit", "verify", "--store", pg_url, "--public-key", str(key)])
    assert bad.exit_code == 1 and "INVALID" in bad.output
    assert f"trail {trail} seq 5" in bad.output and "a field was changed" in bad.output


def test_deleting_the_newest_rows_is_caught_by_the_copied_checkpoint(tmp_path: Path, pg_url: str) -> None:
    a = tmp_path / "host-a"
    with governor(a, pg_url) as gov:
        work(gov, 12)
        trail = gov.audit.trail_id
    with psycopg.connect(pg_url, autocommit=True) as conn:
        (cp_seq,) = conn.execute("SELECT seq FROM claw_audit_checkpoints WHERE trail_id=%s", (trail,)).fetchone()
        conn.execute("DELETE FROM claw_audit_entries WHERE trail_id=%s AND seq >= %s", (trail, cp_seq - 2))
    reader = FleetReader(pg_url, public_keys=[_key(a)])
    try:
        report = reader.verify_trail(trail)
    finally:
        reader.close()
    assert not report.valid
    assert any("truncated" in e["message"] for e in report.errors), report.errors


def test_a_foreign_key_and_a_missing_row_are_errors(tmp_path: Path, pg_url: str) -> None:
    a, other = tmp_path / "host-a", tmp_path / "other"
    with governor(a, pg_url) as gov:
        work(gov, 12)
        trail = gov.audit.trail_id
    foreign = public_key(other)
    wrong = CliRunner().invoke(
        build_cli(), ["audit", "verify", "--store", pg_url, "--public-key", str(foreign), "--json"]
    )
    assert wrong.exit_code == 1
    assert any(
        "not trusted" in e["message"] or "not signed by a trusted key" in e["message"]
        for e in json.loads(wrong.output)["errors"]
    )
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM claw_audit_entries WHERE trail_id=%s AND seq=3", (trail,))
    reader = FleetReader(pg_url, public_keys=[_key(a)])
    try:
        report = reader.verify()
    finally:
        reader.close()
    assert not report.valid and report.errors[0]["seq"] == 3 and "missing" in report.errors[0]["message"]


def test_a_database_outage_never_blocks_a_call_and_shows_as_degraded_lag(tmp_path: Path, pg_url: str) -> None:
    dead = "postgresql://postgres@127.0.0.1:1/none"
    with governor(tmp_path / "h", dead) as gov:
        work(gov, 5)
        gov.audit_sink.sync()
        health = gov.health_check()
        sink = health["components"]["audit_sink"]
        assert sink["status"] == "degraded" and "127.0.0.1:1" in sink["url"] and sink["last_error"]
        assert sink["lag"]["entries"] == sink["local_seq"] > 0  # nothing reached the database
        assert health["status"] == "degraded"
        assert gov.agent("bot").execute("read:x", {}, lambda ctx: "still works").output == "still works"


def test_the_copy_resumes_after_its_connection_is_killed(tmp_path: Path, pg_url: str) -> None:
    root = tmp_path / "h"
    with governor(root, pg_url, audit_sink_interval=3600) as gov:  # rounds by hand only
        sink = gov.audit_sink
        work(gov, 3)
        assert sink.sync() > 0 and sink.health()["status"] == "ok"
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND application_name = 'claw-audit-sink'"
            )
        work(gov, 3)
        assert sink.sync() == 0 and sink.health()["status"] == "degraded"
        assert sink.lag()["entries"] > 0
        assert sink.sync() > 0 and sink.health()["status"] == "ok" and sink.lag()["entries"] == 0
        trail = gov.audit.trail_id
    with psycopg.connect(pg_url) as conn:
        (n,) = conn.execute("SELECT COUNT(*) FROM claw_audit_entries WHERE trail_id=%s", (trail,)).fetchone()
    assert n == local_lines(root)


def test_query_and_report_read_the_fleet(tmp_path: Path, pg_url: str) -> None:
    a, b = tmp_path / "host-a", tmp_path / "host-b"
    with governor(a, pg_url) as gov_a, governor(b, pg_url) as gov_b:
        work(gov_a, 4)
        work(gov_b, 3)
    run = CliRunner()
    query = run.invoke(
        build_cli(), ["audit", "query", "--store", pg_url, "--type", "policy_decision", "--outcome", "allow"]
    )
    assert query.exit_code == 0, query.output
    rows = [json.loads(x) for x in query.output.splitlines()]
    assert len(rows) == 7 and len({r["trail_id"] for r in rows}) == 2
    today = dt.datetime.now(dt.UTC).date().isoformat()
    report = run.invoke(build_cli(), ["audit", "report", "--store", pg_url, "--from", today, "--to", today])
    assert report.exit_code == 0, report.output
    summary = json.loads(report.output)["summary"]
    assert summary["total_decisions"] == 14 and summary["allowed"] == 7 and summary["denied"] == 7
    bad = run.invoke(build_cli(), ["audit", "verify", "--store", "mysql://x"])
    assert bad.exit_code == 2 and bad.output.strip().startswith("error: --store must be a postgresql:// URL")
