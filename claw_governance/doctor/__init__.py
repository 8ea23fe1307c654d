"""``claw-gov doctor``: the production checklist, checked (see ``checks``)."""

from claw_governance.doctor.checks import AMBER, CHECKS, OK, RED, Context, Finding, load_context, run_checks

__all__ = ["AMBER", "CHECKS", "OK", "RED", "Context", "Finding", "load_context", "run_checks"]
