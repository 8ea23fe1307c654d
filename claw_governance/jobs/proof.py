"""Proof bundles per job: everything an auditor needs to check one run offline, with keys they obtained.

``export_job_proof`` writes, into an empty folder::

    README.md              what is here and the commands that check it (ours and the Go reference tools)
    contract/              the policy files of the job's contract (from the policy archive) + contract.json
    token.json             the job token's claims (never the token), and every token id minted for the job
    entries.jsonl          every audit entry of the job (decisions, outcomes, escalations and resolutions,
                           model-call receipts, job events), byte for byte as in the trail
    proofs/seq-N.tlog-proof  a c2sp.org/tlog-proof@v1 inclusion proof of each entry in the checkpoint below
    checkpoint.note        the signed checkpoint (C2SP signed note) with every witness cosignature it has
    governor_public_key.pem, verifier_key.txt   the log's key (compare with a copy obtained independently)
    manifest.json          SHA-256 of every file above

``verify_job_proof`` checks it with the keys it is given (never a key from the bundle): the manifest, every
entry's inclusion proof against a checkpoint signed by a trusted key (and cosigned by enough witnesses when
asked), the contract's hash against the token's pinned hash, and the contract's rules over the entries
(``jobs.rules.check_job``). What a bundle cannot show on its own: that no entry of the job was left out of it
(the proofs show that each included entry is in the log); for that, verify the whole trail.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from claw_governance.audit.bundle import check_proof, latest_checkpoint, make_proof, parse_proof, trail_leaves
from claw_governance.audit.keys import PublicKey
from claw_governance.audit.note import parse_checkpoint, vkey
from claw_governance.audit.reader import TrailReader
from claw_governance.audit.verify import Witness
from claw_governance.errors import AuditError
from claw_governance.jobs.rules import check_job, job_entries
from claw_governance.state.base import StateStore

README = """# Proof bundle of job `{job_id}`

Agent `{agent_id}`, {count} audit entries, contract (policy set) `{policy_hash}`.
Trail origin `{origin}`, checkpoint of tree size {size}; governor key id `{key_id}`.

Check it offline, from this folder, with the governor's public key obtained independently (not the copy here):

    claw-gov proof verify . --public-key /path/to/governor_public_key.pem [--witness <vkey> --min-witnesses 1]

It checks `manifest.json`, the inclusion proof of every entry in `entries.jsonl` against `checkpoint.note`
(signed by the key you give, cosigned by the witnesses you name), that the files in `contract/` hash to the
policy hash the job token pinned, and the contract's rules over the entries: no call allowed outside the
token's scope, every allowed call under the pinned policy, model-call receipts when the contract says
`receipts: required`, no model route outside the contract.

Without our tool: each `proofs/seq-<N>.tlog-proof` is a c2sp.org/tlog-proof@v1 file and `checkpoint.note` a
C2SP signed note, so the Go reference implementation (golang.org/x/mod/sumdb/note and tlog) checks them;
`tools/tlogverify` in the claw-governance source does exactly that:

    GOPATH=/usr/share/gocode GO111MODULE=off go build -o tlogverify tools/tlogverify/main.go
    ./tlogverify proof "$(cat verifier_key.txt)" proofs/seq-<N>.tlog-proof <file holding line N of entries.jsonl>

The proofs show that every entry here is in the signed log; they cannot show that no entry of the job was
left out of this folder. To show that, verify the whole trail (`claw-gov audit export`).
"""


@dataclass(frozen=True, slots=True)
class JobProofReport:
    """The result of ``verify_job_proof``: ``valid`` only when ``problems`` is empty."""

    job_id: str | None
    entries: int
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def valid(self) -> bool:
        """True when every check passed."""
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``."""
        return {"valid": self.valid, "job_id": self.job_id, "entries": self.entries, "problems": list(self.problems)}


def policy_set_hash(files: dict[str, bytes]) -> str:
    """The content hash of a policy folder, exactly as the loader computes it (name and SHA-256 of each file)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def export_job_proof(
    audit_path: Path, store: StateStore, key: PublicKey, job_id: str, destination: Path
) -> dict[str, Any]:
    """Write the proof bundle of ``job_id``; return its manifest. AuditError says why it cannot."""
    job = store.get_job(job_id)
    if job is None:
        raise AuditError(f"no job with id {job_id!r} in the state store")
    if destination.exists() and any(destination.iterdir()):
        raise AuditError(f"{destination} is not empty")
    reader = TrailReader(audit_path, public_keys=[key])
    cp = latest_checkpoint(audit_path)
    leaves, lines = trail_leaves(audit_path)
    parsed = [(seq, orjson.loads(raw)) for seq, raw in sorted(lines.items())]
    for seq, entry in parsed:
        if isinstance(entry, dict):
            entry.setdefault("seq", seq)
    by_seq = {seq: entry for seq, entry in parsed if isinstance(entry, dict)}
    mine = job_entries([by_seq[s] for s in sorted(by_seq)], job_id)
    if not mine:
        raise AuditError(f"job {job_id!r} has no entries in {audit_path}")
    uncovered = [int(e["seq"]) for e in mine if int(e["seq"]) > cp.size]
    if uncovered:
        raise AuditError(
            f"{len(uncovered)} entries of job {job_id} come after the latest checkpoint (tree size "
            f"{cp.size}); export again after the next checkpoint (a governor writes one at close)"
        )
    started = next((e for e in mine if e.get("type") == "job" and e["details"].get("event") == "started"), None)
    policy_hash = job.policy_hash or (started or {}).get("policy_hash")
    version = store.get_policy_version(str(policy_hash)) if policy_hash else None
    if version is None:
        raise AuditError(f"the policy archive holds no policy {policy_hash} (the contract of job {job_id})")
    destination.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(version.files.items()):
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise AuditError(f"archived policy file name {name!r} is not a relative path")
        _write(destination / "contract" / relative, text)
    _write(
        destination / "contract.json",
        orjson.dumps({"policy_hash": version.policy_hash, "files": sorted(version.files)}, option=orjson.OPT_INDENT_2),
    )
    minted = [
        e["details"].get("job_token_id")
        for e in mine
        if e.get("type") == "job" and e["details"].get("event") in ("started", "token_minted")
    ]
    claims = {
        "iss": "claw-governance",
        "sub": job.agent_id,
        "jti": job.token_id,
        "iat": int(job.issued),
        "exp": int(job.expires),
        "job": job.job_id,
        "scope": list(job.scope),
        "scope_hash": job.scope_hash,
        "policy_hash": job.policy_hash,
        "tokens_minted": minted,
        "status": job.status,
        "revoked_at": job.revoked_at,
    }
    _write(destination / "token.json", orjson.dumps(claims, option=orjson.OPT_INDENT_2))
    with open(destination / "entries.jsonl", "wb") as out:
        for entry in mine:
            out.write(lines[int(entry["seq"])] + b"\n")
    for entry in mine:
        seq = int(entry["seq"])
        _write(destination / "proofs" / f"seq-{seq}.tlog-proof", make_proof(leaves, cp, seq))
    _write(destination / "checkpoint.note", cp.note())
    _write(destination / "governor_public_key.pem", key.pem())
    _write(destination / "verifier_key.txt", vkey(reader.origin, key) + "\n")
    _write(
        destination / "README.md",
        README.format(
            job_id=job_id,
            agent_id=job.agent_id,
            count=len(mine),
            policy_hash=version.policy_hash,
            origin=cp.origin,
            size=cp.size,
            key_id=key.key_id,
        ),
    )
    files = {
        p.relative_to(destination).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(destination.rglob("*"))
        if p.is_file()
    }
    manifest = {
        "format": "claw-governance/job-proof@v1",
        "job_id": job_id,
        "entries": len(mine),
        "origin": cp.origin,
        "tree_size": cp.size,
        "files": files,
    }
    _write(destination / "manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest


def _contract_of(files: dict[str, bytes], agent_id: str) -> Any:
    from claw_governance.policy import load_policy_set

    with tempfile.TemporaryDirectory(prefix="claw-contract-") as tmp:
        for name, data in files.items():
            _write(Path(tmp) / name, data)
        return load_policy_set(tmp).contract(agent_id)


def verify_job_proof(
    directory: Path, keys: Sequence[PublicKey], *, witnesses: Sequence[Witness] = (), min_witnesses: int = 0
) -> JobProofReport:
    """Check a proof bundle offline; every problem found is named (the bundle is INVALID if there is any)."""
    problems: list[str] = []
    if not keys:
        raise AuditError("verifying a proof bundle needs the governor's public key (--public-key)")
    try:
        manifest = orjson.loads((directory / "manifest.json").read_bytes())
        listed: dict[str, str] = dict(manifest["files"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return JobProofReport(None, 0, (f"manifest.json is missing or unreadable ({type(exc).__name__})",))
    job_id = manifest.get("job_id")
    present = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()} - {"manifest.json"}
    for name in sorted(set(listed) - present):
        problems.append(f"{name}: listed in manifest.json but missing")
    for name in sorted(present - set(listed)):
        problems.append(f"{name}: not listed in manifest.json")
    for name in sorted(set(listed) & present):
        if hashlib.sha256((directory / name).read_bytes()).hexdigest() != listed[name]:
            problems.append(f"{name}: its SHA-256 differs from manifest.json")
    try:
        cp = parse_checkpoint((directory / "checkpoint.note").read_text())
    except (OSError, ValueError) as exc:
        return JobProofReport(job_id, 0, (*problems, f"checkpoint.note is missing or malformed: {exc}"))
    if not any(cp.signed_by(k) for k in keys):
        problems.append("checkpoint.note is not signed by a trusted key")
    if min_witnesses:
        cosigned = sum(1 for w in witnesses if cp.cosigned_by(w.name, w.key) is not None)
        if cosigned < min_witnesses:
            problems.append(
                f"checkpoint.note is cosigned by {cosigned} of the given witnesses; {min_witnesses} required"
            )
    raw_lines = (
        (directory / "entries.jsonl").read_bytes().splitlines() if (directory / "entries.jsonl").exists() else []
    )
    if not raw_lines:
        problems.append("entries.jsonl is missing or empty")
    entries: list[dict[str, Any]] = []
    for number, line in enumerate(raw_lines, 1):
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            problems.append(f"entries.jsonl line {number}: not JSON")
            continue
        seq = entry.get("seq") if isinstance(entry, dict) else None
        proof_path = directory / "proofs" / f"seq-{seq}.tlog-proof"
        if not isinstance(seq, int) or not proof_path.exists():
            problems.append(f"entries.jsonl line {number}: no inclusion proof (proofs/seq-{seq}.tlog-proof)")
            continue
        text = proof_path.read_text()
        problem = check_proof(text, line, keys, cp.origin)
        if problem is None:
            index, _, proof_cp = parse_proof(text)
            if index != seq - 1:
                problem = f"the proof is for index {index}, not entry {seq}"
            elif (proof_cp.size, proof_cp.root) != (cp.size, cp.root):
                problem = "the proof leads to another checkpoint than checkpoint.note"
        if problem is not None:
            problems.append(f"entry seq {seq}: {problem}")
        entries.append(entry)
    try:
        claims = orjson.loads((directory / "token.json").read_bytes())
        contract_meta = orjson.loads((directory / "contract.json").read_bytes())
    except (OSError, ValueError) as exc:
        return JobProofReport(job_id, len(entries), (*problems, f"token.json or contract.json unreadable: {exc}"))
    files = {
        name: (directory / "contract" / name).read_bytes()
        for name in contract_meta.get("files", [])
        if (directory / "contract" / name).is_file()
    }
    if len(files) != len(contract_meta.get("files", [])):
        problems.append("contract/: a file named in contract.json is missing")
    contract_hash = policy_set_hash(files)
    if contract_hash != contract_meta.get("policy_hash"):
        problems.append(
            f"contract/ hashes to {contract_hash}, not the {contract_meta.get('policy_hash')} contract.json names"
        )
    pinned = claims.get("policy_hash")
    if pinned and pinned != contract_hash:
        problems.append(f"the token pinned policy {pinned}, but contract/ is policy {contract_hash}")
    if claims.get("job") != job_id:
        problems.append(f"token.json is for job {claims.get('job')!r}, not {job_id!r}")
    if claims.get("jti") not in (claims.get("tokens_minted") or []):
        problems.append("token.json's token id is not among the tokens the job's entries show as minted")
    try:
        contract = _contract_of(files, str(claims.get("sub")))
    except Exception as exc:  # a contract that does not even load is a finding, not a crash
        problems.append(f"contract/ does not load as a policy: {exc}")
        contract = None
    problems.extend(check_job(entries, claims, contract))
    return JobProofReport(job_id, len(entries), tuple(problems))
