"""Model-call receipts: what the governor records of each model call an adapter sees.

A receipt is a ``model_call`` audit entry, chained and redacted like every other entry. It never holds the
prompt or the completion, only their SHA-256 (over RFC 8785 JSON when the value is JSON-like, else over the
UTF-8 text), so a run's evidence proves *what* was asked and answered without storing it. The tool call ids
the model asked for are kept, so a proof bundle can show that every tool call under a job was requested by
a receipted model call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from claw_governance.audit.canonical import jcs_dumps
from claw_governance.policy import glob_match, normalize
from claw_governance.policy.schema import Contract


def content_hash(value: Any) -> str | None:
    """SHA-256 of a request or response: canonical JSON for JSON-like values, UTF-8 for text; None for None."""
    if value is None:
        return None
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
    else:
        try:
            data = jcs_dumps(value)
        except (TypeError, ValueError):
            data = repr(value).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def model_route(model: str, provider: str | None = None) -> str:
    """``provider/model`` normalised like action names (``OpenAI``, ``GPT-5`` -> ``openai/gpt-5``)."""
    route = normalize(str(model or ""))
    # The provider always leads when one is given: an id like OpenRouter's "openai/gpt-5" served by provider
    # "openrouter" is the route "openrouter/openai/gpt-5", so a model id cannot name another provider's route.
    # Only an id that already starts with its own provider ("openai/gpt-5" from "openai") is not doubled.
    prefix = normalize(str(provider or ""))
    if prefix and not route.startswith(prefix + "/"):
        route = f"{prefix}/{route}"
    return route


def _malformed(route: str) -> bool:
    """A route with an empty, "." or ".." segment ("openai/../x", "openai//x"), which no contract means."""
    return any(part in ("", ".", "..") for part in route.split("/"))


def route_violation(contract: Contract | None, route: str) -> str | None:
    """Why the contract forbids this model route, or None when it is allowed (or there is no contract)."""
    if contract is None:
        return None
    if _malformed(route):
        return f'model route "{route}" is malformed (an empty, "." or ".." segment): refused by the work contract'
    for pattern in contract.models_deny:
        if glob_match(pattern, route):
            return f'model route "{route}" is denied by the work contract (models.deny "{pattern}")'
    if contract.models_allow and not any(glob_match(p, route) for p in contract.models_allow):
        return (
            f'model route "{route}" is outside the work contract\'s models '
            f"(allowed: {', '.join(contract.models_allow)})"
        )
    return None


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One model call as an adapter reports it."""

    agent_id: str
    model: str
    provider: str | None = None
    request: Any = None
    response: Any = None
    usage: Mapping[str, int | float] | None = None
    duration_ms: float | None = None
    tool_call_ids: Sequence[str] = field(default_factory=tuple)
    framework: str = "python"
    run_id: str | None = None

    @property
    def route(self) -> str:
        """See :func:`model_route`."""
        return model_route(self.model, self.provider)
