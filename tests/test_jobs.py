"""Work contracts: job tokens (scope, expiry, agent, job binding, supersession, revocation, drift) and the
policy archive. Each test is an attack the promise must survive."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from claw_governance import Governor, Outcome
from claw_governance.cli import build_cli
from claw_governance.errors import ConfigError, PolicyError
from claw_governance.jobs.tokens import JobTokenError, scope_hash, verify

CONTRACT = """\
agent: billing-agent
purpose: Invoice triage and draft response
permissions:
  allow: ["read:*", "write:draft", "send:email"]
  deny: ["delete:*"]
models:
  allow: ["openai/gpt-5*"]
receipts: required
token:
  max_ttl: 1h
  require_scope: true
approvals:
  required_for: [send:email]
"""

PLAIN = """\
agent: billing-agent
permissions:
  allow: ["read:*", "write:*"]
"""


def _reason(gov: Governor, token: str | None, action: str = "read:invoice", **kw: str) -> str:
    return gov.agent("billing-agent", job_token=token, **kw).check(action).reason


def test_a_job_token_allows_only_its_scope(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(CONTRACT)
    job = gov.start_job("invoice-4711", agent_id="billing-agent", scope=["read:*"], ttl=1800)
    agent = gov.agent("billing-agent", job_token=job.token)
    assert agent.check("read:invoice").outcome is Outcome.ALLOW
    denied = agent.check("write:draft")  # the policy allows it; the job's scope does not
    assert denied.outcome is Outcome.DENY and denied.stage == "job"
    assert "outside the scope of job invoice-4711" in denied.reason
    # look-alike spellings are normalised before the scope check, like policy patterns
    assert agent.check("READ:Invoice ").outcome is Outcome.ALLOW


def test_the_contract_demands_a_token(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(CONTRACT)
    d = gov.agent("billing-agent").check("read:invoice")
    assert d.outcome is Outcome.DENY and "requires a job token" in d.reason


def test_expired_token_is_refused(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(CONTRACT)
    job = gov.start_job("j-exp", agent_id="billing-agent", scope=["read:*"], ttl=60)
    assert _reason(gov, job.token).startswith("Allowed")
    gov.jobs._now = lambda: time.time() + 61  # the clock moves past the expiry
    assert "expired" in _reason(gov, job.token)


def test_token_of_one_agent_is_refused_for_another(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(
        PLAIN
        + textwrap.dedent("""\
        ---
        agent: other-agent
        permissions:
          allow: ["read:*"]
        """)
    )
    job = gov.start_job("j1", agent_id="billing-agent", scope=["read:*"])
    d = gov.agent("other-agent", job_token=job.token).check("read:invoice")
    assert d.outcome is Outcome.DENY and 'is for agent "billing-agent"' in d.reason


def test_token_replayed_for_another_job_is_refused(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(PLAIN)
    first = gov.start_job("job-a", agent_id="billing-agent", scope=["read:*"])
    gov.start_job("job-b", agent_id="billing-agent", scope=["read:*"])
    assert "minted for job job-a, not job-b" in _reason(gov, first.token, job_id="job-b")
    assert _reason(gov, first.token, job_id="job-a").startswith("Allowed")


def test_a_retry_supersedes_the_old_token(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(PLAIN)
    old = gov.start_job("job-r", agent_id="billing-agent", scope=["read:*"])
    new = gov.start_job("job-r", agent_id="billing-agent", scope=["read:*"])
    assert new.claims.token_id != old.claims.token_id
    assert "superseded" in _reason(gov, old.token)
    assert _reason(gov, new.token).startswith("Allowed")
    assert gov.jobs.get("job-r").tokens_issued == 2  # type: ignore[union-attr]


def test_a_job_id_cannot_be_taken_over_by_another_agent(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(PLAIN)
    gov.start_job("job-x", agent_id="billing-agent", scope=["read:*"])
    with pytest.raises(ConfigError, match="belongs to agent"):
        gov.start_job("job-x", agent_id="intruder", scope=["*"])


def test_revoked_job_is_refused_and_stays_revoked(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(PLAIN)
    job = gov.start_job("job-v", agent_id="billing-agent", scope=["read:*"])
    gov.revoke_job("job-v", "incident 42")
    assert "was revoked" in _reason(gov, job.token)
    retry = gov.start_job("job-v", agent_id="billing-agent", scope=["read:*"])  # a retry cannot un-revoke
    assert "was revoked" in _reason(gov, retry.token)


def test_policy_drift_after_a_hot_reload_is_denied(
    make_governor: Callable[..., Governor], write_policy: Callable[..., Path]
) -> None:
    gov = make_governor(PLAIN)
    pinned = gov.start_job("job-p", agent_id="billing-agent", scope=["read:*"])
    unpinned = gov.start_job("job-u", agent_id="billing-agent", scope=["read:*"], pin_policy=False)
    before = gov.policy.hash
    write_policy(PLAIN.replace('"write:*"', '"write:*", "exec:*"'))
    assert gov.reload_policies().changed
    reason = _reason(gov, pinned.token)
    assert reason == f"Policy drift: job job-p pinned {before}, in force {gov.policy.hash}"
    assert _reason(gov, unpinned.token).startswith("Allowed")


def test_ttl_above_the_contract_maximum_is_refused(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(CONTRACT)
    with pytest.raises(ConfigError, match=r"above the work contract's token.max_ttl \(3600s\)"):
        gov.start_job("j-long", agent_id="billing-agent", scope=["read:*"], ttl=7200)


@pytest.mark.parametrize("bad", [[""], [], "   ", [1]])
def test_start_job_validates_the_scope(make_governor: Callable[..., Governor], bad: object) -> None:
    gov = make_governor(PLAIN)
    with pytest.raises(ConfigError, match="scope"):
        gov.start_job("j", agent_id="billing-agent", scope=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("job_id", ["", "a b", "../etc", "job\u200b1", "x" * 200])
def test_start_job_validates_the_job_id(make_governor: Callable[..., Governor], job_id: str) -> None:
    gov = make_governor(PLAIN)
    with pytest.raises(ConfigError, match="job id"):
        gov.start_job(job_id, agent_id="billing-agent", scope=["read:*"])


def _tamper(token: str, part: int, change: Callable[[dict[str, object]], None]) -> str:
    pieces = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(pieces[part] + "=" * (-len(pieces[part]) % 4)))
    change(data)
    pieces[part] = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return ".".join(pieces)


def test_forged_tokens_are_refused(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(PLAIN)
    job = gov.start_job("job-f", agent_id="billing-agent", scope=["read:*"])
    widened = _tamper(job.token, 1, lambda c: c.update(scope=["*"], scope_hash=scope_hash(["*"])))
    assert "Job token refused" in _reason(gov, widened, "write:anything")
    longer = _tamper(job.token, 1, lambda c: c.update(exp=int(time.time()) + 10**6))
    assert "Job token refused" in _reason(gov, longer)
    none_alg = _tamper(job.token, 0, lambda h: h.update(alg="none")).rsplit(".", 1)[0] + "."
    assert "Job token refused" in _reason(gov, none_alg)
    # a token minted by someone else's key, even with the governor's key id in its header
    other = jwt.encode(
        job.claims.as_dict() | {"iss": "claw-governance"},
        Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": job.claims.key_id},
    )
    assert "Job token refused" in _reason(gov, other)
    assert "Job token refused" in _reason(gov, "not-a-token")
    # and the real one still works
    assert _reason(gov, job.token).startswith("Allowed")


@settings(max_examples=60, deadline=None)
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_any_one_byte_change_is_refused(tmp_path_factory: pytest.TempPathFactory, position: int, flip: int) -> None:
    folder = tmp_path_factory.mktemp("jobs")
    (folder / "p").mkdir()
    (folder / "p" / "a.yaml").write_text(PLAIN)
    with Governor(folder / "p", folder / "audit", folder / "ids", load_entry_points=False) as gov:
        job = gov.start_job("job-h", agent_id="billing-agent", scope=["read:*"])
        raw = bytearray(job.token.encode())
        index = position % len(raw)
        raw[index] = raw[index] ^ flip
        changed = raw.decode("latin-1")
        if changed == job.token:
            return
        # base64url can decode two spellings of the last character identically; such a token is the same token
        try:
            same = verify(changed, {job.claims.key_id: gov.jobs._keys[job.claims.key_id]}) == job.claims
        except JobTokenError:
            same = False
        reason = gov.agent("billing-agent", job_token=changed).check("read:x").reason
        assert same or "Job token refused" in reason or "superseded" in reason


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated:UserWarning")
@pytest.mark.filterwarnings("ignore::Warning:joserfc")
def test_a_token_verifies_with_another_jose_implementation(make_governor: Callable[..., Governor]) -> None:
    """joserfc (not ours, not PyJWT) checks the EdDSA signature with the governor's public key."""
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import OKPKey

    gov = make_governor(PLAIN)
    job = gov.start_job("job-i", agent_id="billing-agent", scope=["read:*", "write:draft"], ttl=600)
    public = OKPKey.import_key(gov.audit.key.public.pem())
    token = jose_jwt.decode(job.token, public, algorithms=["EdDSA"])
    assert token.header["alg"] == "EdDSA" and token.header["kid"] == gov.audit.key.public.key_id
    assert token.claims["job"] == "job-i" and token.claims["sub"] == "billing-agent"
    assert token.claims["scope_hash"] == scope_hash(["read:*", "write:draft"])
    assert token.claims["policy_hash"] == gov.policy.hash
    with pytest.raises(Exception):  # noqa: B017 - joserfc's own error type for a bad signature
        jose_jwt.decode(
            job.token[:-3] + ("AAA" if not job.token.endswith("AAA") else "BBB"), public, algorithms=["EdDSA"]
        )


def test_the_token_never_reaches_disk_but_the_job_id_does(
    make_governor: Callable[..., Governor], tmp_path: Path
) -> None:
    gov = make_governor(PLAIN)
    job = gov.start_job("job-d", agent_id="billing-agent", scope=["read:*"])
    agent = gov.agent("billing-agent", job_token=job.token)
    agent.execute("read:invoice", {"n": 1}, lambda ctx: "ok")
    gov.close()
    signature = job.token.rsplit(".", 1)[1]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert signature.encode() not in data, path
    entries = [
        json.loads(line)
        for p in sorted((tmp_path / "logs" / "audit").rglob("*.jsonl"))
        for line in p.read_text().splitlines()
        if line.strip()
    ]
    decisions = [e for e in entries if e["type"] in ("policy_decision", "agent_action")]
    assert decisions and all(e["details"]["job_id"] == "job-d" for e in decisions)
    assert any(e["type"] == "job" and e["details"]["event"] == "started" for e in entries)


def test_revocation_in_another_process_reaches_a_running_agent(
    tmp_path: Path, write_policy: Callable[..., Path]
) -> None:
    write_policy(PLAIN)
    paths = [
        "--policies",
        str(tmp_path / "policies"),
        "--audit",
        str(tmp_path / "logs" / "audit"),
        "--identities",
        str(tmp_path / "identities"),
    ]
    with Governor(
        tmp_path / "policies",
        tmp_path / "logs" / "audit",
        tmp_path / "identities",
        load_entry_points=False,
        state_sync_interval=0.2,
    ) as gov:
        job = gov.start_job("job-m", agent_id="billing-agent", scope=["read:*"])
        agent = gov.agent("billing-agent", job_token=job.token)
        assert agent.check("read:a").allowed
        out = subprocess.run(
            [str(Path(sys.executable).parent / "claw-gov"), "job", "revoke", "job-m", *paths],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0 and "revoked" in out.stdout, out.stderr
        deadline = time.monotonic() + 5
        while agent.check("read:a").allowed and time.monotonic() < deadline:
            time.sleep(0.05)
        d = agent.check("read:a")
        assert d.outcome is Outcome.DENY and "was revoked" in d.reason


# ------------------------------------------------------------------------------------------------ CLI


def _cli(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(
        build_cli(),
        [
            *args,
            "--policies",
            str(tmp_path / "policies"),
            "--audit",
            str(tmp_path / "logs" / "audit"),
            "--identities",
            str(tmp_path / "identities"),
        ],
        prog_name="claw-gov",
    )


def test_job_cli_lifecycle(tmp_path: Path, write_policy: Callable[..., Path]) -> None:
    write_policy(PLAIN)
    started = _cli(tmp_path, "job", "start", "job-c", "--agent", "billing-agent", "--scope", "read:*", "--ttl", "10m")
    assert started.exit_code == 0, started.output
    token = started.stdout.strip().splitlines()[-1]
    assert token.count(".") == 2
    listed = _cli(tmp_path, "job", "list", "--json")
    assert json.loads(listed.stdout)[0]["job_id"] == "job-c"
    assert token not in listed.stdout
    with Governor(
        tmp_path / "policies", tmp_path / "logs" / "audit", tmp_path / "identities", load_entry_points=False
    ) as gov:
        assert gov.agent("billing-agent", job_token=token).check("read:x").allowed
    assert _cli(tmp_path, "job", "revoke", "job-c", "--reason", "done").exit_code == 0
    shown = json.loads(_cli(tmp_path, "job", "show", "job-c").stdout)
    assert shown["status"] == "revoked" and shown["reason"] == "done"
    with Governor(
        tmp_path / "policies", tmp_path / "logs" / "audit", tmp_path / "identities", load_entry_points=False
    ) as gov:
        assert not gov.agent("billing-agent", job_token=token).check("read:x").allowed
    bad = _cli(tmp_path, "job", "start", "job-d", "--agent", "billing-agent", "--scope", "read:*", "--ttl", "soon")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --ttl") and "Traceback" not in bad.output
    assert _cli(tmp_path, "job", "show", "nope").exit_code == 1


def test_policy_archive_history_show_diff(tmp_path: Path, write_policy: Callable[..., Path]) -> None:
    write_policy(PLAIN)
    with Governor(
        tmp_path / "policies", tmp_path / "logs" / "audit", tmp_path / "identities", load_entry_points=False
    ) as gov:
        first = gov.policy.hash
        write_policy(PLAIN.replace('"write:*"', '"write:*", "exec:*"'))
        gov.reload_policies()
        second = gov.policy.hash
    history = json.loads(_cli(tmp_path, "policy", "history", "--json").stdout)
    assert [h["policy_hash"] for h in history] == [first, second]
    assert history[1]["in_force"] and not history[0]["in_force"]
    shown = _cli(tmp_path, "policy", "show", first[:10], "--file", "policy.yaml")
    assert shown.exit_code == 0 and shown.stdout == PLAIN
    diff = _cli(tmp_path, "policy", "diff", first, second)
    assert diff.exit_code == 1
    assert '-  allow: ["read:*", "write:*"]' in diff.stdout and '"exec:*"' in diff.stdout
    assert _cli(tmp_path, "policy", "diff", first, first).exit_code == 0
    unknown = _cli(tmp_path, "policy", "show", "deadbeefdeadbeef")
    assert unknown.exit_code == 2 and "no archived policy" in unknown.stderr
    short = _cli(tmp_path, "policy", "show", "ab")
    assert short.exit_code == 2 and "too short" in short.stderr
    # the archive is in the state store, not beside the policies an attacker may edit
    db = next((tmp_path / "identities").rglob("state.db"))
    rows = sqlite3.connect(db).execute("SELECT policy_hash FROM policy_versions").fetchall()
    assert {r[0] for r in rows} == {first, second}


@pytest.mark.parametrize(
    "text, message",
    [
        ("agent: a\ntoken: {max_ttl: 1h, require: true}\n", "unknown key 'require' in token"),
        ("agent: a\ntoken: {require_scope: yes please}\n", "token.require_scope must be true or false"),
        ("agent: a\nreceipts: sometimes\n", "'receipts' must be required or optional"),
        ("agent: a\nmodels: 5\n", "'models' must be a list"),
        ("agent: a\napprovals: {needed_for: [x]}\n", "unknown key 'needed_for' in approvals"),
        ("agent: a\ntoken: {max_ttl: forever}\n", "token.max_ttl must be a duration"),
    ],
)
def test_contract_fields_are_validated(compile_policy: Callable[..., object], text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compile_policy(text)


def test_contract_fields_load_and_approvals_become_escalations(compile_policy: Callable[..., object]) -> None:
    policy = compile_policy(CONTRACT)
    contract = policy.contract("billing-agent")  # type: ignore[attr-defined]
    assert contract.purpose == "Invoice triage and draft response"
    assert contract.models_allow == ("openai/gpt-5*",) and contract.receipts_required
    assert contract.token_max_ttl == 3600 and contract.token_require_scope
    from claw_governance.model import ToolCall

    decision = policy.decide(ToolCall("billing-agent", "send:email"))  # type: ignore[attr-defined]
    assert decision.outcome is Outcome.ESCALATE and "approvals.required_for" in decision.reason
