"""PostgreSQL for tests: the server at CLAW_TEST_POSTGRES_URL, one fresh schema per test.

Without a reachable server a PostgreSQL test FAILS (never skips) with one line naming what to install;
``make test`` starts a throwaway cluster first when the PostgreSQL binaries are installed
(``scripts/with_postgres.py``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
INSTALL_HINT = (
    "install PostgreSQL (Debian: apt-get install -y postgresql; `make test` then starts a throwaway "
    "cluster) or set CLAW_TEST_POSTGRES_URL to a reachable server"
)


def base_url() -> str:
    """The server the tests use."""
    return os.environ.get("CLAW_TEST_POSTGRES_URL") or DEFAULT_URL


def with_search_path(url: str, schema: str) -> str:
    """``url`` with libpq ``options=-csearch_path=<schema>``: every connection then uses that schema."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}', safe='')}"


def admin_connection() -> object:
    """An autocommit connection to the test server, or a pytest failure naming what to install."""
    try:
        import psycopg
    except ImportError:
        pytest.fail("psycopg is not installed: run `make install` (it installs the postgres extra)", pytrace=False)
    try:
        return psycopg.connect(base_url(), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())[:160]
        pytest.fail(f"PostgreSQL is not reachable at {base_url()} ({reason}): {INSTALL_HINT}", pytrace=False)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose connections live in a new, empty schema (dropped after the test)."""
    conn = admin_connection()
    schema = f"claw_t_{uuid.uuid4().hex[:16]}"
    conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[attr-defined]
    try:
        yield with_search_path(base_url(), schema)
    finally:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")  # type: ignore[attr-defined]
        conn.close()  # type: ignore[attr-defined]
