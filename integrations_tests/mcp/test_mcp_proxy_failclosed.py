"""The proxy fails closed when its governor breaks: the real server never sees the call."""

from __future__ import annotations

from typing import Any

from claw_governance_mcp.proxy import ProxySettings, open_proxy
from mcp import types
from mcp_support import AGENT, Env

from claw_governance import Governor
from claw_governance.hookspecs import hookimpl


def request(name: str, arguments: dict[str, Any]) -> types.CallToolRequest:
    return types.CallToolRequest(
        method="tools/call", params=types.CallToolRequestParams(name=name, arguments=arguments)
    )


def governor(env: Env) -> Governor:
    return Governor(
        policy_path=env.root / "policies", audit_path=env.root / "audit", identity_path=env.root / "identities"
    )


def settings(env: Env) -> ProxySettings:
    return ProxySettings(
        agent_id=AGENT, command=env.server_command[0], args=tuple(env.server_command[1:]), server_name="notes"
    )


class Broken:
    """A plugin whose decision step raises (a bug in a third-party plugin)."""

    @hookimpl(tryfirst=True)
    def claw_decide(self, call: Any, policy: Any) -> None:
        raise RuntimeError("plugin bug")


async def test_a_failing_governance_plugin_denies(env: Env) -> None:
    gov = governor(env)
    try:
        async with open_proxy(gov, settings(env)) as proxy:
            ok = await proxy.call_tool(request("add_note", {"title": "before", "text": "x"}))
            assert ok.isError is False
            gov.register_plugin(Broken(), "broken")
            result = await proxy.call_tool(request("add_note", {"title": "after", "text": "x"}))
            assert result.isError is True
            assert "fail closed" in result.content[0].text  # type: ignore[union-attr]
    finally:
        gov.close()
    assert (env.effects / "before.txt").exists()
    assert not (env.effects / "after.txt").exists()


async def test_a_closed_governor_denies(env: Env) -> None:
    gov = governor(env)
    async with open_proxy(gov, settings(env)) as proxy:
        gov.close()  # the proxy has lost its governor (trail and stores closed)
        result = await proxy.call_tool(request("add_note", {"title": "lost", "text": "x"}))
        assert result.isError is True
    assert not (env.effects / "lost.txt").exists()
