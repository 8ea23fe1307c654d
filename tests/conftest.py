"""Shared fixtures for the core's unit tests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from claw_governance import Governor
from claw_governance.policy import PolicySet, load_policy_set

ROOT = Path(__file__).resolve().parent.parent

# Property tests check results, never speed: on a shared 2-core CI machine one example can take 0.5 s, which
# hypothesis's default 200 ms deadline would report as a failure (seen in CI on test_policy_collect).
settings.register_profile("claw", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("claw")


def run_example(name: str, cwd: Path, timeout: float = 180) -> str:
    """Run ``examples/<name>`` in a real process from ``cwd``; assert it succeeds; return its stdout."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


SEED_POLICY = """\
agent: customer-service-agent

permissions:
  allow:
    - read:customer_data
    - update:ticket_status
    - create:ticket_response

  deny:
    - delete:*
    - update:payment_info

  escalate:
    - refund_requests        # Needs human approval
    - account_deletion
    - legal_inquiries

audit:
  level: full
  retention: 2555            # 7 years for compliance
"""


@pytest.fixture
def write_policy(tmp_path: Path) -> Callable[..., Path]:
    """Write YAML text (dedented) to policies/<name> under tmp_path; returns the policies folder."""
    folder = tmp_path / "policies"
    folder.mkdir(exist_ok=True)

    def write(text: str, name: str = "policy.yaml") -> Path:
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
        return folder

    return write


@pytest.fixture
def compile_policy(write_policy: Callable[..., Path]) -> Callable[..., PolicySet]:
    """Compile YAML text into a PolicySet through the real loader."""

    def compile_(text: str, name: str = "policy.yaml") -> PolicySet:
        return load_policy_set(write_policy(text, name))

    return compile_


@pytest.fixture
def make_governor(tmp_path: Path, write_policy: Callable[..., Path]) -> Iterator[Callable[..., Governor]]:
    """Build Governors over tmp_path (policies/, logs/audit, identities); all closed at teardown."""
    made: list[Governor] = []

    def make(policy: str | None = SEED_POLICY, **settings: object) -> Governor:
        if policy is not None:
            write_policy(policy)
        settings.setdefault("load_entry_points", False)
        gov = Governor(
            tmp_path / "policies" if policy is not None else None,
            tmp_path / "logs" / "audit",
            tmp_path / "identities",
            **settings,
        )
        made.append(gov)
        return gov

    yield make
    for gov in made:
        gov.close()


# issue 17: the PostgreSQL fixture (`pg_url`: a fresh schema per test) for every test module.
from postgres_support import pg_url  # noqa: E402,F401
