"""The StateStore contract, one suite run against every implementation: memory, SQLite and PostgreSQL.

The PostgreSQL runs use the server at CLAW_TEST_POSTGRES_URL, in a fresh schema per test, and FAIL (never
skip) when it is not reachable. Concurrency tests use several store objects (several connection pools),
as several hosts would.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from claw_governance.errors import ConfigError, EscalationClosed, EscalationError, EscalationNotFound
from claw_governance.model import Escalation, EscalationStatus
from claw_governance.state import (
    ACTIVE,
    REVOKED,
    IdentityRecord,
    KeyRecord,
    MemoryStateStore,
    SQLiteStateStore,
    StateStore,
)
from claw_governance.state.base import BudgetUse, JobRecord, Resolution, ReviewerRecord

BACKENDS = ["memory", "sqlite", "postgres"]
SHARED = ["sqlite", "postgres"]  # the ones several processes (hosts) can share


@pytest.fixture
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], StateStore]]:
    """Opens stores of the backend in ``request.param`` that all see the same state."""
    kind = request.param
    opened: list[StateStore] = []
    memory = MemoryStateStore()
    url = request.getfixturevalue("pg_url") if kind == "postgres" else ""

    def open_() -> StateStore:
        if kind == "memory":
            return memory
        s: StateStore
        if kind == "sqlite":
            s = SQLiteStateStore(tmp_path / "s" / "state.db")
        else:
            from claw_governance.state.postgres import PostgresStateStore

            s = PostgresStateStore(url)
        opened.append(s)
        return s

    yield open_
    for s in opened:
        s.close()
    memory.close()


@pytest.fixture
def store(opener: Callable[[], StateStore]) -> StateStore:
    return opener()


def esc(id_: str = "e1", expires_in: float = 60.0, args_hash: str = "h1", created: float | None = None) -> Escalation:
    now = time.time() if created is None else created
    return Escalation(
        id_,
        "bot",
        "refund",
        args_hash,
        {"amount": 600, "card": "[REDACTED]", "nested": {"a": [1, 2]}},
        "p.yaml:3",
        "needs approval",
        EscalationStatus.PENDING,
        now,
        now + expires_in,
    )


pytestmark = pytest.mark.parametrize("opener", BACKENDS, indirect=True)


def test_implements_the_protocol(store: StateStore) -> None:
    assert isinstance(store, StateStore)


def test_checkpoints_keep_the_newest(store: StateStore) -> None:
    assert store.latest_checkpoint("t") is None
    store.put_checkpoint("t", 5, "h5", "sig5", 1.0)
    store.put_checkpoint("t", 9, "h9", "sig9", 2.0)
    assert store.latest_checkpoint("t") == {"seq": 9, "hash": "h9", "signature": "sig9", "created": 2.0}
    assert store.latest_checkpoint("other") is None


def test_identities_keys_and_status(store: StateStore) -> None:
    rec = IdentityRecord("bot", "k1", ACTIVE, 1.0, 1.0, None, 1, {"owner": "me"})
    assert store.create_identity(rec, KeyRecord("k1", "bot", "ed25519", "AAA=", 1.0))
    assert not store.create_identity(rec, KeyRecord("k1b", "bot", "ed25519", "BBB=", 1.0))
    assert store.get_identity("bot") == rec
    assert store.get_identity("nobody") is None
    assert store.identity_versions() == {"bot": (ACTIVE, 1)}
    revoked = store.set_identity_status("bot", REVOKED, "compromised", 2.0)
    assert revoked is not None and revoked.revoked and revoked.version == 2 and revoked.reason == "compromised"
    assert store.identity_versions() == {"bot": (REVOKED, 2)}
    assert store.set_identity_status("nobody", REVOKED, "x", 2.0) is None
    store.add_key(KeyRecord("k2", "bot", "ed25519", "CCC=", 3.0))
    rotated = store.activate_key("bot", "k2", 3.0)
    assert rotated is not None and rotated.key_id == "k2" and rotated.version == 3
    assert [(k.key_id, k.retired) for k in store.keys("bot")] == [("k1", 3.0), ("k2", None)]
    assert store.activate_key("bot", "unknown", 4.0) is None
    assert store.activate_key("nobody", "k2", 4.0) is None
    assert [r.agent_id for r in store.list_identities()] == ["bot"]


def test_trust_adds_atomically_within_bounds(store: StateStore) -> None:
    assert store.get_trust("bot") is None
    (c,) = store.add_trust({"bot": (-5, 100, 100)})
    assert (c.old, c.new) == (100, 95)
    changes = store.add_trust({"bot": (3, 100, 100), "other": (-200, 100, 100)})
    assert {(x.agent_id, x.old, x.new) for x in changes} == {("bot", 95, 98), ("other", 100, 0)}
    (capped,) = store.add_trust({"bot": (50, 100, 100)})
    assert capped.new == 100
    assert store.set_trust("other", 80).new == 80
    assert store.trust_scores() == {"bot": 100, "other": 80}
    assert store.get_trust("other") == 80


def test_nonces_are_single_use_and_purged(store: StateStore) -> None:
    now = time.time()
    assert store.use_nonce("bot", "n" * 32, now + 100)
    assert not store.use_nonce("bot", "n" * 32, now + 100)
    assert store.use_nonce("other", "n" * 32, now + 100)  # per agent
    assert store.use_nonce("bot", "old" * 8, now - 1)
    assert store.purge(now) == 1
    assert store.use_nonce("bot", "old" * 8, now + 100)


def test_escalation_approval_creates_a_one_shot_grant(store: StateStore) -> None:
    store.put_escalation(esc())
    got = store.get_escalation("e1")
    assert got is not None and got.context == {"amount": 600, "card": "[REDACTED]", "nested": {"a": [1, 2]}}
    assert got.status is EscalationStatus.PENDING and got.rule == "p.yaml:3"
    assert store.consume_grant("bot", "refund", "h1", time.time()) is None  # pending: no grant yet
    done = store.resolve_escalation("e1", EscalationStatus.APPROVED, "alice", "ok", time.time(), time.time() + 60)
    assert (done.status, done.resolver, done.notes) == (EscalationStatus.APPROVED, "alice", "ok")
    stored = store.get_escalation("e1")
    assert stored is not None and stored.status is EscalationStatus.APPROVED and stored.resolver == "alice"
    assert store.consume_grant("bot", "refund", "other-args", time.time()) is None
    assert store.consume_grant("bot", "other-action", "h1", time.time()) is None
    assert store.consume_grant("intruder", "refund", "h1", time.time()) is None
    assert store.consume_grant("bot", "refund", "h1", time.time()) == "e1"
    assert store.consume_grant("bot", "refund", "h1", time.time()) is None  # used once
    assert store.purge(time.time()) == 1  # the consumed grant goes


def test_a_second_resolution_unknown_and_expired_ids_are_errors(store: StateStore) -> None:
    store.put_escalation(esc())
    store.resolve_escalation("e1", EscalationStatus.DENIED, "bob", "no", time.time(), 0)
    assert store.consume_grant("bot", "refund", "h1", time.time()) is None  # a denial grants nothing
    with pytest.raises(EscalationError, match="already denied"):
        store.resolve_escalation("e1", EscalationStatus.APPROVED, "alice", "ok", time.time(), time.time() + 60)
    with pytest.raises(EscalationError, match="no escalation"):
        store.resolve_escalation("nope", EscalationStatus.APPROVED, "alice", "ok", time.time(), time.time() + 60)
    store.put_escalation(esc("e2", expires_in=-1))
    with pytest.raises(EscalationError, match="expired"):
        store.resolve_escalation("e2", EscalationStatus.APPROVED, "alice", "ok", time.time(), time.time() + 60)
    e2 = store.get_escalation("e2")
    assert e2 is not None and e2.status is EscalationStatus.EXPIRED  # the refusal recorded the expiry
    with pytest.raises(EscalationError, match="approved or denied"):
        store.resolve_escalation("e1", EscalationStatus.EXPIRED, "alice", "ok", time.time(), 0)


def test_expire_changes_only_due_pending_escalations_once(store: StateStore) -> None:
    store.put_escalation(esc("due", expires_in=-1, created=time.time() - 10))
    store.put_escalation(esc("later", expires_in=60))
    assert store.expire_escalation("later", time.time()) is None
    first = store.expire_escalation("due", time.time())
    assert first is not None and first.status is EscalationStatus.EXPIRED
    assert store.expire_escalation("due", time.time()) is None
    assert [e.id for e in store.list_escalations(EscalationStatus.PENDING)] == ["later"]
    assert [e.id for e in store.list_escalations()] == ["due", "later"]
    assert [e.id for e in store.list_escalations(limit=1)] == ["due"]


def test_expired_grants_are_not_consumed(store: StateStore) -> None:
    store.put_escalation(esc())
    store.resolve_escalation("e1", EscalationStatus.APPROVED, "alice", "ok", time.time(), time.time() - 1)
    assert store.consume_grant("bot", "refund", "h1", time.time()) is None


# ---------------------------------------------------------------------------- concurrency (several "hosts")

THREADS = 8


def _race(n: int, fn: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def test_a_grant_is_consumed_exactly_once_by_racing_stores(opener: Callable[[], StateStore]) -> None:
    stores = [opener() for _ in range(THREADS)]
    for round_ in range(5):
        stores[0].put_escalation(esc(f"e{round_}", args_hash=f"h{round_}"))
        stores[1].resolve_escalation(
            f"e{round_}", EscalationStatus.APPROVED, "alice", "ok", time.time(), time.time() + 60
        )
        got = _race(THREADS, lambda i, r=round_: stores[i].consume_grant("bot", "refund", f"h{r}", time.time()))
        assert sorted(map(str, got)) == sorted([f"e{round_}"] + ["None"] * (THREADS - 1))


def test_racing_resolutions_one_wins(opener: Callable[[], StateStore]) -> None:
    stores = [opener() for _ in range(THREADS)]
    stores[0].put_escalation(esc())

    def resolve(i: int) -> str:
        try:
            stores[i].resolve_escalation("e1", EscalationStatus.APPROVED, f"r{i}", "ok", time.time(), time.time() + 60)
        except EscalationError:
            return "lost"
        return "won"

    assert sorted(map(str, _race(THREADS, resolve))) == ["lost"] * (THREADS - 1) + ["won"]
    assert stores[2].consume_grant("bot", "refund", "h1", time.time()) == "e1"
    assert stores[3].consume_grant("bot", "refund", "h1", time.time()) is None  # one grant, not eight


def test_racing_trust_updates_lose_nothing(opener: Callable[[], StateStore]) -> None:
    stores = [opener() for _ in range(THREADS)]

    def hammer(i: int) -> None:
        for _ in range(25):  # batches of two agents, in both orders: no deadlock, no lost update
            stores[i].add_trust(
                {"a": (-1, 1000, 1000), "b": (-2, 1000, 1000)}
                if i % 2
                else {"b": (-2, 1000, 1000), "a": (-1, 1000, 1000)}
            )

    _race(THREADS, hammer)
    assert stores[0].trust_scores() == {"a": 1000 - THREADS * 25, "b": 1000 - 2 * THREADS * 25}


def test_a_nonce_is_accepted_by_one_store_only(opener: Callable[[], StateStore]) -> None:
    stores = [opener() for _ in range(THREADS)]
    for k in range(5):
        got = _race(THREADS, lambda i, k=k: stores[i].use_nonce("bot", f"nonce-{k}", time.time() + 60))
        assert sorted(map(bool, got)) == [False] * (THREADS - 1) + [True]


def test_state_written_by_one_store_is_read_by_another(opener: Callable[[], StateStore]) -> None:
    a, b = opener(), opener()
    a.create_identity(IdentityRecord("bot", "k1", ACTIVE, 1.0, 1.0), KeyRecord("k1", "bot", "ed25519", "AAA=", 1.0))
    b.set_identity_status("bot", REVOKED, "stolen", 2.0)
    assert a.identity_versions() == {"bot": (REVOKED, 2)}
    a.put_checkpoint("trail", 3, "h", "s", 1.5)
    assert b.latest_checkpoint("trail") == {"seq": 3, "hash": "h", "signature": "s", "created": 1.5}
    b.add_trust({"bot": (-10, 100, 100)})
    assert a.get_trust("bot") == 90


# ------------------------------------------------------------------ methods added by the merged branches


def _job(job_id: str = "j1", agent: str = "bot", token: str = "t1", issued: float = 100.0) -> JobRecord:
    return JobRecord(job_id, agent, ("refund", "read"), "sh", "ph", token, issued, issued + 60, created=issued)


def test_jobs_put_mint_revoke_and_versions(store: StateStore) -> None:
    stored = store.put_job(_job())
    assert stored.tokens_issued == 1 and stored.scope == ("refund", "read") and stored.status == ACTIVE
    again = store.put_job(_job(token="t2", issued=200.0))
    assert again.token_id == "t2" and again.issued == 200.0 and again.tokens_issued == 2 and again.created == 100.0
    with pytest.raises(ConfigError):
        store.put_job(_job(agent="other"))
    assert store.get_job("j1") == again and store.get_job("nope") is None
    store.put_job(_job("j2", issued=300.0))
    assert [j.job_id for j in store.list_jobs()] == ["j2", "j1"] and len(store.list_jobs(limit=1)) == 1
    revoked = store.revoke_job("j1", "leaked", 250.0)
    assert revoked is not None and revoked.revoked and revoked.revoked_at == 250.0 and revoked.reason == "leaked"
    twice = store.revoke_job("j1", "other", 260.0)
    assert twice is not None and twice.revoked_at == 250.0 and twice.reason == "leaked"
    assert store.put_job(_job(token="t3", issued=270.0)).revoked  # a revoked job stays revoked
    assert store.revoke_job("nope", "x", 1.0) is None
    assert store.job_versions() == {"j1": (REVOKED, "t3"), "j2": (ACTIVE, "t1")}


def test_policy_archive(store: StateStore) -> None:
    store.archive_policy("h2", {"b.yaml": "rules: []\n"}, 10.0)
    store.archive_policy("h1", {"a.yaml": "x: 1\n"}, 20.0)
    store.archive_policy("h2", {"b.yaml": "ignored"}, 30.0)
    v = store.get_policy_version("h2")
    assert v is not None and dict(v.files) == {"b.yaml": "rules: []\n"} and (v.first_seen, v.last_seen) == (10.0, 30.0)
    assert store.get_policy_version("zz") is None
    assert [p.policy_hash for p in store.list_policy_versions()] == ["h2", "h1"]
    assert len(store.list_policy_versions(limit=1)) == 1


def test_budget_window_force_negative_and_reset(store: StateStore) -> None:
    assert store.add_to_budget("k", 0.1, 0.3, 10, 100.0) == BudgetUse(True, 0.1)
    assert store.add_to_budget("k", 0.2, 0.3, 10, 101.0).admitted  # 0.1 + 0.2 fits 0.3 (slack)
    refused = store.add_to_budget("k", 0.1, 0.3, 10, 102.0)
    assert not refused.admitted and refused.used == pytest.approx(0.3)
    assert store.add_to_budget("k", 5.0, 0.3, 10, 102.0, force=True).used == pytest.approx(5.3)
    assert store.add_to_budget("k", -5.0, 0.3, 10, 102.0).used == pytest.approx(0.3)
    assert store.add_to_budget("other", 1.0, 1.0, 10, 102.0).admitted  # keys are independent
    # at 111 the events at 100 and 101 left the window; the ones at 102 (net 0) remain
    assert store.add_to_budget("k", 0.3, 0.3, 10, 111.0).used == pytest.approx(0.3)
    # once every event left the window the total starts again from exactly 0
    assert store.add_to_budget("k", 0.0, 0.3, 10, 200.0) == BudgetUse(True, 0.0)
    purged = store.purge(1000.0)
    assert purged >= 2
    assert store.add_to_budget("k", 0.25, 0.3, 10, 1000.0) == BudgetUse(True, 0.25)


def test_session_labels_accumulate_and_expire(store: StateStore) -> None:
    assert store.session_labels("s", frozenset(), 0.0, 10) == frozenset()
    assert store.session_labels("s", frozenset({"pii"}), 0.0, 10) == {"pii"}
    assert store.session_labels("s", frozenset({"web"}), 5.0, 10) == {"pii", "web"}
    assert store.session_labels("s", frozenset(), 12.0, 10) == {"web"}  # pii expired at 10
    assert store.session_labels("s", frozenset({"web"}), 14.0, 10) == {"web"}  # extended to 24
    assert store.session_labels("s", frozenset(), 20.0, 10) == {"web"}
    assert store.session_labels("t", frozenset(), 20.0, 10) == frozenset()
    assert store.purge(30.0) >= 1 and store.session_labels("s", frozenset(), 0.0, 10) == frozenset()


def test_reviewers(store: StateStore) -> None:
    ann = ReviewerRecord("ann", ("approver", "admin"), ("ops",), ("refund*",), ("bot",), "tid1", "th1", None, 1.0, 1.0)
    assert store.put_reviewer(ann) and not store.put_reviewer(ann)
    assert not store.put_reviewer(ReviewerRecord("bob", token_id="tid1"))  # token ids are unique
    assert store.put_reviewer(ReviewerRecord("bob", created=2.0, updated=2.0))
    assert store.get_reviewer("ann") == ann and store.get_reviewer("zed") is None
    assert store.reviewer_by_token("tid1") == ann
    rotated = ReviewerRecord("ann", ("approver",), (), (), (), "tid2", "th2", "$argon2id$x", 1.0, 5.0)
    assert store.replace_reviewer(rotated) and not store.replace_reviewer(ReviewerRecord("zed"))
    assert store.reviewer_by_token("tid1") is None and store.reviewer_by_token("tid2") == rotated
    assert [r.name for r in store.list_reviewers()] == ["ann", "bob"]
    assert store.delete_reviewer("ann") and not store.delete_reviewer("ann")
    assert store.reviewer_by_token("tid2") is None and [r.name for r in store.list_reviewers()] == ["bob"]


def test_settle_one_shot_edited_and_standing_grants(store: StateStore) -> None:
    now = time.time()
    store.put_escalation(esc("e1", created=now))
    done = store.settle_escalation(
        "e1",
        Resolution(
            EscalationStatus.APPROVED,
            "ann",
            "ok",
            credential_id="tid1",
            grant_expires=now + 60,
            grant_args_hash="h9",
            edited_args={"amount": 5},
        ),
        now,
    )
    assert done.status is EscalationStatus.APPROVED and done.credential_id == "tid1" and done.edited_args_hash
    assert store.get_escalation("e1") == done
    assert store.consume_grant("bot", "refund", "h1", now) is None  # bound to the edited hash
    assert store.consume_grant("bot", "refund", "h9", now) == "e1"
    with pytest.raises(EscalationClosed):
        store.settle_escalation("e1", Resolution(EscalationStatus.DENIED, "ann", ""), now)
    with pytest.raises(EscalationNotFound):
        store.settle_escalation("nope", Resolution(EscalationStatus.DENIED, "ann", ""), now)
    store.put_escalation(esc("e2", created=now))
    store.put_escalation(esc("e3", created=now))
    s2 = store.settle_escalation(
        "e2", Resolution(EscalationStatus.APPROVED, "ann", "", grant_expires=now + 60, standing=True), now
    )
    store.settle_escalation(
        "e3", Resolution(EscalationStatus.APPROVED, "ann", "", grant_expires=now + 90, standing=True), now
    )
    assert s2.grant_until == now + 60 and store.get_escalation("e2") == s2
    assert store.consume_grant("bot", "refund", "*", now) is None  # standing grants are not consumed
    assert store.use_standing_grant("bot", "refund", now) == "e3"  # the one expiring last
    assert store.use_standing_grant("bot", "refund", now) == "e3"  # and not used up
    assert [g.escalation_id for g in store.list_grants(now)] == ["e2", "e3"]
    assert all(g.standing and g.args_hash == "*" for g in store.list_grants(now))
    assert store.revoke_grant("e3", now) and not store.revoke_grant("e3", now) and not store.revoke_grant("e1", now)
    assert store.use_standing_grant("bot", "refund", now) == "e2"
    assert store.use_standing_grant("bot", "refund", now + 61) is None
    assert {g.escalation_id for g in store.list_grants(now, active_only=False)} == {"e1", "e2", "e3"}
    store.put_escalation(esc("e4", created=now, expires_in=-1))
    with pytest.raises(EscalationClosed):
        store.settle_escalation("e4", Resolution(EscalationStatus.APPROVED, "ann", "", grant_expires=now + 60), now)
    e4 = store.get_escalation("e4")
    assert e4 is not None and e4.status is EscalationStatus.EXPIRED
    # a revoked one-shot grant is not consumed, and purge drops revoked and consumed grants
    store.put_escalation(esc("e5", created=now, args_hash="h5"))
    store.settle_escalation("e5", Resolution(EscalationStatus.APPROVED, "ann", "", grant_expires=now + 60), now)
    assert store.revoke_grant("e5", now) and store.consume_grant("bot", "refund", "h5", now) is None
    store.purge(now)
    assert {g.escalation_id for g in store.list_grants(now, active_only=False)} == {"e2"}


def test_racing_budget_admissions_never_exceed_the_limit(opener: Callable[[], StateStore]) -> None:
    stores = [opener() for _ in range(8)]
    admitted: list[float] = []
    lock = threading.Lock()
    now = time.time()

    def spend(s: StateStore) -> None:
        for _ in range(15):
            if s.add_to_budget("racing", 1.0, 50.0, 3600, now).admitted:
                with lock:
                    admitted.append(1.0)

    threads = [threading.Thread(target=spend, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 50  # exactly the limit: none lost, none over
    assert stores[0].add_to_budget("racing", 0.0, 50.0, 3600, now).used == 50.0


def test_racing_settlements_one_wins(opener: Callable[[], StateStore]) -> None:
    stores = [opener() for _ in range(8)]
    now = time.time()
    stores[0].put_escalation(esc("race", created=now))
    wins: list[int] = []

    def settle(i: int) -> None:
        with contextlib.suppress(EscalationError):
            stores[i].settle_escalation(
                "race", Resolution(EscalationStatus.APPROVED, f"r{i}", "", grant_expires=now + 60), now
            )
            wins.append(i)

    threads = [threading.Thread(target=settle, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(stores[0].list_grants(now)) == 1
