"""Fixtures for the LangChain integration tests: a governor over a temporary directory and real tools."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.tools import BaseTool
from langchain_itest_support import POLICY, Effects, make_tools

from claw_governance import Governor


@pytest.fixture
def effects() -> Effects:
    """The side effects of the tools of this test."""
    return Effects()


@pytest.fixture
def tools(effects: Effects) -> dict[str, BaseTool]:
    """Fresh tools, recording into ``effects``."""
    return make_tools(effects)


@pytest.fixture
def gov(tmp_path: Path) -> Iterator[Governor]:
    """A governor with the research-agent policy, its audit trail and identities under ``tmp_path``."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "research.yaml").write_text(POLICY)
    governor = Governor(
        policy_path=tmp_path / "policies", audit_path=tmp_path / "audit", identity_path=tmp_path / "identities"
    )
    try:
        yield governor
    finally:
        governor.close()
