"""`claw-gov mcp proxy` in front of a real FastMCP server, driven by a real MCP client over stdio and HTTP."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import anyio
from mcp import ClientSession, types
from mcp_support import AGENT, CLAW_GOV, Env, http_proxy, http_session, stdio_session, text_of, trail

from claw_governance import Governor


def dumps(tools: list[types.Tool]) -> str:
    return json.dumps([t.model_dump(mode="json", by_alias=True) for t in tools], sort_keys=True)


async def check_governed(session: ClientSession, env: Env) -> None:
    """The promises every transport keeps: denied never runs, allowed runs, both in the trail."""
    denied = await session.call_tool("delete_notes", {"confirm": True})
    assert denied.isError is True
    assert "denied by governance policy" in text_of(denied)
    assert not (env.effects / "DELETED").exists()  # the real tool never ran

    allowed = await session.call_tool("add_note", {"title": "hello", "text": "world"})
    assert allowed.isError is False, text_of(allowed)
    assert (env.effects / "hello.txt").read_text() == "world"
    assert allowed.structuredContent == {"path": str(env.effects / "hello.txt"), "size": 5}


async def test_stdio_proxy_governs_and_keeps_the_schema(env: Env) -> None:
    async with stdio_session(env.server_command[0], env.server_command[1:]) as direct:
        direct_tools = (await direct.list_tools()).tools
        direct_prompts = (await direct.list_prompts()).prompts
    async with stdio_session(CLAW_GOV, env.proxy_args()) as session:
        proxied = (await session.list_tools()).tools
        assert dumps(proxied) == dumps(direct_tools)  # names, descriptions, input and output schemas
        assert any(t.outputSchema for t in proxied)
        assert (await session.list_prompts()).prompts == direct_prompts
        resource = await session.read_resource("notes://readme")  # type: ignore[arg-type]
        assert resource.contents[0].text == "notes server"  # type: ignore[union-attr]
        await check_governed(session, env)

        failed = await session.call_tool("fail_note", {})
        assert failed.isError is True and "the disk is full" in text_of(failed)

    decisions = {e["action"]: e["decision"]["outcome"] for e in trail(env, type="policy_decision")}
    assert decisions["mcp:notes/delete_notes"] == "deny"
    assert decisions["mcp:notes/add_note"] == "allow"
    actions = {e["action"]: e for e in trail(env, type="agent_action")}
    assert "mcp:notes/delete_notes" not in actions  # nothing ran, so no outcome
    assert actions["mcp:notes/add_note"]["details"]["success"] is True
    assert actions["mcp:notes/fail_note"]["details"]["success"] is False
    assert all(e["agent_id"] == AGENT for e in trail(env, type="policy_decision"))


async def test_http_proxy_governs_and_keeps_the_schema(env: Env) -> None:
    async with stdio_session(env.server_command[0], env.server_command[1:]) as direct:
        direct_tools = (await direct.list_tools()).tools
    with http_proxy(env.proxy_args("--http")) as url:
        async with http_session(url) as session:
            assert dumps((await session.list_tools()).tools) == dumps(direct_tools)
            await check_governed(session, env)
    decisions = {e["action"]: e["decision"]["outcome"] for e in trail(env, type="policy_decision")}
    assert decisions == {"mcp:notes/delete_notes": "deny", "mcp:notes/add_note": "allow"}


async def test_escalation_returns_its_id_and_runs_once_after_approval(env: Env) -> None:
    async with stdio_session(CLAW_GOV, env.proxy_args()) as session:
        held = await session.call_tool("send_note", {"title": "q3", "to": "cfo"})
        assert held.isError is True
        meta = held.meta["claw_governance"]  # type: ignore[index]
        assert meta["outcome"] == "escalate" and meta["escalation_id"] in text_of(held)
        assert not (env.effects / "SENT-cfo").exists()

        # A reviewer approves out of band (CLI), in another process.
        added = subprocess.run(
            [CLAW_GOV, "reviewer", "add", "alice", *env.governor_args], capture_output=True, text=True, timeout=60
        )
        assert added.returncode == 0, added.stderr
        approve = subprocess.run(
            [
                CLAW_GOV,
                "escalations",
                "approve",
                meta["escalation_id"],
                "--by",
                "alice",
                "--notes",
                "ok",
                *env.governor_args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert approve.returncode == 0, approve.stderr
        again = await session.call_tool("send_note", {"title": "q3", "to": "cfo"})
        assert again.isError is False, text_of(again)
        assert (env.effects / "SENT-cfo").read_text() == "q3"
        (env.effects / "SENT-cfo").unlink()
        third = await session.call_tool("send_note", {"title": "q3", "to": "cfo"})  # the grant was used once
        assert third.isError is True
        assert not (env.effects / "SENT-cfo").exists()


async def test_wait_holds_the_call_until_a_reviewer_answers(env: Env) -> None:
    async with stdio_session(CLAW_GOV, env.proxy_args("--wait", "60")) as session:
        results: list[types.CallToolResult] = []

        async def call() -> None:
            results.append(await session.call_tool("send_note", {"title": "w", "to": "ops"}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            pending: list[Any] = []
            with anyio.fail_after(60):
                while not pending:
                    await anyio.sleep(0.2)
                    with Governor(
                        policy_path=env.root / "policies",
                        audit_path=env.root / "audit",
                        identity_path=env.root / "identities",
                    ) as gov:
                        pending = gov.escalations.pending()
                        if pending:
                            gov.resolve_escalation(
                                pending[0].id, "approved", notes="ok", resolver=gov.reviewers.ensure("alice")
                            )
        assert results[0].isError is False, text_of(results[0])
        assert (env.effects / "SENT-ops").exists()


async def test_lost_server_fails_closed(env: Env) -> None:
    async with stdio_session(CLAW_GOV, env.proxy_args()) as session:
        crashed = await session.call_tool("crash", {})
        assert crashed.isError is True
        after = await session.call_tool("add_note", {"title": "late", "text": "x"})
        assert after.isError is True
        assert "unavailable" in text_of(after) or "failed" in text_of(after)
    assert not (env.effects / "late.txt").exists()


async def test_default_server_name_is_the_servers_own(env: Env) -> None:
    async with stdio_session(CLAW_GOV, env.proxy_args(name=None)) as session:
        denied = await session.call_tool("delete_notes", {})
        assert denied.isError is True
    assert trail(env, type="policy_decision")[0]["action"] == "mcp:notes/delete_notes"


def test_port_in_use_is_one_line(env: Env) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [CLAW_GOV, *env.proxy_args("--http", "--port", str(port))], capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use (pick another with --port, or 0 for any)"
    ]


def test_missing_command_is_one_line(env: Env) -> None:
    result = subprocess.run(
        [CLAW_GOV, "mcp", "proxy", "--agent", AGENT, *env.governor_args, "--", "no-such-mcp-server-xyz"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: no-such-mcp-server-xyz: command not found"


def test_a_server_that_does_not_start_is_one_line(env: Env) -> None:
    result = subprocess.run(
        [CLAW_GOV, "mcp", "proxy", "--agent", AGENT, *env.governor_args, "--", "python3", "-c", "raise SystemExit(3)"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: MCP proxy stopped: McpError: Connection closed (the MCP server exited or closed its stdout; "
        "its own messages, if any, are above)"
    ]


async def test_the_servers_sampling_requests_reach_the_client(env: Env) -> None:
    asked: list[str] = []

    async def sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked.append(params.messages[0].content.text)  # type: ignore[union-attr]
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="42"), model="client-model"
        )

    async with stdio_session(CLAW_GOV, env.proxy_args(), sampling_callback=sampling) as session:
        result = await session.call_tool("ask_model", {"question": "meaning of life?"})
        assert result.isError is False, text_of(result)
        assert text_of(result) == "the model says: 42"
    assert asked == ["meaning of life?"]
