"""What session state costs in database work on SQLite, counted statement by statement
(``sqlite3.Connection.set_trace_callback`` on the state store's connection):

- a call whose conditions read ``session.labels`` runs **no** statement once its session's labels are cached
  (for ``state_sync_interval``): no database round trip per call;
- a call that attaches a label (it matched ``labels:`` and succeeded) writes it through: one transaction;
- a call that matches a budget: one transaction (exactness across processes cannot come from a cache).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from claw_governance import Governor, Outcome

POLICY = """\
agent: bot
permissions:
  allow: ["read:*", "search", "http:post", "payments:refund"]
  deny:
    - action: http:post
      condition: '"pii" in session.labels && !url.startsWith("https://internal.example.com/")'
labels:
  "read:customer_*": [pii]
budgets:
  - {action: "payments:refund", sum: amount, max: 1000000, per: 1d}
"""


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[tuple[Governor, list[str]]]:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text(POLICY)
    gov = Governor(
        tmp_path / "policies",
        tmp_path / "audit",
        tmp_path / "identities",
        load_entry_points=False,
        state_sync_interval=60,  # the cache's age limit: longer than the test
    )
    statements: list[str] = []
    gov.state._db.set_trace_callback(statements.append)
    try:
        yield gov, statements
    finally:
        gov.state._db.set_trace_callback(None)
        gov.close()


def per_call(statements: list[str], fn: Callable[[], Any], n: int = 50) -> list[str]:
    statements.clear()
    for _ in range(n):
        fn()
    return list(statements)


def test_session_state_costs_no_query_per_call_on_sqlite(traced: tuple[Governor, list[str]]) -> None:
    gov, statements = traced
    bot = gov.agent("bot")
    first = per_call(statements, lambda: bot.execute("read:customer_record", {"id": 1}, lambda ctx: "row"), 1)
    assert any(s.startswith("SELECT label FROM session_labels") for s in first)  # the cache filled once

    # Calls that read session.labels (allowed, and denied by the label): nothing reaches the database.
    def denied() -> None:
        assert bot.check("http:post", {"url": "https://evil.example/"}).outcome is Outcome.DENY

    assert per_call(statements, lambda: bot.check("search", {"q": "x"})) == []
    assert per_call(statements, denied) == []
    assert per_call(statements, lambda: bot.execute("search", {"q": "x"}, lambda ctx: "hits")) == []

    # A labelled call writes its label through: exactly one transaction per call.
    labelled = per_call(statements, lambda: bot.execute("read:customer_record", {"id": 1}, lambda ctx: "row"), 10)
    assert labelled.count("BEGIN IMMEDIATE") == 10 and labelled.count("COMMIT") == 10
    assert all("session_labels" in s for s in labelled if s not in ("BEGIN IMMEDIATE", "COMMIT"))

    # A budgeted call: exactly one transaction per call.
    refunds = per_call(statements, lambda: bot.check("payments:refund", {"amount": 1}), 10)
    assert refunds.count("BEGIN IMMEDIATE") == 10 and refunds.count("COMMIT") == 10
    assert all("budget_" in s for s in refunds if s not in ("BEGIN IMMEDIATE", "COMMIT"))
