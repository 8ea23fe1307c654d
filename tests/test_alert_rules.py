"""docs/monitoring/alerts.yaml: every checklist monitoring line has a rule, every rule reads metrics the governor
exports, and Prometheus's own promtool accepts the rules and passes their unit tests (alerts_test.yaml)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from claw_governance import Governor
from claw_governance.metrics import write_last_verify

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "docs" / "monitoring" / "alerts.yaml"
RULE_TESTS = ROOT / "docs" / "monitoring" / "alerts_test.yaml"

# The seed checklist's monitoring and alerting lines (002), each with the alert that covers it.
CHECKLIST = {
    "Trust score monitoring (alert if drops below 70)": "ClawTrustScoreLow",
    "Escalation queue monitoring (alert if >10 pending)": "ClawEscalationQueueLong",
    "Policy denial rate monitoring (alert if spike)": "ClawDenialRateSpike",
    "Audit chain verification (alert on tampering)": "ClawAuditChainInvalid",
    "Escalation SLA defined (e.g., 24h response time)": "ClawEscalationSlaBreached",
    "Disk space monitoring (alert at 80% full)": "ClawAuditDiskAlmostFull",
    "Chain verification scheduled (weekly recommended)": "ClawAuditVerifyOverdue",
}


def rules() -> list[dict[str, object]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_every_checklist_line_has_an_alert() -> None:
    names = {rule["alert"] for rule in rules()}
    missing = {line: alert for line, alert in CHECKLIST.items() if alert not in names}
    assert not missing
    for rule in rules():
        assert rule["labels"]["severity"] in ("warning", "critical")  # type: ignore[index]
        assert rule["annotations"]["summary"] and rule["annotations"]["runbook"]  # type: ignore[index]


def test_every_rule_reads_metrics_the_governor_exports(make_governor: Callable[..., Governor], tmp_path: Path) -> None:
    gov: Governor = make_governor(
        'agent: "*"\npermissions:\n  allow: ["read:*"]\n  escalate: [refund]\n',
        audit_sink="postgresql://postgres@127.0.0.1:1/none",
        audit_sink_interval=3600,
    )
    gov.agent("bot").check("read:x")
    gov.agent("bot").check("refund")
    gov._fault("plugin", "test")
    assert gov.config.resolved_state_path is not None
    write_last_verify(gov.config.resolved_state_path, True, 1, gov.audit.trail_id)
    exported = {s.name for family in text_string_to_metric_families(gov.metrics()) for s in family.samples}
    for rule in rules():
        used = set(re.findall(r"\bclaw_[a-z_]+", str(rule["expr"])))
        assert used, rule["alert"]
        assert used <= exported, f"{rule['alert']} reads {sorted(used - exported)}, which the governor does not export"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed: apt-get install -y prometheus (make install does)", pytrace=False)
    return found


def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


def test_the_rules_fire_as_their_unit_tests_say() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
