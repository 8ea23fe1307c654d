"""The reviewer console end to end: a real `claw-gov console` process, a real agent process waiting with
``wait_for_approval``, and a real headless Chromium (Debian's, driven by Playwright).

Set CLAW_CONSOLE_SCREENSHOTS=docs/img to refresh the screenshots in the documentation.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import playwright.sync_api as playwright  # installed by the test command (dev extra); never skipped
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():  # the Makefile's install step installs it (apt-get install chromium)
    pytest.fail("Debian's chromium is required for the console tests: run `make install`", pytrace=False)

POLICY = """\
agent: billing-agent
permissions:
  allow: ["read:*"]
  deny:
    - action: refund
      condition: amount > 5000
  escalate:
    - action: refund
      condition: amount > 500
      reason: Refunds over $500 need finance approval
      approvers: [finance]
      max_grant: 30m
sensitive_fields: [card_number]
"""
AGENT = textwrap.dedent("""\
    import json, sys
    from pathlib import Path
    from claw_governance import Governor

    root = Path(sys.argv[1])
    amount = float(sys.argv[2])

    def refund(ctx):
        with open(root / "runs.txt", "a") as f:
            f.write(f"refund {ctx['amount']}\\n")
        return "refunded"

    with Governor(root / "policies", root / "audit", root / "identities", load_entry_points=False) as gov:
        agent = gov.agent("billing-agent")
        args = {"orderId": "A-7", "amount": amount, "card_number": "4111 1111 1111 1111"}
        r = agent.execute("refund", args, refund, wait_for_approval=90)
        again = agent.execute("refund", args, refund)
        print(json.dumps({"success": r.success, "reason": r.decision.reason, "escalation_id": r.escalation_id,
                          "again": again.decision.outcome.value}))
""")
PASSWORD = "correct horse battery staple"
CLI = "from claw_governance.cli import main; main()"


def claw(root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            CLI,
            *args,
            "--policies",
            str(root / "policies"),
            "--audit",
            str(root / "audit"),
            "--identities",
            str(root / "identities"),
        ],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "billing.yaml").write_text(POLICY)
    added = claw(
        tmp_path, "reviewer", "add", "fred@example.com", "--group", "finance", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert added.returncode == 0, added.stderr
    return tmp_path


@contextmanager
def console_process(root: Path) -> Iterator[str]:
    """A real `claw-gov console` on a free port over ``root``'s folders; yields its URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLI,
            "console",
            "--port",
            "0",
            "--policies",
            str(root / "policies"),
            "--audit",
            str(root / "audit"),
            "--identities",
            str(root / "identities"),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                raise AssertionError(f"the console exited: {proc.wait(5)}")
            found = re.search(r"console on (http://\S+)", line)
            url = found.group(1) if found else None
        assert url, "the console never said where it listens"
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def console(root: Path) -> Iterator[str]:
    with console_process(root) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"])
        try:
            yield b
        finally:
            b.close()


def start_agent(root: Path, amount: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", AGENT, str(root), str(amount)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def log_in(page: object, url: str) -> None:
    page.goto(url + "/")  # type: ignore[attr-defined]
    page.fill("#name", "fred@example.com")  # type: ignore[attr-defined]
    page.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("h1:has-text('Pending escalations')")  # type: ignore[attr-defined]


def screenshot(page: object, tmp: Path, name: str) -> None:
    path = tmp / name
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    target = os.environ.get("CLAW_CONSOLE_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)


def test_reviewer_approves_in_the_browser_while_the_agent_process_waits(
    root: Path, console: str, browser: object
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    log_in(page, console)
    assert page.locator("tr.empty").count() == 1
    agent = start_agent(root, 900)
    try:
        # the inbox updates by itself: no reload
        row = page.wait_for_selector("#inbox tbody tr[data-id]", timeout=30_000)
        assert row is not None
        text = page.inner_text("#inbox")
        assert "billing-agent" in text and "Refunds over $500" in text and "4111 1111 1111 1111" not in text
        screenshot(page, root, "console-inbox.png")
        page.click("#inbox tbody tr[data-id] a")
        page.wait_for_selector("#approve-form")
        assert not (root / "runs.txt").exists()  # nothing ran while waiting
        page.fill("#approve-notes", "Order A-7 checked with the customer")
        page.click("#approve-form button[type=submit]")
        page.wait_for_selector("#status:has-text('approved')")
        assert "Order A-7 checked with the customer" in page.inner_text("#notes")
        out, err = agent.communicate(timeout=90)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert agent.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["success"] and "Approved by a human" in result["reason"]
    assert result["again"] == "escalate"  # the grant was used once; a second run needs a new approval
    assert (root / "runs.txt").read_text().splitlines() == ["refund 900.0"]  # exactly once
    page.goto(console + "/report")
    page.wait_for_selector("#verification")
    assert "Audit trail verified" in page.inner_text("#verification")
    assert "Order A-7 checked with the customer" in page.content()
    screenshot(page, root, "console-report.png")


def test_an_edit_the_policy_denies_is_refused_in_the_browser(root: Path, console: str, browser: object) -> None:
    agent = start_agent(root, 800)
    try:
        page = browser.new_page()  # type: ignore[attr-defined]
        log_in(page, console)
        page.wait_for_selector("#inbox tbody tr[data-id]", timeout=30_000)
        page.click("#inbox tbody tr[data-id] a")
        page.wait_for_selector("#edit-form")
        page.fill("#edit-args", json.dumps({"orderId": "A-7", "amount": 9000, "card_number": "4111 1111 1111 1111"}))
        # the page shows the diff of the edit before anything is sent
        assert "/amount" in page.inner_text("#edit-preview") and "9000" in page.inner_text("#edit-preview")
        page.fill("#edit-notes", "more than asked")
        page.click("#edit-form button[type=submit]")
        page.wait_for_selector("#error")
        assert "denied by policy" in page.inner_text("#error")
        assert page.inner_text("#status") == "pending"
        # a valid edit then goes through, and the agent runs the EDITED call once
        page.fill("#edit-args", json.dumps({"orderId": "A-7", "amount": 600, "card_number": "4111 1111 1111 1111"}))
        page.fill("#edit-notes", "partial refund agreed")
        page.click("#edit-form button[type=submit]")
        page.wait_for_selector("#status:has-text('approved')")
        assert "amount" in page.inner_text("#diff")
        out, err = agent.communicate(timeout=90)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert agent.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["success"]
    assert (root / "runs.txt").read_text().splitlines() == ["refund 600"]


class _Attacker(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:  # an auto-submitting form on another site
        body = (
            f"<form id=f method=post action='{self.target}'><input name=kind value=approve>"
            "<input name=notes value=pwned></form><script>document.getElementById('f').submit()</script>"
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


def test_csrf_attempts_are_refused(root: Path, console: str, browser: object) -> None:
    from claw_governance.state.sqlite import SQLiteStateStore

    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from claw_governance import Governor; import sys; "
            "g = Governor(sys.argv[1] + '/policies', sys.argv[1] + '/audit', sys.argv[1] + "
            "'/identities', load_entry_points=False); "
            "print(g.agent('billing-agent').check('refund', {'amount': 700}).escalation_id); g.close()",
            str(root),
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as opener:
        escalation_id = opener.communicate(timeout=60)[0].strip()
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    log_in(page, console)
    target = f"{console}/escalations/{escalation_id}/resolve"
    # 1. same origin, logged in, but without the CSRF token: refused
    status = page.evaluate(
        """async (url) => {
        const r = await fetch(url, {method: 'POST', credentials: 'same-origin',
            body: new URLSearchParams({kind: 'approve', notes: 'no token'})});
        return r.status; }""",
        target,
    )
    assert status == 403
    status = page.evaluate(
        """async (url) => {
        const r = await fetch(url, {method: 'POST', credentials: 'same-origin',
            headers: {'Content-Type': 'application/json'}, body: JSON.stringify({notes: 'no token'})});
        return r.status; }""",
        console + f"/api/escalations/{escalation_id}/approve",
    )
    assert status == 403
    # 2. a form on another site that posts to the console in the reviewer's browser
    _Attacker.target = target
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        evil = context.new_page()  # same browser session: the reviewer's cookie is there
        evil.goto(f"http://localhost:{server.server_address[1]}/")  # another site than 127.0.0.1
        evil.wait_for_load_state("networkidle")
    finally:
        server.shutdown()
    store = SQLiteStateStore(root / "identities" / ".state" / "state.db")
    try:
        esc = store.get_escalation(escalation_id)
    finally:
        store.close()
    assert esc is not None and esc.status.value == "pending" and esc.resolver is None


SHADOWED = POLICY.replace(
    "  deny:\n",
    "  deny:\n    - action: read:*\n      condition: 'customer == \"vip\"'\n      mode: shadow\n",
)
CANDIDATE = """\
agent: billing-agent
permissions:
  allow: ["read:*"]
  deny:
    - action: read:*
      condition: 'customer == "vip"'
"""


def test_an_admin_replays_a_candidate_and_sees_shadow_decisions(root: Path, browser: object) -> None:
    """The replay page: an admin pastes a candidate policy and reads the flips grouped by rule; the audit page
    lists what the shadow rule in force would have denied."""
    from datetime import UTC, datetime

    (root / "policies" / "billing.yaml").write_text(SHADOWED)
    added = claw(
        root, "reviewer", "add", "ada@example.com", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert added.returncode == 0, added.stderr
    recorded = subprocess.run(
        [
            sys.executable,
            "-c",
            "from claw_governance import Governor; import sys; "
            "g = Governor(sys.argv[1] + '/policies', sys.argv[1] + '/audit', sys.argv[1] + "
            "'/identities', load_entry_points=False); a = g.agent('billing-agent'); "
            "[a.check('read:orders', {'customer': c}) for c in ('vip', 'vip', 'plain')]; g.close()",
            str(root),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert recorded.returncode == 0, recorded.stderr
    with console_process(root) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
        page.goto(url + "/")
        page.fill("#name", "ada@example.com")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("h1:has-text('Pending escalations')")
        page.goto(url + "/policy")
        page.click("#replay-link")
        page.wait_for_selector("#replay-form")
        today = datetime.now(UTC).date().isoformat()
        page.fill("#replay-policy", CANDIDATE)
        page.fill("#replay-from", today)
        page.fill("#replay-to", today)
        page.click("#replay-form button[type=submit]")
        page.wait_for_selector("#replay-groups")
        rows = page.locator("#replay-groups tbody tr")
        assert rows.count() == 1
        cells = [rows.nth(0).locator("td").nth(i).inner_text() for i in range(3)]
        assert cells[0].startswith('deny "read:*" when customer == "vip" (candidate.yaml:5)')
        assert cells[1].replace("\u2192", "->") == "allow -> deny" and cells[2] == "2"
        assert page.inner_text("#replay-summary").startswith("Replayed 3 decision(s)")
        screenshot(page, root, "console-replay.png")
        # The shadow rule in force: its would-be denials, and only those.
        page.goto(url + "/audit?shadow=would_deny")
        body = page.inner_text("table")
        assert body.count("would_deny") == 2 and "read:orders" in body
        page.select_option("#f-shadow", "would_escalate")
        page.click("form.filters button[type=submit]")
        page.wait_for_selector("text=No entries match.")
