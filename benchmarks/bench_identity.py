"""Cost of the identity / trust hot path and of signed calls, on the real SQLite state store.

    python benchmarks/bench_identity.py [--n 20000]

Prints p50 / p99 / mean in microseconds per operation:
- hot path (require_signature off): IdentityRegistry.verify + TrustLedger.score + TrustLedger.adjust(+1),
  the three calls the Governor makes per call for identity and trust; and each of them alone;
- signed call: sign_call (Ed25519 sign) + verify (Ed25519 verify + replay-nonce insert in SQLite);
- for context, a whole governed ``execute`` with and without signatures (includes policy and audit).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # benchmarks/ is not a package
    sys.path.insert(0, str(HERE))
from timing import measure  # noqa: E402

from claw_governance import Governor  # noqa: E402
from claw_governance.model import ToolCall  # noqa: E402

POLICY = """\
agent: bench
permissions:
  allow: ["read:*"]
trust: {max_score: 1000000}   # far above what the run adds up to, so the final score proves no update was lost
"""
WARMUP = 500  # untimed calls before each measure; the trust check at the end counts them too


def report(name: str, result: dict[str, float]) -> None:
    p50, p99, mean = result["p50_us"], result["p99_us"], result["mean_us"]
    print(f"{name:<58} p50 {p50:8.2f} us   p99 {p99:8.2f} us   mean {mean:8.2f} us")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    n = parser.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "policies").mkdir()
        (root / "policies" / "bench.yaml").write_text(textwrap.dedent(POLICY))
        gov = Governor(root / "policies", root / "audit", root / "identities", load_entry_points=False)
        gov.agent("bench")
        policy = gov.policy
        settings = policy.trust_settings("bench")
        call = ToolCall("bench", "read:x", {"id": 1})
        registry, ledger = gov.identities, gov.trust

        def hot() -> None:
            registry.verify(call, policy)
            ledger.score("bench")
            ledger.adjust("bench", 1, "action succeeded", settings)

        print(f"claw-governance identity/trust benchmark, n={n}, state store: SQLite (WAL) in {root}")
        report("hot path: verify + score + adjust(+1) [signatures off]", measure(hot, n, WARMUP))
        report("  IdentityRegistry.verify (no signature)", measure(lambda: registry.verify(call, policy), n, WARMUP))
        report("  TrustLedger.score", measure(lambda: ledger.score("bench"), n, WARMUP))
        report("  TrustLedger.adjust(+1)", measure(lambda: ledger.adjust("bench", 1, "ok", settings), n, WARMUP))
        report(
            "  TrustLedger.flush (one agent, batched deltas -> SQLite)",
            measure(lambda: (ledger.adjust("bench", 1, "ok", settings), ledger.flush()), n // 10, 50),
        )
        report(
            "governed execute, signatures off (policy + audit included)",
            measure(lambda: gov.execute("bench", "read:x", {"id": 1}, lambda c: 1), n // 4, WARMUP),
        )
        gov.close()

        signed = Governor(
            root / "policies",
            root / "audit-signed",
            root / "identities",
            load_entry_points=False,
            require_signature=True,
        )
        signed.agent("bench")
        sreg = signed.identities
        report("sign_call (Ed25519 sign)", measure(lambda: sreg.sign_call(call), n // 4, WARMUP))
        report(
            "sign_call + verify (Ed25519 verify + nonce insert in SQLite)",
            measure(lambda: sreg.verify(sreg.sign_call(call), policy), n // 4, WARMUP),
        )
        report(
            "governed execute, signatures on",
            measure(lambda: signed.execute("bench", "read:x", {"id": 1}, lambda c: 1), n // 4, WARMUP),
        )
        # every +1 above reached the store exactly once: 100 + the number of successful calls
        expected = 100 + 2 * (n + WARMUP) + (n // 10 + 50) + 2 * (n // 4 + WARMUP)
        print(f"trust score after the runs: {signed.trust_score('bench')} (expected {expected}: no update lost)")
        signed.close()


if __name__ == "__main__":
    main()
