"""A plugin that joins a pipeline step: a change-window veto next to the YAML policy.

The policy allows ``deploy:*``; this plugin joins ``claw_decide`` and denies a deploy that carries no change
ticket. Its answer is combined with the policy's like another rule (deny > escalate > allow), so it can
narrow what the policy allows but never widen it. A second plugin joins ``claw_record_audit`` to count the
entries the trail writes (it could forward them to a SIEM).

Run: .venv/bin/python examples/plugin_change_window.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from claw_governance import Decision, Governor, Outcome, hookimpl

POLICY = """\
agent: release-agent
permissions:
  allow: ["deploy:*", "read:*"]
  deny: ["delete:*"]
"""


class ChangeWindow:
    """Denies ``deploy:*`` without a ``ticket`` argument; abstains (None) on everything else."""

    @hookimpl
    def claw_decide(self, call: Any, policy: Any) -> Decision | None:
        if call.action.startswith("deploy:") and not str(call.args.get("ticket", "")).startswith("CHG-"):
            return Decision(
                Outcome.DENY,
                "deploys need a change ticket (ticket: CHG-...)",
                call,
                policy_hash=policy.hash,
                stage="plugin",
            )
        return None


class EntryCounter:
    """Sees every audit event the governor writes."""

    def __init__(self) -> None:
        self.by_type: dict[str, int] = {}

    @hookimpl
    def claw_record_audit(self, event: Any) -> None:
        self.by_type[event.type] = self.by_type.get(event.type, 0) + 1


def main(workdir: Path) -> None:
    (workdir / "policies").mkdir()
    (workdir / "policies" / "release.yaml").write_text(POLICY)
    counter = EntryCounter()
    with Governor(
        workdir / "policies",
        workdir / "audit",
        workdir / "identities",
        plugins=[ChangeWindow(), counter],
        load_entry_points=False,
    ) as gov:
        agent = gov.agent("release-agent")
        for action, args in [
            ("deploy:web", {"version": "1.4.2"}),
            ("deploy:web", {"version": "1.4.2", "ticket": "CHG-1042"}),
            ("read:status", {}),
            ("delete:web", {"ticket": "CHG-1042"}),
        ]:
            d = agent.check(action, args)
            print(f"{d.outcome.value.upper():8} {action:12} {d.reason}")
        print("audit entries seen by the plugin:", dict(sorted(counter.by_type.items())))
        print("chain valid:", gov.audit.verify().valid)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="claw-plugin-") as tmp:
        main(Path(tmp))
