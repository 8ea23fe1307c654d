"""`claw-gov reviewer ...` and the reviewer options of `claw-gov escalations approve|deny`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from claw_governance import Governor
from claw_governance.cli import build_cli
from claw_governance.escalation.edits import args_diff

POLICY = """\
agent: bot
permissions:
  deny:
    - action: refund
      condition: amount > 5000
  escalate:
    - action: refund
      approvers: [finance]
      max_grant: 1h
"""


def run(tmp_path: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(
        build_cli(),
        [
            *args,
            "--policies",
            str(tmp_path / "policies"),
            "--audit",
            str(tmp_path / "audit"),
            "--identities",
            str(tmp_path / "ids"),
        ],
        input=stdin,
    )


def test_reviewer_lifecycle_and_resolution_options(tmp_path: Path, write_policy: Callable[..., Path]) -> None:
    write_policy(POLICY)
    added = run(
        tmp_path,
        "reviewer",
        "add",
        "Fred",
        "--group",
        "finance",
        "--password-stdin",
        "--json",
        stdin="long enough password\n",
    )
    assert added.exit_code == 0, added.output
    token = json.loads(added.output)["token"]
    listed = run(tmp_path, "reviewer", "list", "--json")
    (fred,) = json.loads(listed.output)
    assert fred["name"] == "fred" and fred["groups"] == ["finance"] and fred["web_login"] is True
    assert token not in listed.output and "token" not in fred
    assert run(tmp_path, "reviewer", "add", "fred").output.startswith("error: reviewer 'fred' already exists")
    with Governor(tmp_path / "policies", tmp_path / "audit", tmp_path / "ids", load_entry_points=False) as gov:
        first = gov.agent("bot").check("refund", {"amount": 100}).escalation_id or ""
        second = gov.agent("bot").check("refund", {"amount": 200}).escalation_id or ""
        third = gov.agent("bot").check("refund", {"amount": 300}).escalation_id or ""
    refused = run(tmp_path, "reviewer", "add", "bot")
    assert refused.exit_code == 2 and "agent identity" in refused.output
    as_agent = run(tmp_path, "escalations", "approve", first, "--resolver", "bot", "--notes", "me")
    assert as_agent.exit_code == 2 and "agent identity" in as_agent.output
    denied_edit = run(
        tmp_path, "escalations", "approve", first, "--token", token, "--notes", "x", "--args", '{"amount": 9000}'
    )
    assert denied_edit.exit_code == 2 and "denied by policy" in denied_edit.output
    edited = run(
        tmp_path,
        "escalations",
        "approve",
        first,
        "--token",
        token,
        "--notes",
        "less",
        "--args",
        '{"amount": 50}',
        "--json",
    )
    assert edited.exit_code == 0 and json.loads(edited.output)["edited_args_hash"]
    too_long = run(tmp_path, "escalations", "approve", second, "--token", token, "--notes", "x", "--for", "2h")
    assert too_long.exit_code == 2 and "max_grant" in too_long.output
    timed = run(
        tmp_path, "escalations", "approve", second, "--token", token, "--notes", "batch", "--for", "30m", "--json"
    )
    assert timed.exit_code == 0 and json.loads(timed.output)["grant_until"]
    rotated = run(tmp_path, "reviewer", "rotate-token", "fred")
    new = rotated.output.strip().rsplit(" ", 1)[-1]
    stale = run(tmp_path, "escalations", "deny", third, "--token", token, "--notes", "x")
    assert stale.exit_code == 3 and "not valid" in stale.output
    respond = run(
        tmp_path, "escalations", "deny", third, "--token", new, "--notes", "no", "--message", "ask first", "--json"
    )
    assert respond.exit_code == 0 and json.loads(respond.output)["message"] == "ask first"
    assert run(tmp_path, "reviewer", "remove", "fred").exit_code == 0
    assert run(tmp_path, "reviewer", "list").output.startswith("no reviewers")


json_leaf = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=3), inner, max_size=3),
    max_leaves=8,
)
json_args = st.dictionaries(st.text(min_size=1, max_size=3), json_value, max_size=4)


@given(json_args, json_args)
def test_args_diff_is_empty_exactly_for_equal_arguments(old: dict[str, object], new: dict[str, object]) -> None:
    assert args_diff(old, old) == []
    changes = args_diff(old, new)
    assert all(c["op"] in ("added", "removed", "changed") for c in changes)
    assert bool(changes) == (json.dumps(old, sort_keys=True) != json.dumps(new, sort_keys=True))


def test_args_diff_paths_are_unambiguous_json_pointers() -> None:
    assert args_diff({"a.b": 1}, {"a": {"b": 1}}) == [
        {"path": "/a.b", "op": "removed", "old": 1},
        {"path": "/a/b", "op": "added", "new": 1},
    ]
    assert args_diff({"a/b": 1, "x": [1]}, {"a/b": 2, "x": [1, 2]}) == [
        {"path": "/a~1b", "op": "changed", "old": 1, "new": 2},
        {"path": "/x/1", "op": "added", "new": 2},
    ]
