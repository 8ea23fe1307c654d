"""Issue 13 item 2, end to end: real governed calls with every secret of the corpus, then a grep of EVERY file
the governor wrote (audit segments, checkpoints, state.db as a SQL dump and as raw bytes with its WAL) and of
every CLI output (escalations list/show, audit query/report, identity list): no secret, in no encoding.

All three tests fail on the code before this change (its grep found the first corpus shapes in both files and
CLI output).
"""

from __future__ import annotations

import base64
import json
import sqlite3
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from claw_governance import Governor
from claw_governance.cli import build_cli

CORPUS: list[dict[str, str]] = json.loads((Path(__file__).parent / "data" / "secret_corpus.json").read_text())

POLICY = """\
agent: "*"
permissions:
  allow: ["tool:*"]
  escalate: ["pay:*"]
"""


def forms(secret: str) -> list[str]:
    """The secret and the encodings a tool may echo it in (each must be absent from every output)."""
    data = secret.encode()
    out = {secret, base64.b64encode(data).decode(), urllib.parse.quote(secret), data.hex(), json.dumps(secret)[1:-1]}
    return [f for f in out if len(f) >= 6]


def args_for(entry: dict[str, str]) -> dict[str, Any]:
    if "key" in entry:  # the memo repeats the secret: scrubbed from the escalation context and the trail too
        return {entry["key"]: entry["secret"], "query": "status", "memo": f"copy of {entry['secret']} here"}
    return {"note": entry["text"], "query": "status"}


def echo_tool(args: dict[str, Any]) -> str:
    """A tool that echoes every argument verbatim and encoded (what a careless or hostile tool does)."""
    parts = []
    for value in args.values():
        text = str(value)
        data = text.encode()
        parts.append(
            f"got {text} b64={base64.b64encode(data).decode()} url={urllib.parse.quote(text)} "
            f"hex={data.hex()} json={json.dumps(text)}"
        )
    return "\n".join(parts)


def failing_tool(args: dict[str, Any]) -> str:
    raise RuntimeError(f"upstream rejected {list(args.values())}")


def every_written_text(root: Path) -> str:
    """Every file under root as text (raw bytes decoded leniently), plus a SQL dump of each SQLite file."""
    chunks = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        raw = path.read_bytes()
        chunks.append(raw.decode("utf-8", "replace"))
        chunks.append(raw.decode("latin-1"))
        if raw.startswith(b"SQLite format 3"):
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                chunks.append("\n".join(con.iterdump()))
            finally:
                con.close()
    return "\n".join(chunks)


@pytest.fixture
def governed(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """Run every corpus entry through execute (echo and failing tools) and check (escalation)."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text(POLICY)
    gov = Governor(
        tmp_path / "policies",
        tmp_path / "audit",
        tmp_path / "identities",
        load_entry_points=False,
        audit_checkpoint_interval=10,
    )
    escalations = []
    try:
        for index, entry in enumerate(CORPUS):
            agent = gov.agent(f"agent-{index}")  # one failure each: trust stays above the gate
            args = args_for(entry)
            assert agent.execute("tool:echo", args, echo_tool).success
            assert not agent.execute("tool:fail", args, failing_tool).success
            decision = agent.check("pay:invoice", args)
            assert decision.escalation_id
            escalations.append(decision.escalation_id)
        gov.resolve_escalation(escalations[0], "denied", notes="no", resolver=gov.reviewers.ensure("alice@example.com"))
    finally:
        gov.close()
    yield tmp_path, escalations


def cli(root: Path, *args: str) -> str:
    result = CliRunner().invoke(
        build_cli(),
        [*args],
        env={
            "POLICY_PATH": str(root / "policies"),
            "AUDIT_PATH": str(root / "audit"),
            "IDENTITY_PATH": str(root / "identities"),
        },
    )
    assert result.exit_code in (0, 1), result.output
    return result.output


def test_no_secret_reaches_any_file_or_cli_output(governed: tuple[Path, list[str]]) -> None:
    root, escalations = governed
    outputs = [
        cli(root, "escalations", "list"),
        cli(root, "escalations", "list", "--status", "all", "--json"),
        cli(root, "escalations", "show", escalations[1]),
        cli(root, "escalations", "show", escalations[2], "--json"),
        cli(root, "audit", "query"),
        cli(root, "audit", "query", "--format", "table"),
        cli(root, "audit", "report", "--from", "2000-01-01", "--to", "2100-01-01"),
        cli(root, "audit", "report", "--from", "2000-01-01", "--to", "2100-01-01", "--format", "md"),
        cli(root, "audit", "report", "--from", "2000-01-01", "--to", "2100-01-01", "--format", "html"),
        cli(root, "audit", "verify"),
        cli(root, "identity", "list"),
    ]
    written = every_written_text(root)
    assert '"type":"agent_action"' in written and "pay:invoice" in written  # the grep reads the real files
    assert any("[REDACTED" in out for out in outputs)
    leaks = []
    for entry in CORPUS:
        for form in forms(entry["secret"]):
            if form in written:
                leaks.append((entry["name"], "file", form))
            for out in outputs:
                if form in out:
                    leaks.append((entry["name"], "cli", form))
    assert not leaks, leaks[:10]


def test_an_echoed_password_argument_is_scrubbed_from_output_error_and_trust(tmp_path: Path) -> None:
    """The issue's example: a tool echoing ``token=<the redacted Password argument>`` in free text."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text(POLICY)
    with Governor(tmp_path / "policies", tmp_path / "audit", tmp_path / "identities", load_entry_points=False) as gov:
        agent = gov.agent("bot")
        agent.execute("tool:login", {"Password": "hunter2-secret"}, lambda a: f"ok, using {a['Password']}")
        agent.execute(
            "tool:login",
            {"Password": "hunter2-secret"},
            lambda a: (_ for _ in ()).throw(ValueError(f"bad {a['Password']}")),
        )
        entries = list(gov.audit.entries())
        health = json.dumps(gov.health_check())
    text = json.dumps(entries) + health + every_written_text(tmp_path)
    assert "hunter2-secret" not in text
    outputs = [e["details"]["output"] for e in entries if e["type"] == "agent_action"]
    assert outputs[0] == "ok, using [REDACTED]"


def test_big_outputs_are_bounded_with_size_and_hash(tmp_path: Path) -> None:
    import hashlib

    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text(POLICY)
    big = "8" * 5_000_000
    rows = [{"n": i, "text": "row " * 10} for i in range(5000)]
    with Governor(
        tmp_path / "policies",
        tmp_path / "audit",
        tmp_path / "identities",
        load_entry_points=False,
        max_stored_output=4096,
    ) as gov:
        agent = gov.agent("bot")
        agent.execute("tool:big", {}, lambda a: big)
        agent.execute("tool:rows", {}, lambda a: rows)
        actions = [e for e in gov.audit.entries() if e["type"] == "agent_action"]
    first, second = actions[0]["details"], actions[1]["details"]
    assert len(first["output"]) <= 4096 + 120 and first["output_truncated"]["size"] == 5_000_000
    assert first["output_truncated"]["sha256"] == hashlib.sha256(big.encode()).hexdigest()
    assert isinstance(second["output"], str) and len(second["output"]) <= 4096
    assert second["output_truncated"]["format"] == "json" and second["output_truncated"]["size"] > 100_000
    assert max(p.stat().st_size for p in (tmp_path / "audit").rglob("*.jsonl")) < 64 * 1024
