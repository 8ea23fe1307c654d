"""Several agents, each with its own policy, identity and trust score (the seed's multi-agent.js, in Python).

- Three agents with different permissions share one governor, one audit trail and one state store.
- Every call is signed with the agent's Ed25519 key (``require_signature=True``); keys are encrypted at
  rest because a passphrase is set. A forged call is denied and costs the agent trust.
- A misbehaving agent loses trust on every failure, is denied below ``min_score`` and revoked at 0, until a
  human reinstates it at ``recovery_score``.

Offline; writes into ./multi-agent-output (recreated on each run).
"""

from __future__ import annotations

import dataclasses
import shutil
import textwrap
from pathlib import Path

from claw_governance import Governor
from claw_governance.model import Signature

OUT = Path.cwd() / "multi-agent-output"
POLICIES = {
    "support.yaml": """\
        agent: support-agent
        permissions:
          allow: [read:customer_data, update:ticket_status]
          deny: ["delete:*", update:payment_info]
          escalate: [refund_requests]
        """,
    "analyst.yaml": """\
        agent: analyst-agent
        permissions:
          allow: ["read:*", run:report]
          deny: ["write:*", "delete:*"]
        sensitive_fields: [email]
        """,
    "ops.yaml": """\
        agent: ops-agent
        permissions:
          allow: [restart:service, "read:metrics"]
          escalate: ["deploy:*"]
        trust: {min_score: 60, recovery_score: 75, success: 1, failure: -25}
        """,
}


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "policies").mkdir(parents=True)
    for name, text in POLICIES.items():
        (OUT / "policies" / name).write_text(textwrap.dedent(text))
    with Governor(
        OUT / "policies",
        OUT / "audit",
        OUT / "identities",
        require_signature=True,
        identity_passphrase="example-only-passphrase",
        identity_scrypt_log2_n=15,
        load_entry_points=False,
    ) as gov:
        agents = {a: gov.agent(a) for a in ("support-agent", "analyst-agent", "ops-agent")}

        print("Who may do what (the same actions, three policies):")
        actions = [
            "read:customer_data",
            "delete:customer_records",
            "run:report",
            "restart:service",
            "deploy:production",
            "refund_requests",
        ]
        print(f"   {'':<25}" + "".join(f"{a.split('-')[0]:<10}" for a in agents))
        for action in actions:
            row = "".join(f"{agents[a].check(action, {}).outcome.value:<10}" for a in agents)
            print(f"   {action:<25}{row}")

        print("\nSigned calls (require_signature=True):")
        call = gov.make_call("analyst-agent", "run:report", {"quarter": "Q1"})
        sig = call.signature
        assert sig is not None
        print(f"   signed by key {sig.key_id[:12] if sig.key_id else '?'}: {gov.before_call(call).outcome.value}")
        print(f"   the same call replayed: {gov.before_call(call).reason}")
        forged = dataclasses.replace(
            gov.make_call("analyst-agent", "run:report", {"quarter": "Q1"}),
            args={"quarter": "Q1", "include": "salaries"},
        )
        print(f"   arguments changed after signing: {gov.before_call(forged).reason}")
        unsigned = dataclasses.replace(call, signature=None)
        print(f"   unsigned: {gov.before_call(unsigned).reason}")
        bad = dataclasses.replace(call, signature=Signature("AAAA", "n" * 32, sig.timestamp, sig.key_id))
        print(f"   garbage signature: {gov.before_call(bad).reason}")
        print(f"   analyst-agent trust after three bad signatures: {gov.trust_score('analyst-agent')}")

        print("\nTrust (ops-agent: +1 per success, -25 per failure, denied below 60, revoked at 0):")
        ops = agents["ops-agent"]
        for i in range(3):
            ops.execute("restart:service", {"service": "api", "try": i}, lambda ctx: "restarted")
        print(f"   after 3 successful restarts: {ops.trust_score}")

        def flaky(ctx: dict[str, object]) -> str:
            raise RuntimeError("service did not come back")

        for i in range(2):
            r = ops.execute("restart:service", {"service": "db", "try": i}, flaky)
            print(f"   failed restart -> {r.error}; trust {ops.trust_score}")
        r = ops.execute("restart:service", {"service": "db", "try": 9}, flaky)
        print(f"   next call: {r.decision.outcome.value} - {r.decision.reason}")
        gov.trust.set("ops-agent", 20, "demo: fast-forward to a nearly exhausted score")
        gov.trust.adjust("ops-agent", -25, "one more failure", gov.policy.trust_settings("ops-agent"))
        record = gov.identities.get("ops-agent")
        print(
            f"   at 0 the identity is revoked: {record.revoked if record else '?'} ({record.reason if record else ''})"
        )
        print(f"   {ops.check('read:metrics', {}).reason}")
        gov.identities.reinstate(
            "ops-agent",
            by="sre-lead@example.com",
            reason="root cause fixed",
            recovery_score=gov.policy.trust_settings("ops-agent").recovery_score,
        )
        print(
            f"   reinstated by a human at {ops.trust_score}: read:metrics -> "
            f"{ops.check('read:metrics', {}).outcome.value}"
        )

        print("\nIdentities (claw-gov identity list):")
        for rec in gov.identities.list_identities():
            print(
                f"   {rec.agent_id:<15} {rec.status:<8} trust {gov.trust_score(rec.agent_id):>4}  key {rec.key_id[:12]}"
            )
        key_file = gov.identities.key_path("ops-agent")
        assert key_file is not None
        print(
            f"   key files are 0600 and encrypted: {oct(key_file.stat().st_mode & 0o777)}, "
            f"{gov.identities.load_private_key('ops-agent').encrypted}"
        )
        events = [(e["agent_id"], e["details"]["event"]) for e in gov.audit.query(type="identity")]
        print(f"   identity changes in the audit trail: {events}")


if __name__ == "__main__":
    main()
