"""The HTML compliance report (issue 16): contents, escaping, self-containment, CLI and console."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from claw_governance import Governor
from claw_governance.audit.html_report import build_report, render_report, render_report_html
from claw_governance.cli import build_cli

POLICY = """\
agent: bot
permissions:
  allow: ["read:*"]
  deny: ["delete:*"]
  escalate:
    - action: refund
      approvers: [finance]
"""


def _activity(gov: Governor) -> None:
    agent = gov.agent("bot")
    agent.check("read:x")
    agent.check("delete:<script>alert(1)</script>")
    agent.check("delete:users")
    agent.execute("read:y", {}, lambda c: 1 / 0)  # a failure: trust changes
    gov.reviewers.add("fred", groups=["finance"])
    first = agent.check("refund", {"amount": 1}).escalation_id or ""
    gov.resolve_escalation(first, "approved", notes="checked <b>twice</b>", resolver="fred")
    agent.check("refund", {"amount": 2})  # stays pending
    gov.identities.revoke("bot", "test revocation", by="fred")


def test_report_has_every_section_escaped_and_self_contained(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(POLICY)
    _activity(gov)
    today = datetime.now(UTC).date().isoformat()
    report = build_report(gov.audit, today, today, store=gov.state, origin="logs/audit")
    assert "both days included" in report["period_words"] and "(1 day, UTC)" in report["period_words"]
    assert report["verification"]["valid"] and report["origin"]["fingerprint"].startswith("SHA256:")
    assert report["top_denied"][0][1] >= 1 and report["denied_total"] == 2
    assert [e["notes"] for e in report["resolved"]] == ["checked <b>twice</b>"]
    assert len(report["pending"]) == 1 and report["revocations"][0]["event"] == "revoked"
    html = render_report_html(report)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "checked &lt;b&gt;twice&lt;/b&gt;" in html
    for marker in (
        'id="chart-days"',
        'id="chart-denied"',
        'id="verification"',
        "Audit trail verified",
        "Pending escalations (1)",
        "Revocations and reinstatements (1)",
        "Policy versions in force",
        gov.policy.hash,
        "fred",
        "@media print",
    ):
        assert marker in html, marker
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing loaded from elsewhere
    assert render_report(gov, today, today).startswith("<!doctype html>")


def test_tampered_trail_shows_failed_verification(make_governor: Callable[..., Governor], tmp_path: Path) -> None:
    gov = make_governor(POLICY)
    _activity(gov)
    gov.close()
    segment = sorted((tmp_path / "logs" / "audit").glob("*.jsonl"))[0]
    text = segment.read_text()
    segment.write_text(text.replace('"read:x"', '"read:z"', 1))
    today = datetime.now(UTC).date().isoformat()
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        build_cli(),
        [
            "audit",
            "report",
            "--from",
            today,
            "--to",
            today,
            "--format",
            "html",
            "--audit",
            str(tmp_path / "logs" / "audit"),
            "--identities",
            str(tmp_path / "identities"),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "verification FAILED" in html and "Audit trail verified" not in html
