"""``claw-gov policy migrate``: seed spellings rewritten, comments kept, meaning unchanged, ``--check`` for CI."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claw_governance.cli import build_cli
from claw_governance.model import ToolCall
from claw_governance.policy import PolicySet, load_policy_set
from claw_governance.policy.migrate import migrate_file

SEED = Path(__file__).parent / "data" / "seed-toolkit" / "policies"
SEED_ONLY_KEYS = ("minimum_score", "recovery_threshold", "actions_per_minute")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_cli(), list(args))
    return result.exit_code, result.stdout, result.stderr


def comments(text: str) -> list[str]:
    return [line[line.index("#") :].strip() for line in text.splitlines() if "#" in line]


def same_meaning(a: PolicySet, b: PolicySet, agent: str, actions: list[str]) -> None:
    pa, pb = a.for_agent(agent), b.for_agent(agent)
    assert pa is not None and pb is not None
    assert pa.trust == pb.trust and pa.sensitive_fields == pb.sensitive_fields and pa.metadata == pb.metadata
    assert [(e.limit, e.period_seconds) for e in pa.escalation_limits] == [
        (e.limit, e.period_seconds) for e in pb.escalation_limits
    ]
    for action in actions:
        da, db = a.decide(ToolCall(agent, action, {})), b.decide(ToolCall(agent, action, {}))
        assert (da.outcome, da.rule.pattern if da.rule else None) == (db.outcome, db.rule.pattern if db.rule else None)
        assert sorted((r.limit, r.period_seconds) for r in pa.rate_limits.lookup(action)) == sorted(
            (r.limit, r.period_seconds) for r in pb.rate_limits.lookup(action)
        )


def test_the_seed_file_is_migrated_with_its_comments_and_meaning(tmp_path: Path) -> None:
    path = tmp_path / "customer-service-agent.yaml"
    shutil.copyfile(SEED / path.name, path)
    before_text, before = path.read_text(), load_policy_set(path)

    code, out, err = invoke("policy", "migrate", "--check", str(tmp_path))
    assert code == 1 and "1 of 1 file(s) would change" in err
    assert f"--- a/{path.as_posix()}" in out and "-  minimum_score: 70" in out and "+  min_score: 70" in out
    assert path.read_text() == before_text  # --check writes nothing

    code, out, _ = invoke("policy", "migrate", str(tmp_path))
    assert code == 0 and "1 of 1 file(s) rewritten" in out
    after_text = path.read_text()
    assert comments(after_text) == comments(before_text)  # every comment, in order
    for key in (*SEED_ONLY_KEYS, "  sensitive_fields"):
        assert key not in after_text, key
    assert "min_score: 70" in after_text and "recovery_score: 80" in after_text
    assert "'*': 100/minute" in after_text and "escalations_per_hour: 10" in after_text
    assert "metadata:" in after_text
    after = load_policy_set(path)
    same_meaning(
        before,
        after,
        "customer-service-agent",
        ["read:customer_data", "delete:x", "refund_requests", "call:payment_api", "nothing:here"],
    )
    # Only the lines that had to change did: the moved sensitive_fields block (4 lines out, 4 in), the
    # actions_per_minute line and the two trust lines (each one out, one in).
    changed = [line for line in out.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    assert len(changed) == 14

    assert invoke("policy", "migrate", "--check", str(path))[0] == 0  # idempotent: nothing left to do


def test_a_refused_file_stops_the_migration_before_anything_is_written(tmp_path: Path) -> None:
    for name in ("customer-service-agent.yaml", "code-review-agent.yaml"):
        shutil.copyfile(SEED / name, tmp_path / name)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    code, out, err = invoke("policy", "migrate", str(tmp_path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: {tmp_path / 'code-review-agent.yaml'}:54: ")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_canonical_file_is_left_byte_for_byte(tmp_path: Path) -> None:
    from importlib import resources

    path = tmp_path / "p.yaml"
    path.write_text((resources.files("claw_governance") / "templates" / "customer-service-agent.yaml").read_text())
    assert not migrate_file(path).changed
    code, out, _ = invoke("policy", "migrate", "--check", str(path))
    assert code == 0 and "0 of 1 file(s) would change" in out


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # audit holding only sensitive_fields disappears; an existing top-level list is merged into, in order
        (
            "agent: a\nsensitive_fields: [b, a]\npermissions: {allow: [x]}\naudit:\n  sensitive_fields: [a, c]\n",
            "agent: a\nsensitive_fields: [b, a, c]\npermissions: {allow: [x]}\n",
        ),
        # "*" already limited: actions_per_minute stays (it still loads and means the same)
        ("agent: a\npermissions: {allow: [x]}\nrate_limits:\n  '*': 5/second\n  actions_per_minute: 9\n", None),
        # several documents in one file, flow style kept
        (
            "agent: a\ntrust: {minimum_score: 60}\n---\nagent: b\ntrust: {recovery_threshold: 90}\n",
            "agent: a\ntrust: {min_score: 60}\n---\nagent: b\ntrust: {recovery_score: 90}\n",
        ),
        # a list of documents
        (
            "- agent: a\n  trust:\n    minimum_score: 60\n- agent: b\n  permissions: {allow: [y]}\n",
            "- agent: a\n  trust:\n    min_score: 60\n- agent: b\n  permissions: {allow: [y]}\n",
        ),
    ],
)
def test_shapes(tmp_path: Path, source: str, expected: str | None) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(source)
    before = load_policy_set(path)
    migration = migrate_file(path)
    assert migration.after == (source if expected is None else expected)
    path.write_text(migration.after)
    for agent in before.agents:
        same_meaning(before, load_policy_set(path), agent, ["x", "y", "z"])


keys = st.sampled_from(["minimum_score", "recovery_threshold", "initial", "failure"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    trust=st.dictionaries(keys, st.integers(0, 100), max_size=4),
    audit_fields=st.lists(st.sampled_from(["ssn", "notes", "pin", "cvv"]), max_size=3, unique=True),
    top_fields=st.lists(st.sampled_from(["ssn", "pin", "iban"]), max_size=2, unique=True),
    apm=st.one_of(st.none(), st.integers(1, 1000)),
    eph=st.one_of(st.none(), st.integers(1, 50)),
    extra_limit=st.booleans(),
    level=st.sampled_from([None, "full", "metadata"]),
)
def test_migration_never_changes_what_a_policy_decides(
    tmp_path_factory: pytest.TempPathFactory,
    trust: dict[str, int],
    audit_fields: list[str],
    top_fields: list[str],
    apm: int | None,
    eph: int | None,
    extra_limit: bool,
    level: str | None,
) -> None:
    trust = {k: v for k, v in trust.items() if not (k == "failure" and v > 0)}
    trust = {k: (-v if k == "failure" else max(v, 1)) for k, v in trust.items()}
    lines = [
        "# a comment up top",
        "agent: a",
        "permissions:",
        "  allow: ['read:*', send:mail]  # allowed",
        "  deny: ['delete:*']",
        "  escalate: [refund]",
    ]
    if top_fields:
        lines.append(f"sensitive_fields: [{', '.join(top_fields)}]")
    audit = [f"  level: {level}"] if level else []
    if audit_fields:
        audit.append(f"  sensitive_fields: [{', '.join(audit_fields)}]  # redact")
    if audit:
        lines += ["audit:", *audit]
    limits = (
        ([f"  actions_per_minute: {apm}"] if apm else [])
        + ([f"  escalations_per_hour: {eph}"] if eph else [])
        + (["  'send:*': 3/hour"] if extra_limit else [])
    )
    if limits:
        lines += ["rate_limits:", *limits]
    if trust:
        lines += ["trust:", *(f"  {k}: {v}" for k, v in trust.items())]
    text = "\n".join(lines) + "\n"
    path = tmp_path_factory.mktemp("m") / "p.yaml"
    path.write_text(text)
    try:
        before = load_policy_set(path)
    except Exception:
        return  # e.g. initial above max_score: not a migration question
    migration = migrate_file(path)
    path.write_text(migration.after)
    after = load_policy_set(path)
    same_meaning(before, after, "a", ["read:x", "send:mail", "delete:y", "refund", "other"])
    assert comments(migration.after) == comments(text)
    for key in SEED_ONLY_KEYS:
        assert key not in migration.after
    assert "sensitive_fields" not in migration.after or not any(
        line.startswith("  sensitive_fields") for line in migration.after.splitlines()
    )
    assert not migrate_file(path).changed


def test_migrate_paths_that_do_not_exist_are_one_line_errors(tmp_path: Path) -> None:
    code, _, err = invoke("policy", "migrate", str(tmp_path / "nope"))
    assert code == 2 and "does not exist" in err and err.count("\n") == 1


def test_the_docs_example_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        textwrap.dedent("""\
        agent: a   # the agent
        permissions:
          allow:
            - read:*
        trust:
          minimum_score: 70      # block below 70
        """)
    )
    migration = migrate_file(path)
    assert migration.after.splitlines()[-1] == "  min_score: 70          # block below 70"
