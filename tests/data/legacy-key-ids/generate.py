"""Write this fixture with the code on sys.path (it was run on commit b8535bc, before the one key-id rule):

    git worktree add /tmp/old b8535bc && PYTHONPATH=/tmp/old python generate.py OUT

A trail of two segments and a retention record (30 segments removed), checkpoints, and the governor's key.
"""

import sys
import time
from pathlib import Path

from claw_governance import Governor

root = Path(sys.argv[1])
(root / "policies").mkdir(parents=True)
(root / "policies" / "billing.yaml").write_text(
    "agent: billing-agent\npermissions:\n  allow: ['read:*']\n  deny: ['delete:*']\n"
)
gov = Governor(
    root / "policies",
    root / "audit",
    root / "identities",
    load_entry_points=False,
    audit_rotation_size_mb=0.004,
    audit_checkpoint_interval=20,
    audit_retention_days=1,
)
job = gov.start_job("legacy-job", agent_id="billing-agent", scope=["read:*"])
agent = gov.agent("billing-agent", job_token=job.token)
for i in range(60):
    agent.execute("read:invoice", {"n": i}, lambda ctx: "ok")
    agent.check("delete:invoice")
gov.audit.checkpoint()
removed = gov.audit.apply_retention(now=time.time() + 2 * 86400)
assert removed, "no segment removed"
for i in range(5):
    agent.execute("read:invoice", {"n": 100 + i}, lambda ctx: "ok")
gov.audit.checkpoint()
print(gov.audit.key.public.key_id, len(removed))
gov.close()
