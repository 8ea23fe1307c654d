"""``claw-gov init``, ``claw-gov policy lint`` and ``claw-gov policy test``."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import click

from claw_governance.cli._common import audit_option, echo, echo_json
from claw_governance.errors import PolicyError
from claw_governance.hookspecs import hookimpl
from claw_governance.model import Outcome, ToolCall
from claw_governance.policy.names import forbidden_character, is_mixed_script, scripts
from claw_governance.policy.schema import LABEL_USE, PolicyDocument
from claw_governance.policy.source import LocDict, LocList, load_documents
from claw_governance.policy.store import load_policy_set, policy_files

RECOMMENDED_RETENTION_DAYS = 2555


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint result: ``level`` is "error", "warning" or "info" (what a policy says about itself)."""

    level: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.level}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """``--json`` form: level, file, line (None when the finding is about a whole file), message."""
        file, _, line = self.where.rpartition(":")
        if not file or not line.isdigit():
            file, line = self.where, ""
        return {"level": self.level, "file": file, "line": int(line) if line else None, "message": self.message}


def describe_metadata(metadata: dict[str, Any]) -> str:
    """One line for a policy's ``metadata:``: name, version, owner, description, then any other keys."""
    shown = dict(metadata)
    head = " ".join(
        part
        for part in (
            json.dumps(shown.pop("name")) if "name" in shown else "",
            f"v{shown.pop('version')}" if "version" in shown else "",
            f"(owner {shown.pop('owner')})" if "owner" in shown else "",
        )
        if part
    )
    if "description" in shown:
        head = f"{head}: {shown.pop('description')}" if head else str(shown.pop("description"))
    rest = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in shown.items())
    return " ".join("; ".join(part for part in (head, rest) if part).split())  # one line, whatever the YAML held


def lint_documents(docs: list[PolicyDocument]) -> list[Finding]:
    """The production red flags of the seed's deployment checklist, per document (and its metadata, as info)."""
    found: list[Finding] = []
    produced = {name for doc in docs for _, names, _ in doc.labels for name in names}
    for doc in docs:
        for rule in doc.rules:
            for name in LABEL_USE.findall(rule.condition.source if rule.condition else ""):
                if name not in produced:
                    found.append(
                        Finding(
                            "error",
                            rule.source,
                            f'label "{name}" is used but no labels: entry '
                            "produces it, so the condition can never see it (a typo?)",
                        )
                    )
    for doc in docs:
        where = f"{doc.file}:{doc.line}"
        if doc.metadata:
            found.append(
                Finding(
                    "info",
                    f"{doc.file}:{doc.metadata_line or doc.line}",
                    f'agent "{doc.agent}": {describe_metadata(doc.metadata)}',
                )
            )
        shadow = [r for r in doc.rules if r.shadow]
        if shadow:
            found.append(
                Finding(
                    "info",
                    where if doc.shadow else shadow[0].source,
                    f'agent "{doc.agent}": {len(shadow)} shadow rule(s) (mode: shadow): audited as '
                    "would_deny / would_escalate / would_allow, never enforced",
                )
            )
        deny = [r for r in doc.rules if r.effect is Outcome.DENY]
        allow = [r for r in doc.rules if r.effect is Outcome.ALLOW]
        escalate = [r for r in doc.rules if r.effect is Outcome.ESCALATE]
        found.extend(_name_findings(doc))
        for rule in allow:
            if rule.pattern.strip("*") == "" and rule.condition is None:
                found.append(
                    Finding(
                        "warning",
                        rule.source,
                        f'allow "{rule.raw_pattern}" permits every action'
                        + ("" if deny else " and no deny rule restricts it"),
                    )
                )
        if not deny and doc.agent != "*":
            found.append(Finding("warning", where, f'agent "{doc.agent}" has no deny rules (e.g. "delete:*")'))
        if not escalate and doc.agent != "*":
            found.append(
                Finding(
                    "warning",
                    where,
                    f'agent "{doc.agent}" has no escalate rules: no human-in-the-loop path for sensitive operations',
                )
            )
        for rule in escalate:
            if rule.timeout_seconds is None:
                found.append(
                    Finding(
                        "warning",
                        rule.source,
                        f'escalate "{rule.raw_pattern}" has no timeout '
                        "(the 24 h default applies); set one, e.g. timeout: 4h",
                    )
                )
        for rule in allow:
            for d in deny:
                if d.condition is None and pattern_covers(d.pattern, rule.pattern):
                    found.append(
                        Finding(
                            "warning",
                            rule.source,
                            f'allow "{rule.raw_pattern}" can never apply: '
                            f'deny "{d.raw_pattern}" ({d.source}) always wins',
                        )
                    )
                    break
        if doc.audit_retention_days is not None and doc.audit_retention_days < RECOMMENDED_RETENTION_DAYS:
            found.append(
                Finding(
                    "warning",
                    where,
                    f"audit retention {doc.audit_retention_days} days is below the "
                    f"{RECOMMENDED_RETENTION_DAYS} days (7 years) SOC2/HIPAA programmes expect",
                )
            )
        seen: dict[tuple[Outcome, str, str | None], str] = {}
        for rule in doc.rules:
            key = (rule.effect, rule.pattern, rule.condition.source if rule.condition else None)
            if key in seen:
                found.append(
                    Finding(
                        "warning",
                        rule.source,
                        f'duplicate {rule.effect.value} rule "{rule.raw_pattern}" (first at {seen[key]})',
                    )
                )
            else:
                seen[key] = rule.source
    return found


def _name_findings(doc: PolicyDocument) -> list[Finding]:
    """Invisible characters and mixed scripts in agent ids and patterns (see docs/security.md, Names)."""
    found: list[Finding] = []
    bad = forbidden_character(doc.agent)
    if bad is not None:
        found.append(
            Finding(
                "error",
                f"{doc.file}:{doc.line}",
                f"agent id {doc.agent!r} contains {bad}: no agent can have such an id",
            )
        )
    elif is_mixed_script(doc.agent):
        found.append(
            Finding(
                "warning",
                f"{doc.file}:{doc.line}",
                f"agent id {doc.agent!r} mixes scripts "
                f"({', '.join(sorted(scripts(doc.agent)))}): a look-alike of another id?",
            )
        )
    for rule in doc.rules:
        text = rule.raw_pattern
        bad = forbidden_character(text)
        if bad is not None:
            found.append(
                Finding(
                    "error",
                    rule.source,
                    f"{rule.effect.value} pattern {text!r} contains {bad}: every "
                    "action name with such a character is denied, so this rule never applies",
                )
            )
        elif is_mixed_script(rule.pattern.replace("*", " ")):
            found.append(
                Finding(
                    "warning",
                    rule.source,
                    f"{rule.effect.value} pattern {text!r} mixes scripts "
                    f"({', '.join(sorted(scripts(rule.pattern)))}): a look-alike of a Latin name?",
                )
            )
    return found


def pattern_covers(general: str, specific: str) -> bool:
    """Whether every name matching ``specific`` also matches ``general`` (sound, not complete)."""
    if "*" not in general:
        return general == specific
    if general.strip("*") == "":
        return True
    if general.count("*") == 1 and general.endswith("*"):
        return specific.startswith(general[:-1])
    if general.count("*") == 1 and general.startswith("*"):
        return specific.endswith(general[1:])
    return False


def lint_path(path: Path) -> list[Finding]:
    """Errors (one per broken file) and warnings for every policy file under ``path``."""
    findings: list[Finding] = []
    try:
        files = policy_files(path)
    except PolicyError as exc:
        return [Finding("error", str(path), exc.detail)]
    if not files:
        return [Finding("error", str(path), "no policy files (*.yaml, *.yml) found")]
    from claw_governance.policy.collect import parse_file_all

    docs: list[PolicyDocument] = []
    for file in files:
        parsed, errors = parse_file_all(file, str(file))  # every error of the file, not only the first
        docs.extend(parsed)
        for error in sorted(errors, key=lambda e: e.line or 0):
            where = f"{error.file}:{error.line}" if error.line else str(error.file or file)
            findings.append(Finding("error", where, error.detail))
    if not findings:
        try:
            load_policy_set(path)  # cross-file checks (e.g. trust set twice for one agent)
        except PolicyError as exc:
            findings.append(Finding("error", f"{exc.file}:{exc.line}" if exc.line else str(exc.file), exc.detail))
    return findings + lint_documents(docs)


def running_findings(path: Path, audit_path: Path) -> list[Finding]:
    """What the running governor's audit trail says about the policy in force, compared with ``path`` now.

    The policy hash of the newest entry that has one is the policy in force; ``policy_reload`` entries
    tell failed reloads and files with deny rules that a watcher reload dropped (since the last explicit
    reload, which accepts such removals). Errors for each problem; nothing when all agree.
    """
    from claw_governance.audit.reader import TrailReader

    where = str(audit_path)
    if not audit_path.is_dir():
        return [Finding("error", where, "no audit trail here: cannot compare with the running policy")]
    running: str | None = None
    last_reload: dict[str, Any] | None = None
    lost: set[str] = set()
    try:
        for entry in TrailReader(audit_path).entries():
            if entry.get("policy_hash"):
                running = str(entry["policy_hash"])
            if entry.get("type") != "policy_reload":
                continue
            details = entry.get("details") or {}
            last_reload = details
            if details.get("ok"):
                if details.get("explicit"):
                    lost = set()
                lost |= {str(f) for f in details.get("removed_deny_files") or ()}
                lost -= {str(f) for f in details.get("files") or ()}
    except (OSError, ValueError) as exc:
        return [Finding("error", where, f"cannot read the audit trail: {exc}")]
    found: list[Finding] = []
    if running is None:
        return [Finding("error", where, "the audit trail records no policy in force yet")]
    try:
        on_disk = load_policy_set(path).hash
    except PolicyError:
        on_disk = None  # the file errors are reported by lint itself
    if last_reload is not None and not last_reload.get("ok"):
        found.append(
            Finding(
                "error",
                where,
                f"the last reload failed, policy {running[:12]} stays in force: {last_reload.get('error')}",
            )
        )
    if on_disk is not None and on_disk != running:
        found.append(
            Finding(
                "error",
                where,
                f"the running governor decides with policy {running[:12]}, these "
                f"files are policy {on_disk[:12]} (a reload is pending or failed)",
            )
        )
    for file in sorted(f for f in lost if not Path(f).exists()):
        found.append(
            Finding(
                "error",
                file,
                "held deny rules the running policy no longer has (the file was "
                "deleted; restore it, or reload explicitly to accept)",
            )
        )
    return found


# ---------------------------------------------------------------------------------------- policy test


@dataclass(frozen=True, slots=True)
class Case:
    """One expected decision from a CASES.yaml file."""

    name: str
    agent: str
    action: str
    args: dict[str, Any]
    expect: Outcome
    rule: str | None
    where: str


def load_cases(path: Path) -> list[Case]:
    """Read ``cases:`` (or a top-level list) of {name, agent, action, args, expect, rule}."""
    docs, _ = load_documents(path, str(path))
    if not docs:
        raise PolicyError("no test cases", file=str(path), line=1)
    value, line = docs[0]
    items = value.get("cases") if isinstance(value, LocDict) else value
    if not isinstance(items, LocList):
        raise PolicyError("expected a list of cases (or a mapping with 'cases:')", file=str(path), line=line)
    defaults = {k: v for k, v in value.items() if k != "cases"} if isinstance(value, LocDict) else {}
    cases: list[Case] = []
    for index, item in enumerate(items):
        where = f"{path}:{items.item_lines[index]}"
        if not isinstance(item, LocDict):
            raise PolicyError("each case must be a mapping", file=str(path), line=items.item_lines[index])
        merged = {**defaults, **item}
        unknown = set(merged) - {"name", "agent", "action", "args", "context", "expect", "rule"}
        if unknown:
            raise PolicyError(
                f"unknown key(s) in case: {', '.join(sorted(unknown))}", file=str(path), line=items.item_lines[index]
            )
        for key in ("agent", "action", "expect"):
            if not isinstance(merged.get(key), str):
                raise PolicyError(f"case needs '{key}' (a string)", file=str(path), line=items.item_lines[index])
        try:
            expect = Outcome(str(merged["expect"]).strip().lower())
        except ValueError:
            raise PolicyError(
                f"expect must be allow, deny or escalate, not {merged['expect']!r}",
                file=str(path),
                line=items.item_lines[index],
            ) from None
        args = merged.get("args", merged.get("context")) or {}
        if not isinstance(args, dict):
            raise PolicyError("args must be a mapping", file=str(path), line=items.item_lines[index])
        cases.append(
            Case(
                str(merged.get("name") or f"case {index + 1}"),
                merged["agent"],
                merged["action"],
                dict(args),
                expect,
                merged.get("rule"),
                where,
            )
        )
    return cases


# ---------------------------------------------------------------------------------------------- CLI


@click.command()
@click.argument("directory", type=click.Path(path_type=Path), default="policies")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init(directory: Path, force: bool) -> None:
    """Scaffold a commented policies/ folder (and a test-cases file) to start from."""
    templates = resources.files("claw_governance") / "templates"
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("customer-service-agent.yaml", "all-agents.yaml", "policies_test.yaml"):
        target = directory / name
        if target.exists() and not force:
            echo(f"kept {target} (exists; --force overwrites)")
            continue
        target.write_text((templates / name).read_text(encoding="utf-8"), encoding="utf-8")
        written.append(target)
        echo(f"wrote {target}")
    echo(
        f"next: claw-gov policy lint {directory} && claw-gov policy test {directory} {directory / 'policies_test.yaml'}"
    )


@click.group()
def policy() -> None:
    """Check and test policy files."""


@policy.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option(
    "--against-running", is_flag=True, help="Compare with the policy in force, as the audit trail (--audit) records it."
)
@click.option(
    "--audit",
    "audit_path",
    type=click.Path(path_type=Path),
    envvar="AUDIT_PATH",
    default="logs/audit",
    show_default=True,
    help="Audit trail folder of the running governor (with --against-running).",
)
@click.option("--json", "as_json", is_flag=True, help="Print {errors, warnings, findings: [...]} as JSON.")
def lint(path: Path, strict: bool, against_running: bool, audit_path: Path, as_json: bool) -> None:
    """Report every error (file:line) and production red flags. Exit 1 on errors (or warnings with --strict).

    With --against-running, also compare the files with the policy the running governor last decided with,
    as its audit trail records it (--audit / AUDIT_PATH): a failed or pending reload, or deny rules lost with a
    deleted file, are errors."""
    findings = lint_path(path)
    if against_running:
        findings += running_findings(path, audit_path)
    errors = sum(f.level == "error" for f in findings)
    warnings = sum(f.level == "warning" for f in findings)
    if as_json:
        echo_json({"errors": errors, "warnings": warnings, "findings": [f.as_dict() for f in findings]})
    else:
        for finding in findings:
            echo(str(finding), err=finding.level == "error")
        echo(f"{errors} error(s), {warnings} warning(s)")
    sys.exit(1 if errors or (strict and warnings) else 0)


@policy.command("test")
@click.argument("path", type=click.Path(path_type=Path))
@click.argument("cases_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("-v", "--verbose", is_flag=True, help="Show passing cases too.")
@click.option("--json", "as_json", is_flag=True, help="Print {passed, failed, total, cases: [...]} as JSON.")
def test_command(path: Path, cases_file: Path, verbose: bool, as_json: bool) -> None:
    """Check expected decisions (table-driven, like `opa test`). Exit 1 on any mismatch."""
    policy_set = load_policy_set(path)
    cases = load_cases(cases_file)
    failures = 0
    results: list[dict[str, Any]] = []
    for case in cases:
        decision = policy_set.decide(ToolCall(case.agent, case.action, case.args, "test"))
        rule_ok = case.rule is None or (decision.rule is not None and decision.rule.pattern == case.rule)
        ok = decision.outcome is case.expect and rule_ok
        results.append(
            {
                "name": case.name,
                "where": case.where,
                "ok": ok,
                "agent": case.agent,
                "action": case.action,
                "expected": case.expect.value,
                "expected_rule": case.rule,
                "actual": decision.outcome.value,
                "rule": decision.rule.source if decision.rule else None,
                "reason": decision.reason,
            }
        )
        if as_json:
            failures += not ok
            continue
        if ok:
            if verbose:
                echo(f"PASS {case.name} ({case.where})")
            continue
        failures += 1
        echo(f"FAIL {case.name} ({case.where})")
        echo(f"  call:     agent={case.agent} action={case.action} args={case.args}")
        echo(f"  - expected: {case.expect.value}" + (f' by rule "{case.rule}"' if case.rule else ""))
        actual_rule = f' by rule "{decision.rule.pattern}" ({decision.rule.source})' if decision.rule else ""
        echo(f"  + actual:   {decision.outcome.value}{actual_rule}")
        echo(f"    reason:   {decision.reason}")
    if as_json:
        echo_json(
            {
                "passed": len(cases) - failures,
                "failed": failures,
                "total": len(cases),
                "policy_hash": policy_set.hash,
                "cases": results,
            }
        )
        sys.exit(1 if failures else 0)
    echo(f"policy test: {len(cases) - failures} of {len(cases)} cases as expected (policy {policy_set.hash[:12]})")
    sys.exit(1 if failures else 0)


@policy.command("migrate")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when a file would change (for CI).")
def migrate_command(path: Path, check: bool) -> None:
    """Rewrite seed-toolkit spellings (trust.minimum_score, audit.sensitive_fields, ...) into the canonical
    form, keeping comments; print a diff. Exit 2 (nothing written) if any file cannot be migrated."""
    from claw_governance.policy.migrate import migrate_file, write_migration

    migrations = [migrate_file(file) for file in policy_files(path)]  # all checked before any is written
    changed = [m for m in migrations if m.changed]
    for migration in changed:
        click.echo(migration.diff(), nl=False)
        if not check:
            write_migration(migration)
    verb = "would change" if check else "rewritten"
    click.echo(f"{len(changed)} of {len(migrations)} file(s) {verb}", err=bool(check and changed))
    sys.exit(1 if check and changed else 0)


@policy.command("replay")
@click.argument("candidate", type=click.Path(path_type=Path))
@click.option("--from", "start", required=True, help="First day (YYYY-MM-DD) or ISO timestamp, included.")
@click.option("--to", "end", required=True, help="Last day (YYYY-MM-DD), included; or an ISO timestamp, excluded.")
@audit_option
@click.option("--agent", "agent_id", default=None, help="Only this agent's calls.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def replay_command(
    candidate: Path, start: str, end: str, audit_path: Path, agent_id: str | None, as_json: bool
) -> None:
    """Decide the recorded calls again with the CANDIDATE policy; report every decision that would flip,
    grouped by rule. Exit 1 when any allow would become a deny or the reverse (a CI gate)."""
    from claw_governance.audit.reader import TrailReader
    from claw_governance.policy.replay import replay
    from claw_governance.timeparse import day_range

    candidate_set = load_policy_set(candidate)
    lo, hi = day_range(start, end)
    report = replay(TrailReader(audit_path).entries(), candidate_set, since=lo, until=hi, agent_id=agent_id)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        groups = report.groups()
        if groups:
            rows = [["rule (candidate)", "change", "calls", "first seen"]] + [
                [g["rule"], f"{g['before']} -> {g['after']}", str(g["calls"]), f"{g['example']} (seq {g['first_seq']})"]
                for g in groups
            ]
            widths = [max(len(r[i]) for r in rows) for i in range(4)]
            for row in rows:
                click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(report.skipped.items()))
        click.echo(
            f"replayed {report.replayed} decision(s) against {candidate} (policy {candidate_set.hash[:12]}): "
            f"{len(report.flips)} would flip, {report.allow_deny_flips} between allow and deny"
            + (f"; skipped (not decided by the policy): {skipped}" if skipped else "")
        )
    sys.exit(1 if report.allow_deny_flips else 0)


@hookimpl
def claw_register_commands(cli: click.Group) -> None:
    """Add ``init`` and the ``policy`` group."""
    cli.add_command(init)
    cli.add_command(policy)
