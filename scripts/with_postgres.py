"""Run a command with a PostgreSQL server for the tests: ``python scripts/with_postgres.py -- CMD ...``.

If the server at ``CLAW_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``) answers,
the command simply runs. Otherwise, when the PostgreSQL binaries are installed (``initdb``/``pg_ctl`` under
``/usr/lib/postgresql/*/bin``), a throwaway cluster is created in a temporary folder on a free port (trust
authentication, 127.0.0.1 only, ``fsync=off``), ``CLAW_TEST_POSTGRES_URL`` points the command at it, and the
cluster is stopped and deleted afterwards. Without either, the command runs as is and the PostgreSQL tests
fail with one line naming what to install. The exit code is the command's.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def answers(url: str) -> bool:
    """Whether a server accepts a connection at ``url``."""
    try:
        import psycopg
    except ImportError:
        return False
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def find_bin() -> str | None:
    """The newest PostgreSQL binary folder that has initdb and pg_ctl."""
    found = [
        d
        for d in glob.glob("/usr/lib/postgresql/*/bin")
        if os.access(os.path.join(d, "initdb"), os.X_OK) and os.access(os.path.join(d, "pg_ctl"), os.X_OK)
    ]
    found.sort(key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0)
    return found[-1] if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def as_user() -> tuple[Callable[[], None] | None, int | None, int | None]:
    """initdb refuses to run as root: then run the server as the ``postgres`` user."""
    if os.geteuid() != 0:
        return None, None, None
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        sys.exit("with_postgres: running as root and there is no 'postgres' user to run the server as")

    def demote() -> None:
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)

    return demote, pw.pw_uid, pw.pw_gid


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        sys.exit("usage: with_postgres.py -- COMMAND [ARGS...]")
    url = os.environ.get("CLAW_TEST_POSTGRES_URL") or DEFAULT_URL
    if answers(url):
        return subprocess.call(argv)
    bindir = find_bin()
    if bindir is None:
        print(
            f"with_postgres: nothing answers at {url} and no PostgreSQL binaries under /usr/lib/postgresql; "
            "the PostgreSQL tests will fail (apt-get install -y postgresql)",
            file=sys.stderr,
        )
        return subprocess.call(argv)
    demote, uid, gid = as_user()
    root = tempfile.mkdtemp(prefix="claw-pg-")
    data = os.path.join(root, "data")
    if uid is not None and gid is not None:
        os.chown(root, uid, gid)
    port = free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    try:
        subprocess.run(
            [os.path.join(bindir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            preexec_fn=demote,
            **quiet,
        )
        subprocess.run(
            [
                os.path.join(bindir, "pg_ctl"),
                "-D",
                data,
                "-w",
                "-t",
                "60",
                "-l",
                os.path.join(root, "server.log"),
                "-o",
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
                "start",
            ],
            check=True,
            preexec_fn=demote,
            **quiet,
        )
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE test")
        print(f"with_postgres: started a throwaway PostgreSQL ({bindir}) on 127.0.0.1:{port}", file=sys.stderr)
        env = {**os.environ, "CLAW_TEST_POSTGRES_URL": f"postgresql://postgres@127.0.0.1:{port}/test"}
        return subprocess.call(argv, env=env)
    except subprocess.CalledProcessError as exc:
        err = exc.stderr.decode(errors="replace").strip().splitlines() if exc.stderr else []
        print(f"with_postgres: could not start PostgreSQL: {err[-1] if err else exc}", file=sys.stderr)
        return subprocess.call(argv)
    finally:
        subprocess.run(
            [os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
            preexec_fn=demote,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
