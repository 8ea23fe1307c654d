"""``claw-gov policy history | show HASH | diff HASH1 HASH2``: the content-addressed policy archive.

Every policy set that was ever in force (loaded at start or by a successful reload) is kept in the state
store by its content hash, the identity a decision, an audit entry and a job token name it by.
"""

from __future__ import annotations

import difflib
import sys
from typing import Any

import click

from claw_governance.hookspecs import hookimpl
from claw_governance.state.base import PolicyVersion, StateStore
from claw_governance.timeparse import iso_utc

MIN_PREFIX = 8


def find_version(store: StateStore, ref: str) -> PolicyVersion:
    """The archived version whose hash is ``ref`` or starts with it (>= 8 hex digits, unambiguous)."""
    from claw_governance.errors import ConfigError

    ref = ref.strip().lower()
    exact = store.get_policy_version(ref)
    if exact is not None:
        return exact
    if len(ref) < MIN_PREFIX:
        raise ConfigError(f"policy hash {ref!r} is too short: give at least {MIN_PREFIX} hex digits")
    found = [v for v in store.list_policy_versions(100_000) if v.policy_hash.startswith(ref)]
    if not found:
        raise ConfigError(f"no archived policy with hash {ref!r} (see `claw-gov policy history`)")
    if len(found) > 1:
        raise ConfigError(f"policy hash prefix {ref!r} is ambiguous ({len(found)} versions): give more digits")
    return found[0]


def diff_versions(old: PolicyVersion, new: PolicyVersion) -> list[str]:
    """A unified diff, file by file (added and removed files included)."""
    lines: list[str] = []
    for name in sorted(set(old.files) | set(new.files)):
        a = old.files.get(name)
        b = new.files.get(name)
        if a == b:
            continue
        lines.extend(
            difflib.unified_diff(
                [] if a is None else a.splitlines(keepends=True),
                [] if b is None else b.splitlines(keepends=True),
                fromfile=f"{old.policy_hash[:12]}/{name}" if a is not None else "/dev/null",
                tofile=f"{new.policy_hash[:12]}/{name}" if b is not None else "/dev/null",
            )
        )
    return [line if line.endswith("\n") else line + "\n" for line in lines]


@hookimpl
def claw_register_commands(cli: click.Group) -> None:
    """Add ``history``, ``show`` and ``diff`` to the ``policy`` group."""
    from claw_governance.cli._common import echo_json, governor_options, open_governor
    from claw_governance.cli.policy import policy

    @policy.command("history")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @governor_options
    def history(as_json: bool, **paths: Any) -> None:
        """Every policy set that was in force, oldest first, by content hash."""
        with open_governor(**paths) as gov:
            versions = gov.state.list_policy_versions(100_000)
            current = gov.policy.hash
        rows = [
            {
                "policy_hash": v.policy_hash,
                "first_seen": iso_utc(v.first_seen),
                "last_seen": iso_utc(v.last_seen),
                "files": sorted(v.files),
                "in_force": v.policy_hash == current,
            }
            for v in versions
        ]
        if as_json:
            echo_json(rows)
            return
        if not rows:
            click.echo("no archived policies (the archive fills when a governor loads a policy)")
        for row in rows:
            mark = "  (in force)" if row["in_force"] else ""
            click.echo(
                f"{row['policy_hash']}  first {row['first_seen']}  last {row['last_seen']}  "
                f"{len(row['files'])} file(s){mark}"
            )

    @policy.command("show")
    @click.argument("policy_hash")
    @click.option("--file", "file_name", default=None, help="Print only this file of the set.")
    @governor_options
    def show(policy_hash: str, file_name: str | None, **paths: Any) -> None:
        """Print the policy files of an archived version (POLICY_HASH or a unique prefix of it)."""
        from claw_governance.cli._common import fail

        with open_governor(**paths) as gov:
            version = find_version(gov.state, policy_hash)
        if file_name is not None:
            if file_name not in version.files:
                fail(
                    f"policy {version.policy_hash[:12]} has no file {file_name!r} "
                    f"(it has: {', '.join(sorted(version.files))})",
                    code=1,
                )
            click.echo(version.files[file_name], nl=False)
            return
        click.echo(f"# policy {version.policy_hash} (first in force {iso_utc(version.first_seen)})")
        for name in sorted(version.files):
            click.echo(f"# --- {name} ---")
            text = version.files[name]
            click.echo(text, nl=not text.endswith("\n") and bool(text))

    @policy.command("diff")
    @click.argument("old_hash")
    @click.argument("new_hash")
    @governor_options
    def diff(old_hash: str, new_hash: str, **paths: Any) -> None:
        """Unified diff between two archived versions. Exit 0 when equal, 1 when they differ."""
        with open_governor(**paths) as gov:
            old = find_version(gov.state, old_hash)
            new = find_version(gov.state, new_hash)
        lines = diff_versions(old, new)
        click.echo("".join(lines), nl=False)
        sys.exit(1 if lines else 0)
