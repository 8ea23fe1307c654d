"""``claw-gov job start|list|show|revoke``: work-contract jobs and their tokens."""

from __future__ import annotations

import time
from typing import Any

import click

from claw_governance.hookspecs import hookimpl
from claw_governance.state.base import JobRecord
from claw_governance.timeparse import iso_utc_or_none


def job_dict(job: JobRecord, now: float | None = None) -> dict[str, Any]:
    """A job record as the CLI and the console show it (never a token)."""
    now = time.time() if now is None else now
    state = job.status if job.revoked or job.expires > now else "expired"
    return {
        "job_id": job.job_id,
        "agent_id": job.agent_id,
        "status": state,
        "scope": list(job.scope),
        "scope_hash": job.scope_hash,
        "pinned_policy_hash": job.policy_hash,
        "current_token_id": job.token_id,
        "tokens_issued": job.tokens_issued,
        "issued": iso_utc_or_none(job.issued),
        "expires": iso_utc_or_none(job.expires),
        "revoked_at": iso_utc_or_none(job.revoked_at),
        "reason": job.reason,
    }


@hookimpl
def claw_register_commands(cli: click.Group) -> None:
    """Add the ``job`` group."""
    from claw_governance.cli._common import echo_json, fail, governor_options, open_governor
    from claw_governance.errors import ClawGovernanceError
    from claw_governance.policy.schema import parse_duration

    @cli.group()
    def job() -> None:
        """Work-contract jobs: a scoped, short-lived, revocable token per job, pinned to the policy in force."""

    @job.command("start")
    @click.argument("job_id")
    @click.option("--agent", "agent_id", required=True, help="The agent the job runs as.")
    @click.option(
        "--scope",
        "scope",
        multiple=True,
        required=True,
        help="An action pattern the job may use (repeat for several), e.g. 'read:*'.",
    )
    @click.option("--ttl", default="30m", show_default=True, help="Token lifetime: 90s, 30m, 4h ...")
    @click.option("--no-pin", is_flag=True, help="Do not pin the policy in force (no drift protection).")
    @click.option("--json", "as_json", is_flag=True, help="Print the job and its token as JSON.")
    @governor_options
    def start(
        job_id: str, agent_id: str, scope: tuple[str, ...], ttl: str, no_pin: bool, as_json: bool, **paths: Any
    ) -> None:
        """Start JOB_ID (or retry it: a new token; the old one is refused from now on) and print the token.

        Only the token goes to standard output, so `TOKEN=$(claw-gov job start ...)` works; the summary
        goes to standard error.
        """
        try:
            seconds = parse_duration(ttl, file="--ttl", line=0, what="--ttl")
        except ClawGovernanceError:
            fail(f"--ttl must be a duration like 90s, 30m or 4h, not {ttl!r}")
        with open_governor(**paths) as gov:
            started, existed = gov.jobs.start(
                job_id, agent_id, list(scope), seconds, policy=gov.policy, pin_policy=not no_pin
            )
        if as_json:
            echo_json({**job_dict(started.record), "token": started.token, "claims": started.claims.as_dict()})
            return
        verb = "retried (new token; the previous one is now refused)" if existed else "started"
        click.echo(
            f"job {job_id} {verb}: agent {agent_id}, scope {', '.join(started.claims.scope)}, "
            f"expires {iso_utc_or_none(started.expires_at)}, policy "
            f"{(started.claims.policy_hash or 'not pinned')[:16]}",
            err=True,
        )
        click.echo(started.token)

    @job.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @governor_options
    def list_jobs(as_json: bool, **paths: Any) -> None:
        """Every job, newest first."""
        with open_governor(**paths) as gov:
            jobs = [job_dict(j) for j in gov.jobs.list()]
        if as_json:
            echo_json(jobs)
            return
        if not jobs:
            click.echo("no jobs")
        for j in jobs:
            click.echo(
                f"{j['job_id']}  {j['status']:<8} {j['agent_id']}  scope={','.join(j['scope'])}  "
                f"expires={j['expires']}  tokens={j['tokens_issued']}"
            )

    @job.command("show")
    @click.argument("job_id")
    @governor_options
    def show(job_id: str, **paths: Any) -> None:
        """One job as JSON (its claims; never a token)."""
        with open_governor(**paths) as gov:
            found = gov.jobs.get(job_id)
        if found is None:
            fail(f"no job with id {job_id!r}", code=1)
        echo_json(job_dict(found))

    @job.command("revoke")
    @click.argument("job_id")
    @click.option("--reason", default="revoked by an operator", show_default=True, help="Why (audited).")
    @click.option("--by", default=None, envvar="CLAW_OPERATOR", help="Who revokes (audited).")
    @governor_options
    def revoke(job_id: str, reason: str, by: str | None, **paths: Any) -> None:
        """Revoke JOB_ID: every token of it is refused (running agents: within the state sync interval)."""
        with open_governor(**paths) as gov:
            gov.revoke_job(job_id, reason, by=by)
        click.echo(f"job {job_id} revoked")
