"""Agent identities (Ed25519 keys, signatures, revocation) and trust scores, on the shared state store."""

from claw_governance.identity.registry import IdentityRegistry, signing_payload
from claw_governance.identity.trust import TrustLedger

__all__ = ["IdentityRegistry", "TrustLedger", "signing_payload"]
