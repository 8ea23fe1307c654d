"""Issue 13 item 2 through real langchain-core: a GovernedTool whose tool echoes its secret arguments (and one
that fails quoting them) leaves no secret in any file the governor wrote. Fails on the code before this change
(the echoed GitHub token, Stripe key and api_keys value were written in clear)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from claw_governance_langchain import GovernedTool
from langchain_core.tools import tool

from claw_governance import Governor

CORPUS = json.loads((Path(__file__).parents[2] / "tests" / "data" / "secret_corpus.json").read_text())
SECRETS = {e["name"]: e["secret"] for e in CORPUS}
POLICY = 'agent: "*"\npermissions:\n  allow: ["tool:*"]\n'


@pytest.fixture
def governor(tmp_path: Path) -> Governor:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text(POLICY)
    return Governor(tmp_path / "policies", tmp_path / "audit", tmp_path / "identities", load_entry_points=False)


def test_langchain_tool_echoing_its_secrets_leaves_none_on_disk(governor: Governor, tmp_path: Path) -> None:
    @tool
    def deploy(api_keys: str, note: str) -> str:
        """Deploy with a key; echoes what it was given (as careless tools do)."""
        return f"deployed using {api_keys} ({base64.b64encode(api_keys.encode()).decode()}); note was: {note}"

    @tool
    def charge(card_note: str) -> str:
        """Charge a card; fails quoting its input."""
        raise ValueError(f"gateway refused: {card_note}")

    secret = SECRETS["key:api_keys"]
    note = f"use {SECRETS['github-pat-classic']} and {SECRETS['stripe-live']}"
    with governor:
        out = GovernedTool(deploy, governor=governor, agent_id="deployer").invoke({"api_keys": secret, "note": note})
        assert secret in out  # the agent still gets the real output; only what is stored is redacted
        with pytest.raises(Exception, match="gateway refused"):
            GovernedTool(charge, governor=governor, agent_id="deployer").invoke(
                {"card_note": f"card {SECRETS['card-visa-dashes']} cvv 123"}
            )
    written = "".join(p.read_text("utf-8", "replace") for p in tmp_path.rglob("*") if p.is_file())
    assert '"type":"agent_action"' in written
    for value in (
        secret,
        base64.b64encode(secret.encode()).decode(),
        SECRETS["github-pat-classic"],
        SECRETS["stripe-live"],
        SECRETS["card-visa-dashes"],
    ):
        assert value not in written
