"""Shadow mode and replay: try a rule out on live traffic, then see what a policy change would flip.

Run: .venv/bin/python examples/shadow_and_replay.py

1. The policy in force (examples/shadow/policies/) carries a `mode: shadow` deny rule. Calls are decided
   without it; each call it would have decided differently is audited with `shadow.would = would_deny`.
2. `claw-gov policy replay examples/shadow/candidate.yaml --from D --to D` decides every recorded call
   again under the candidate and lists the decisions that would flip, grouped by rule; it exits 1 when an
   allow would become a deny (or the reverse), so it can gate the change in CI.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from claw_governance import Governor
from claw_governance.cli import build_cli

HERE = Path(__file__).parent / "shadow"


def main(workdir: Path) -> int:
    audit = workdir / "logs" / "audit"
    with Governor(HERE / "policies", audit, workdir / "identities", load_entry_points=False) as gov:
        agent = gov.agent("support-bot")
        calls = [
            ("read:customer", {"id": 7}),
            ("http:post", {"url": "https://internal.example.com/tickets"}),
            ("http:post", {"url": "https://paste.example.net/upload"}),
            ("refund", {"amount": 120}),
            ("refund", {"amount": 420}),
            ("refund", {"amount": 900}),
        ]
        for action, args in calls:
            decision = agent.check(action, args)
            print(f"{decision.outcome.value.upper():8} {action} {args}")
        print("\nshadow results in the audit trail:")
        for entry in gov.audit.query(type="policy_decision"):
            shadow = entry["decision"].get("shadow")
            if shadow:
                print(
                    f"  {entry['action']} {entry['context']}: enforced {shadow['enforced']}, {shadow['would']} "
                    f"({shadow['rule']['source'].rsplit('/', 1)[-1]})"
                )

    day = datetime.now(UTC).date().isoformat()
    args = ["policy", "replay", str(HERE / "candidate.yaml"), "--from", day, "--to", day, "--audit", str(audit)]
    print("\n$ claw-gov " + " ".join(args[:3]) + f" --from {day} --to {day}")
    try:
        build_cli().main(args, prog_name="claw-gov", standalone_mode=True)
    except SystemExit as done:  # the CI gate: 1 when an allow would become a deny or the reverse
        print(f"(exit {done.code})")
        return int(done.code or 0)
    return 0


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        code = main(Path(tmp))
    sys.exit(0 if code in (0, 1) else code)
