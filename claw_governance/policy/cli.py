"""``claw-gov init``, ``claw-gov policy lint`` and ``claw-gov policy test``."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import click

from claw_governance.errors import PolicyError
from claw_governance.hookspecs import hookimpl
from claw_governance.model import Outcome, ToolCall
from claw_governance.policy.schema import PolicyDocument
from claw_governance.policy.source import LocDict, LocList, load_documents
from claw_governance.policy.store import load_policy_set, policy_files

RECOMMENDED_RETENTION_DAYS = 2555


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint result: ``level`` is "error" or "warning"."""

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


def lint_documents(docs: list[PolicyDocument]) -> list[Finding]:
    """The production red flags of the seed's deployment checklist, per document."""
    found: list[Finding] = []
    for doc in docs:
        where = f"{doc.file}:{doc.line}"
        deny = [r for r in doc.rules if r.effect is Outcome.DENY]
        allow = [r for r in doc.rules if r.effect is Outcome.ALLOW]
        escalate = [r for r in doc.rules if r.effect is Outcome.ESCALATE]
        for rule in allow:
            if rule.pattern.strip("*") == "" and rule.condition is None:
                found.append(Finding("warning", rule.source, f'allow "{rule.raw_pattern}" permits every action'
                                     + ("" if deny else " and no deny rule restricts it")))
        if not deny and doc.agent != "*":
            found.append(Finding("warning", where, f'agent "{doc.agent}" has no deny rules (e.g. "delete:*")'))
        if not escalate and doc.agent != "*":
            found.append(Finding("warning", where, f'agent "{doc.agent}" has no escalate rules: no human-in-the-'
                                 "loop path for sensitive operations"))
        for rule in escalate:
            if rule.timeout_seconds is None:
                found.append(Finding("warning", rule.source, f'escalate "{rule.raw_pattern}" has no timeout '
                                     "(the 24 h default applies); set one, e.g. timeout: 4h"))
        for rule in allow:
            for d in deny:
                if d.condition is None and pattern_covers(d.pattern, rule.pattern):
                    found.append(Finding("warning", rule.source, f'allow "{rule.raw_pattern}" can never apply: '
                                         f'deny "{d.raw_pattern}" ({d.source}) always wins'))
                    break
        if doc.audit_retention_days is not None and doc.audit_retention_days < RECOMMENDED_RETENTION_DAYS:
            found.append(Finding("warning", where, f"audit retention {doc.audit_retention_days} days is below the "
                                 f"{RECOMMENDED_RETENTION_DAYS} days (7 years) SOC2/HIPAA programmes expect"))
        seen: dict[tuple[Outcome, str, str | None], str] = {}
        for rule in doc.rules:
            key = (rule.effect, rule.pattern, rule.condition.source if rule.condition else None)
            if key in seen:
                found.append(Finding("warning", rule.source, f'duplicate {rule.effect.value} rule '
                                     f'"{rule.raw_pattern}" (first at {seen[key]})'))
            else:
                seen[key] = rule.source
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
            raise PolicyError(f"unknown key(s) in case: {', '.join(sorted(unknown))}", file=str(path),
                              line=items.item_lines[index])
        for key in ("agent", "action", "expect"):
            if not isinstance(merged.get(key), str):
                raise PolicyError(f"case needs '{key}' (a string)", file=str(path), line=items.item_lines[index])
        try:
            expect = Outcome(str(merged["expect"]).strip().lower())
        except ValueError:
            raise PolicyError(f"expect must be allow, deny or escalate, not {merged['expect']!r}",
                              file=str(path), line=items.item_lines[index]) from None
        args = merged.get("args", merged.get("context")) or {}
        if not isinstance(args, dict):
            raise PolicyError("args must be a mapping", file=str(path), line=items.item_lines[index])
        cases.append(Case(str(merged.get("name") or f"case {index + 1}"), merged["agent"], merged["action"],
                          dict(args), expect, merged.get("rule"), where))
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
            click.echo(f"kept {target} (exists; --force overwrites)")
            continue
        target.write_text((templates / name).read_text(encoding="utf-8"), encoding="utf-8")
        written.append(target)
        click.echo(f"wrote {target}")
    click.echo(f"next: claw-gov policy lint {directory} && claw-gov policy test {directory} "
               f"{directory / 'policies_test.yaml'}")


@click.group()
def policy() -> None:
    """Check and test policy files."""


@policy.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option("--json", "as_json", is_flag=True, help="Print {errors, warnings, findings: [...]} as JSON.")
def lint(path: Path, strict: bool, as_json: bool) -> None:
    """Report every error (file:line) and production red flags. Exit 1 on errors (or warnings with --strict)."""
    findings = lint_path(path)
    errors = sum(f.level == "error" for f in findings)
    warnings = len(findings) - errors
    if as_json:
        click.echo(json.dumps({"errors": errors, "warnings": warnings,
                               "findings": [f.as_dict() for f in findings]}, indent=2, ensure_ascii=False))
    else:
        for finding in findings:
            click.echo(str(finding), err=finding.level == "error")
        click.echo(f"{errors} error(s), {warnings} warning(s)")
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
        results.append({"name": case.name, "where": case.where, "ok": ok, "agent": case.agent,
                        "action": case.action, "expected": case.expect.value, "expected_rule": case.rule,
                        "actual": decision.outcome.value,
                        "rule": decision.rule.source if decision.rule else None, "reason": decision.reason})
        if as_json:
            failures += not ok
            continue
        if ok:
            if verbose:
                click.echo(f"PASS {case.name} ({case.where})")
            continue
        failures += 1
        click.echo(f"FAIL {case.name} ({case.where})")
        click.echo(f"  call:     agent={case.agent} action={case.action} args={case.args}")
        click.echo(f"  - expected: {case.expect.value}" + (f' by rule "{case.rule}"' if case.rule else ""))
        actual_rule = f' by rule "{decision.rule.pattern}" ({decision.rule.source})' if decision.rule else ""
        click.echo(f"  + actual:   {decision.outcome.value}{actual_rule}")
        click.echo(f"    reason:   {decision.reason}")
    if as_json:
        click.echo(json.dumps({"passed": len(cases) - failures, "failed": failures, "total": len(cases),
                               "policy_hash": policy_set.hash, "cases": results}, indent=2, ensure_ascii=False,
                              default=str))
        sys.exit(1 if failures else 0)
    click.echo(f"policy test: {len(cases) - failures} of {len(cases)} cases as expected "
               f"(policy {policy_set.hash[:12]})")
    sys.exit(1 if failures else 0)


@hookimpl
def claw_register_commands(cli: click.Group) -> None:
    """Add ``init`` and the ``policy`` group."""
    cli.add_command(init)
    cli.add_command(policy)
