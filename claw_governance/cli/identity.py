"""``claw-gov identity create|list|show|rotate|revoke|reinstate``. Every change is audited."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from claw_governance.cli._common import echo, echo_json, fail, governor_options, open_governor
from claw_governance.hookspecs import hookimpl
from claw_governance.state.base import IdentityRecord
from claw_governance.terminal import safe_text
from claw_governance.timeparse import iso_utc_or_none


def _record_dict(gov: Any, record: IdentityRecord, with_keys: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "agent_id": record.agent_id,
        "status": record.status,
        "key_id": record.key_id,
        "trust_score": gov.trust.score(record.agent_id, gov.policy.trust_settings(record.agent_id)),
        "created": iso_utc_or_none(record.created),
        "updated": iso_utc_or_none(record.updated),
        "reason": record.reason,
        "metadata": dict(record.metadata),
    }
    if with_keys:
        path = gov.identities.key_path(record.agent_id)
        out["key_file"] = str(path) if path is not None else None
        out["keys"] = [
            {
                "key_id": k.key_id,
                "algorithm": k.algorithm,
                "public_key": k.public_key,
                "created": iso_utc_or_none(k.created),
                "retired": iso_utc_or_none(k.retired),
                "current": k.key_id == record.key_id,
            }
            for k in gov.identities.keys(record.agent_id)
        ]
    return out


def _open(paths: dict[str, Any]) -> Any:
    return open_governor(**paths, auto_create_identity=False)


@hookimpl
def claw_register_commands(cli: click.Group) -> None:
    """Add the ``identity`` group."""

    @cli.group()
    def identity() -> None:
        """Agent identities: Ed25519 keys, rotation, revocation (CLAW_IDENTITY_PASSPHRASE encrypts keys)."""

    @identity.command("create")
    @click.argument("agent_id")
    @click.option("--name", default=None, help="Display name (metadata).")
    @click.option("--role", default=None, help="Role (metadata).")
    @click.option("--owner", default=None, help="Owner, e.g. team@example.com (metadata).")
    @click.option(
        "--import-key",
        "import_key",
        type=click.Path(path_type=Path, exists=True, dir_okay=False),
        default=None,
        help="Import an existing PEM/DER private key (Ed25519 or RSA >= 2048 bits).",
    )
    @click.option("--by", default=None, envvar="CLAW_OPERATOR", help="Who makes the change (audited).")
    @click.option("--json", "as_json", is_flag=True, help="Print the identity as JSON.")
    @governor_options
    def create(
        agent_id: str,
        name: str | None,
        role: str | None,
        owner: str | None,
        import_key: Path | None,
        by: str | None,
        as_json: bool,
        **paths: Any,
    ) -> None:
        """Create AGENT_ID's identity and key (the key file is written with mode 0600)."""
        from claw_governance.identity.keys import import_private_key

        key = None
        if import_key is not None:
            password = os.environ.get("CLAW_IMPORT_KEY_PASSPHRASE")
            key = import_private_key(import_key.read_bytes(), password.encode() if password else None)
        metadata = {k: v for k, v in (("name", name), ("role", role), ("owner", owner)) if v}
        with _open(paths) as gov:
            record = gov.identities.create(agent_id, metadata=metadata, private_key=key, created_by=by)
            if as_json:
                echo_json(_record_dict(gov, record, with_keys=True))
            else:
                path = gov.identities.key_path(agent_id)
                protection = (
                    " (encrypted)"
                    if gov.config.identity_passphrase
                    else " (NOT encrypted: set CLAW_IDENTITY_PASSPHRASE)"
                )
                echo(
                    f"created {agent_id}: key {record.key_id} ({'imported' if key else 'ed25519'})"
                    f"{f', key file {path}' if path else ''}{protection}"
                )

    @identity.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @governor_options
    def list_(as_json: bool, **paths: Any) -> None:
        """Every identity with its status and trust score."""
        with _open(paths) as gov:
            rows = [_record_dict(gov, r) for r in gov.identities.list_identities()]
        if as_json:
            echo_json(rows)
            return
        if not rows:
            echo("no identities")
        for row in rows:
            echo(
                f"{safe_text(row['agent_id']):<32} {safe_text(row['status']):<8} trust {row['trust_score']:>4}  "
                f"key {row['key_id'][:16]}  created {row['created']}"
            )

    @identity.command("show")
    @click.argument("agent_id")
    @click.option("--check-key", is_flag=True, help="Also open the private key file (permissions, passphrase).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @governor_options
    def show(agent_id: str, check_key: bool, as_json: bool, **paths: Any) -> None:
        """One identity: status, trust, every public key (retired ones verify old signatures)."""
        with _open(paths) as gov:
            record = gov.identities.get(agent_id)
            if record is None:
                fail(f"no identity for agent {agent_id!r}")
            out = _record_dict(gov, record, with_keys=True)
            if check_key:
                loaded = gov.identities.load_private_key(agent_id)  # IdentityError -> one-line error
                out["key_check"] = f"ok ({loaded.algorithm}, {'encrypted' if loaded.encrypted else 'not encrypted'})"
        if as_json:
            echo_json(out)
            return
        for field in (
            "agent_id",
            "status",
            "reason",
            "trust_score",
            "key_id",
            "key_file",
            "created",
            "updated",
            "metadata",
            "key_check",
        ):
            if out.get(field) not in (None, {}):
                echo(f"{field + ':':<14}{safe_text(out[field])}")
        for k in out["keys"]:
            state = "current" if k["current"] else f"retired {k['retired']}"
            echo(f"key {k['key_id']}  {k['algorithm']:<8} created {k['created']}  {state}")

    @identity.command("rotate")
    @click.argument("agent_id")
    @click.option("--reason", default=None, help="Why (audited).")
    @click.option("--by", default=None, envvar="CLAW_OPERATOR", help="Who makes the change (audited).")
    @governor_options
    def rotate(agent_id: str, reason: str | None, by: str | None, **paths: Any) -> None:
        """Give AGENT_ID a new key; the old public key is kept to verify what it signed before."""
        with _open(paths) as gov:
            old = gov.identities.require(agent_id)
            record = gov.identities.rotate(agent_id, by=by, reason=reason)
        echo(f"rotated {agent_id}: key {old.key_id} -> {record.key_id}")

    @identity.command("revoke")
    @click.argument("agent_id")
    @click.option("--reason", required=True, help="Why (audited).")
    @click.option("--by", required=True, envvar="CLAW_OPERATOR", help="Who revokes (audited).")
    @governor_options
    def revoke(agent_id: str, reason: str, by: str, **paths: Any) -> None:
        """Revoke AGENT_ID: every call is denied (in running agents within state_sync_interval)."""
        with _open(paths) as gov:
            if gov.identities.require(agent_id).revoked:
                fail(f"identity {agent_id!r} is already revoked")
            gov.identities.revoke(agent_id, reason, by=by)
        echo(f"revoked {agent_id}")

    @identity.command("reinstate")
    @click.argument("agent_id")
    @click.option("--by", required=True, envvar="CLAW_OPERATOR", help="Who reinstates (audited).")
    @click.option("--reason", default=None, help="Why (audited).")
    @click.option(
        "--score", type=int, default=None, help="Trust score to restart at (default: policy trust.recovery_score, 80)."
    )
    @governor_options
    def reinstate(agent_id: str, by: str, reason: str | None, score: int | None, **paths: Any) -> None:
        """Reinstate AGENT_ID at the policy's recovery score: a revoked identity, or one whose trust score fell
        below the policy's minimum (every call denied until a human lets it resume)."""
        with _open(paths) as gov:
            recovery = score if score is not None else gov.policy.trust_settings(agent_id).recovery_score
            record = gov.identities.require(agent_id)
            if record.revoked:
                gov.identities.reinstate(agent_id, by=by, reason=reason, recovery_score=recovery)
            else:
                current, minimum = gov.trust_score(agent_id), gov.minimum_trust(agent_id)
                if current >= minimum:
                    fail(f"identity {agent_id!r} is not revoked (nor blocked: trust {current}, minimum {minimum})")
                gov.trust.set(agent_id, recovery, f"resumed by {by}" + (f": {reason}" if reason else ""))
        echo(f"reinstated {agent_id} with trust score {recovery}")
