"""A closed governor denies everything and runs nothing (issue 13, class 6).

Before this change ``close()`` disabled the adapters (so their hooks let every call through) and
``before_call`` on a closed governor went on to the closed stores; these tests failed on that code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from claw_governance import Governor, Outcome
from claw_governance.errors import ConfigError
from claw_governance.hookspecs import hookimpl

POLICY = """\
agent: bot
permissions:
  allow: ["read:*"]
  escalate: ["refund"]
"""


class Recorder:
    """A plugin that sees claw_enable / claw_disable, like an adapter's process-wide hook."""

    def __init__(self) -> None:
        self.events: list[str] = []

    @hookimpl
    def claw_enable(self, governor: Governor) -> None:
        self.events.append("enable")

    @hookimpl
    def claw_disable(self, governor: Governor) -> None:
        self.events.append("disable")


def test_before_call_denies_after_close_and_nothing_runs(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(POLICY)
    agent = gov.agent("bot")
    assert agent.check("read:x").allowed
    gov.close()
    ran: list[Any] = []
    for action in ("read:x", "refund", "delete:everything"):
        decision = gov.before_call(gov.make_call("bot", action, {"n": 1}))
        assert decision.outcome is Outcome.DENY and decision.reason == "governor is closed"
        assert decision.stage == "closed"
        result = agent.execute(action, {"n": 1}, ran.append)
        assert not result.success and result.error == "governor is closed"
    assert asyncio.run(agent.aexecute("read:x", {}, ran.append)).error == "governor is closed"
    assert ran == []
    # a handle made after close() (an adapter's lazily created agent) denies too, and creates nothing
    assert gov.agent("someone-new").check("read:x").reason == "governor is closed"


def test_close_keeps_adapters_enabled_only_disable_removes_them(make_governor: Callable[..., Governor]) -> None:
    recorder = Recorder()
    gov = make_governor(POLICY, plugins=[recorder])
    gov.enable()
    gov.close()
    assert recorder.events == ["enable"]  # close() did not take the hooks out: they now deny
    gov.disable()  # explicit: removes them (also after close)
    assert recorder.events == ["enable", "disable"]
    with pytest.raises(ConfigError, match="governor is closed"):
        gov.enable()

    other = make_governor(POLICY, plugins=[Recorder()])
    other.enable()
    other.disable()
    other.close()  # disable() before close(): nothing left installed


def test_health_check_after_close_does_not_raise(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(POLICY)
    gov.close()
    report = gov.health_check()
    assert report["closed"] is True


def test_wait_for_approval_after_close_denies(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(POLICY)
    pending = gov.agent("bot").check("refund")
    assert pending.outcome is Outcome.ESCALATE
    gov.close()
    assert gov.wait_for_approval(pending, 5).reason == "governor is closed"
    assert asyncio.run(gov.await_approval(pending, 5)).reason == "governor is closed"


def test_model_checks_deny_after_close(make_governor: Callable[..., Governor]) -> None:
    gov = make_governor(POLICY)
    assert gov.check_model("bot", "gpt-4o", "openai").allowed  # no contract: any route
    gov.close()
    decision = gov.check_model("bot", "gpt-4o", "openai")
    assert decision.outcome is Outcome.DENY and decision.reason == "governor is closed"
