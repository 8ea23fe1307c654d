"""What only the PostgreSQL store has: its migration table, concurrent start-up, selection by URL, errors.

The shared contract (and its concurrency) is in test_state_conformance.py, run against every backend.
"""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from claw_governance import Governor
from claw_governance.config import GovernorConfig, config_from_env
from claw_governance.errors import ConfigError
from claw_governance.state import open_state_store
from claw_governance.state.postgres import SCHEMA_VERSION, PostgresStateStore


def test_schema_is_versioned_and_a_newer_database_is_refused(pg_url: str) -> None:
    first = PostgresStateStore(pg_url)
    again = PostgresStateStore(pg_url)  # re-opening applies nothing twice
    try:
        assert first.schema_version == again.schema_version == SCHEMA_VERSION
    finally:
        first.close()
        again.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        applied = conn.execute("SELECT version FROM claw_schema_migrations ORDER BY version").fetchall()
        assert [v for (v,) in applied] == list(range(1, SCHEMA_VERSION + 1))
        conn.execute("INSERT INTO claw_schema_migrations VALUES (%s, 0)", (SCHEMA_VERSION + 1,))
    with pytest.raises(ConfigError, match="newer than this claw-governance"):
        PostgresStateStore(pg_url)


def test_hosts_starting_together_migrate_once(pg_url: str) -> None:
    barrier = threading.Barrier(4)
    opened: list[PostgresStateStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            opened.append(PostgresStateStore(pg_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not errors and len(opened) == 4
        assert all(s.schema_version == SCHEMA_VERSION for s in opened)
    finally:
        for s in opened:
            s.close()


def test_selected_by_state_url_and_state_url_env(pg_url: str, tmp_path: Path) -> None:
    s = open_state_store(GovernorConfig(state_url=pg_url, identity_path=tmp_path / "ids"))
    try:
        assert isinstance(s, PostgresStateStore)
    finally:
        s.close()
    assert config_from_env({"STATE_URL": pg_url}).state_url == pg_url
    with Governor(None, tmp_path / "audit", tmp_path / "ids", state_url=pg_url, load_entry_points=False) as gov:
        assert isinstance(gov.state, PostgresStateStore)
        gov.agent("bot")
        assert not (tmp_path / "ids" / ".state" / "state.db").exists()  # the shared state is not local
    other = PostgresStateStore(pg_url)
    try:
        assert other.get_identity("bot") is not None
    finally:
        other.close()


def test_unreachable_database_and_bad_urls_are_one_line_errors() -> None:
    with pytest.raises(ConfigError) as info:
        PostgresStateStore("postgresql://postgres:hunter2@127.0.0.1:1/none", connect_timeout=1)
    message = str(info.value)
    assert "\n" not in message and "hunter2" not in message
    assert message.startswith("postgresql://postgres@127.0.0.1:1/none: cannot open the PostgreSQL state store")
    with pytest.raises(ConfigError, match="state_url must start with postgresql://"):
        GovernorConfig(state_url="mysql://x")


def test_a_truncated_local_trail_is_caught_by_the_checkpoint_copy_in_postgres(pg_url: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from claw_governance.cli import build_cli

    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "bot.yaml").write_text('agent: bot\npermissions:\n  allow: ["read:*"]\n')
    with Governor(
        tmp_path / "policies",
        tmp_path / "audit",
        tmp_path / "ids",
        state_url=pg_url,
        load_entry_points=False,
        audit_checkpoint_interval=5,
    ) as gov:
        for i in range(12):
            gov.agent("bot").check("read:x", {"i": i})
        trail = gov.audit.trail_id
    store = PostgresStateStore(pg_url)
    try:
        anchor = store.latest_checkpoint(trail)
    finally:
        store.close()
    assert anchor is not None and anchor["seq"] > 10
    args = ["audit", "verify", "--audit", str(tmp_path / "audit"), "--identities", str(tmp_path / "ids")]
    assert CliRunner().invoke(build_cli(), args, env={"STATE_URL": pg_url}).exit_code == 0
    # an intruder on the host cuts the newest entries and the local checkpoint copy
    (segment,) = sorted((tmp_path / "audit").glob("segment-*.jsonl"))
    lines = segment.read_bytes().splitlines(keepends=True)
    segment.chmod(0o644)
    segment.write_bytes(b"".join(lines[:5]))
    (tmp_path / "audit" / "checkpoint.json").unlink()
    local_only = CliRunner().invoke(build_cli(), args, env={"STATE_URL": ""})
    fleet = CliRunner().invoke(build_cli(), args, env={"STATE_URL": pg_url})
    assert fleet.exit_code == 1 and "truncated" in fleet.output
    # without the database's copy the cut is caught too: no checkpoint signed by a trusted key covers the rest
    assert local_only.exit_code == 1 and local_only.output.startswith("INVALID")


def test_killed_database_connections_fail_closed_once_then_recover(pg_url: str, tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "bot.yaml").write_text('agent: bot\npermissions:\n  allow: ["read:*"]\n  escalate: [refund]\n')
    with Governor(
        tmp_path / "p",
        tmp_path / "a",
        tmp_path / "i",
        state_url=pg_url,
        load_entry_points=False,
        state_sync_interval=0.2,
    ) as gov:
        agent = gov.agent("bot")
        assert agent.check("refund", {"n": 0}).outcome.value == "escalate"
        with psycopg.connect(pg_url, autocommit=True) as admin:  # a database restart, as the pool sees it
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'claw-governance%'"
            )
        seen = [
            (agent.check("read:x").outcome.value, agent.check("refund", {"n": i}).outcome.value) for i in range(1, 5)
        ]
    # the cached hot path never noticed; a call that needed the database was denied, never allowed; then back
    assert all(allowed == "allow" for allowed, _ in seen)
    assert all(esc in ("deny", "escalate") for _, esc in seen) and seen[-1][1] == "escalate"
