"""Helpers for testing governance itself.

``NoopPlugin`` implements every pipeline hook of ``hookspecs.py`` and abstains from each (returns ``None``).
Registered next to the defaults, it changes no decision, but every step of the governor's compiled pipeline
(``claw_governance.pipeline``) is then the real pluggy hook call instead of a direct call of a built-in
plugin. CI runs the whole suite a second time with it (``CLAW_PLUGINS=claw_governance.testing:NoopPlugin``),
so both kinds of entry of the pipeline table are tested.
"""

from __future__ import annotations

from typing import Any

from claw_governance.hookspecs import hookimpl


class NoopPlugin:
    """Joins every pipeline hook and abstains: decisions, audit entries and trust stay exactly as without it."""

    @hookimpl
    def claw_verify_identity(self, call: Any, policy: Any) -> None:
        """Abstain."""

    @hookimpl
    def claw_trust_score(self, agent_id: str, policy: Any) -> None:
        """Abstain."""

    @hookimpl
    def claw_decide(self, call: Any, policy: Any) -> None:
        """Abstain."""

    @hookimpl
    def claw_consume_grant(self, call: Any, decision: Any) -> None:
        """Abstain."""

    @hookimpl
    def claw_open_escalation(self, call: Any, decision: Any, timeout_seconds: float) -> None:
        """Abstain."""

    @hookimpl
    def claw_notify_escalation(self, escalation: Any) -> None:
        """Do nothing."""

    @hookimpl
    def claw_record_audit(self, event: Any) -> None:
        """Do nothing (the built-in trail still records)."""

    @hookimpl
    def claw_update_trust(self, agent_id: str, delta: int, reason: str, policy: Any) -> None:
        """Abstain."""
