"""Hot reload never reads a half-written policy and reports a failure once (issue 13, class 5).

On the code before this change a policy rewritten in place (``open('w')`` then slow writes) was loaded
half-written, so a denied action was ALLOWED while the rewrite was under way, and a deleted policy folder
wrote a ``policy_reload`` failure entry on every watcher tick.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from claw_governance import Governor, Outcome
from claw_governance.model import ToolCall
from claw_governance.policy.store import PolicyStore, UnstableFiles, read_snapshot, stable_snapshot

# allow comes first: every prefix of this file that parses allows everything and denies nothing.
POLICY = 'agent: "*"\npermissions:\n  allow: ["*"]\n  deny: ["delete:*", "drop:*"]\n'
DENIED = ToolCall("bot", "delete:users", {})


def _wait(predicate, seconds: float = 20.0) -> None:  # a bound on a wait, not a timing assertion
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def test_half_written_file_is_never_taken_tick_by_tick(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    store = PolicyStore(tmp_path)
    taken = []
    with (tmp_path / "p.yaml").open("w") as handle:  # truncated: empty
        store.reload(force=False)
        taken.append(store.current.decide(DENIED).outcome)
        for index in range(0, len(POLICY), 3):
            handle.write(POLICY[index : index + 3])
            handle.flush()
            store.reload(force=False)  # one watcher tick per write: the content differs every time
            taken.append(store.current.decide(DENIED).outcome)
    assert Outcome.ALLOW not in taken
    assert store.last_error is None  # a changing file is not an error: it is looked at again next tick
    store.reload(force=False)
    store.reload(force=False)  # stable across two ticks: taken
    assert store.current.decide(DENIED).outcome is Outcome.DENY


def test_stable_partial_file_needs_two_identical_reads(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    store = PolicyStore(tmp_path)
    (tmp_path / "p.yaml").write_text('agent: "*"\npermissions:\n  allow: ["*"]\n')
    first = store.reload(force=False)
    assert not first.changed and store.current.decide(DENIED).outcome is Outcome.DENY  # seen once: not yet
    second = store.reload(force=False)
    assert second.changed and store.current.decide(DENIED).outcome is Outcome.ALLOW  # the same twice: taken


def test_reload_refuses_files_that_keep_changing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    snap = read_snapshot(tmp_path)
    assert [len(raw) for _, raw in snap.files] == [len(POLICY)]
    # A writer appends between every two reads (deterministically: in place of the settle pause).
    monkeypatch.setattr(
        "claw_governance.policy.store.time.sleep", lambda seconds: (tmp_path / "p.yaml").open("a").write("# more\n")
    )
    with pytest.raises(UnstableFiles, match="kept changing"):
        stable_snapshot(tmp_path, 0.01, attempts=5)
    monkeypatch.undo()
    store = PolicyStore(tmp_path)
    monkeypatch.setattr(
        "claw_governance.policy.store.time.sleep", lambda seconds: (tmp_path / "p.yaml").open("a").write("# more\n")
    )
    result = store.reload()
    assert result.error is not None and "kept changing" in result.error
    assert store.current.decide(DENIED).outcome is Outcome.DENY  # the policy in force stays
    monkeypatch.undo()
    assert store.reload().error is None  # once the writes stop, it loads


def test_writer_rewriting_in_place_never_opens_the_door(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.yaml").write_text(POLICY)
    with Governor(policies, tmp_path / "audit", tmp_path / "ids", policy_reload_interval=0.25) as gov:
        stop = threading.Event()
        outcomes: list[Outcome] = []

        def check() -> None:
            while not stop.is_set():
                outcomes.append(gov.policy.decide(DENIED).outcome)

        checker = threading.Thread(target=check)
        checker.start()
        try:
            for _ in range(5):
                with (policies / "p.yaml").open("w") as handle:  # in place, as `cat > p.yaml` does
                    for index in range(0, len(POLICY), 4):
                        handle.write(POLICY[index : index + 4])
                        handle.flush()
                        time.sleep(0.002)
                _wait(lambda start=gov.policies.ticks: gov.policies.ticks >= start + 3)
        finally:
            stop.set()
            checker.join()
        assert len(outcomes) > 1000
        assert outcomes.count(Outcome.ALLOW) == 0
        assert gov.policy.decide(DENIED).outcome is Outcome.DENY


def test_deleted_folder_is_reported_once(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.yaml").write_text(POLICY)
    with Governor(policies, tmp_path / "audit", tmp_path / "ids", policy_reload_interval=0.02) as gov:
        shutil.rmtree(policies)
        _wait(lambda: gov.policies.last_error is not None)
        ticks = gov.policies.ticks
        _wait(lambda: gov.policies.ticks >= ticks + 20)  # twenty more watcher passes
        failures = [e for e in gov.audit.query(type="policy_reload") if not e["details"]["ok"]]
        assert len(failures) == 1, failures
        assert "does not exist" in failures[0]["details"]["error"]
        health = gov.health_check()
        assert health["components"]["policy"]["status"] == "degraded"
        assert gov.policy.decide(DENIED).outcome is Outcome.DENY  # the last good policy stays in force
        # A different error is reported again, once.
        policies.mkdir()
        (policies / "p.yaml").write_text("agent: [\n")
        _wait(lambda: len([e for e in gov.audit.query(type="policy_reload") if not e["details"]["ok"]]) == 2)
        ticks = gov.policies.ticks
        _wait(lambda: gov.policies.ticks >= ticks + 10)
        assert len([e for e in gov.audit.query(type="policy_reload") if not e["details"]["ok"]]) == 2


def test_deleting_a_file_with_deny_rules_degrades_health(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "allow.yaml").write_text('agent: "*"\npermissions:\n  allow: ["*"]\n')
    (policies / "deny.yaml").write_text('agent: bot\npermissions:\n  deny: ["delete:*"]\n')
    with Governor(policies, tmp_path / "audit", tmp_path / "ids", policy_reload_interval=0.02) as gov:
        assert gov.health_check()["components"]["policy"]["status"] == "ok"
        (policies / "deny.yaml").unlink()
        _wait(lambda: gov.policies.degraded is not None)
        policy = gov.health_check()["components"]["policy"]
        assert policy["status"] == "degraded" and "deny.yaml (1 deny rule)" in policy["deny_rules_lost"]
        # the reload is audited by the watcher thread just after the store took the new policy: wait for it too
        _wait(lambda: any(e["details"]["changed"] for e in gov.audit.query(type="policy_reload")))
        reloads = [e for e in gov.audit.query(type="policy_reload") if e["details"]["changed"]]
        assert reloads[-1]["details"]["removed_deny_files"] == [str(policies / "deny.yaml")]
        # Another edit elsewhere does not hide it.
        (policies / "allow.yaml").write_text('agent: "*"\npermissions:\n  allow: ["*", "x"]\n')
        _wait(lambda: len(gov.policy.files) == 1 and gov.policy.rule_count == 2)
        assert gov.health_check()["components"]["policy"]["status"] == "degraded"
        # The file comes back: healthy again.
        (policies / "deny.yaml").write_text('agent: bot\npermissions:\n  deny: ["delete:*"]\n')
        _wait(lambda: gov.policies.degraded is None)
        assert gov.health_check()["components"]["policy"]["status"] == "ok"
        # An explicit reload is the operator accepting the removal.
        (policies / "deny.yaml").unlink()
        gov.reload_policies()
        assert gov.policies.degraded is None


def _lint_against_running(policies: Path, audit: Path) -> tuple[int, str]:
    from click.testing import CliRunner

    from claw_governance.cli import build_cli

    result = CliRunner().invoke(
        build_cli(),
        ["policy", "lint", str(policies), "--against-running", "--audit", str(audit)],
        env={"AUDIT_PATH": None},
        prog_name="claw-gov",
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_lint_against_running_shows_lost_deny_rules(tmp_path: Path) -> None:
    policies, audit = tmp_path / "policies", tmp_path / "audit"
    policies.mkdir()
    (policies / "allow.yaml").write_text('agent: "*"\npermissions:\n  allow: ["*"]\n')
    (policies / "deny.yaml").write_text('agent: bot\npermissions:\n  deny: ["delete:*"]\n')
    with Governor(policies, audit, tmp_path / "ids", policy_reload_interval=0.02) as gov:
        gov.agent("bot").check("read:x")  # the trail now records the policy in force
        code, out = _lint_against_running(policies, audit)
        assert code == 0 and "0 error(s)" in out, out
        (policies / "deny.yaml").unlink()
        _wait(lambda: gov.policies.degraded is not None)
        gov.agent("bot").check("read:x")
        code, out = _lint_against_running(policies, audit)
        assert code == 1 and "deny.yaml: error: held deny rules" in out, out
        # A broken file the watcher refused: the running policy differs from the files, and the failure shows.
        (policies / "allow.yaml").write_text("agent: [\n")
        _wait(lambda: gov.policies.last_error is not None)
        code, out = _lint_against_running(policies, audit)
        assert code == 1 and "the last reload failed" in out, out
        (policies / "allow.yaml").write_text('agent: "*"\npermissions:\n  allow: ["*"]\n')
        (policies / "deny.yaml").write_text('agent: bot\npermissions:\n  deny: ["delete:*"]\n')
        _wait(lambda: gov.policies.degraded is None and gov.policies.last_error is None)
        gov.agent("bot").check("read:x")
        code, out = _lint_against_running(policies, audit)
        assert code == 0, out
