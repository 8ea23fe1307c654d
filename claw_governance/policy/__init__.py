"""The policy engine: YAML policies compiled into an index that decides a tool call in microseconds."""

from claw_governance.policy.conditions import Condition, ConditionSyntaxError
from claw_governance.policy.engine import AgentPolicy, PolicySet
from claw_governance.policy.patterns import glob_match, normalize
from claw_governance.policy.schema import PolicyDocument, RateLimit, Rule, TrustSettings
from claw_governance.policy.store import PolicyStore, ReloadResult, load_policy_set, parse_file

__all__ = [
    "AgentPolicy",
    "Condition",
    "ConditionSyntaxError",
    "PolicyDocument",
    "PolicySet",
    "PolicyStore",
    "RateLimit",
    "ReloadResult",
    "Rule",
    "TrustSettings",
    "glob_match",
    "load_policy_set",
    "normalize",
    "parse_file",
]
