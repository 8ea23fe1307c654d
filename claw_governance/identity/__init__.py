"""Agent identities and trust scores. (Placeholder: in-memory registry and ledger.)"""

from claw_governance.identity.registry import IdentityRegistry
from claw_governance.identity.trust import TrustLedger

__all__ = ["IdentityRegistry", "TrustLedger"]
