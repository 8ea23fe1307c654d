"""$CLAW_PLUGINS: plugins added to every governor of a process, and the no-op plugin CI runs the suite with."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from claw_governance import Governor, Outcome
from claw_governance.errors import ConfigError
from claw_governance.plugins import plugins_from_env
from claw_governance.testing import NoopPlugin


def test_a_bad_plugin_path_stops_the_governor(
    monkeypatch: pytest.MonkeyPatch, make_governor: Callable[..., Governor]
) -> None:
    monkeypatch.setenv("CLAW_PLUGINS", "no_such_module_anywhere:Plugin")
    with pytest.raises(ConfigError, match="CLAW_PLUGINS: cannot load plugin 'no_such_module_anywhere:Plugin'"):
        make_governor()


def test_env_plugins_are_registered(monkeypatch: pytest.MonkeyPatch, make_governor: Callable[..., Governor]) -> None:
    monkeypatch.setenv("CLAW_PLUGINS", "claw_governance.testing:NoopPlugin")
    gov = make_governor()
    assert isinstance(gov.pm.get_plugin("claw_governance.testing:NoopPlugin"), NoopPlugin)
    agent = gov.agent("customer-service-agent")
    assert agent.check("read:customer_data").outcome is Outcome.ALLOW
    assert agent.check("delete:everything").outcome is Outcome.DENY
    assert agent.check("refund_requests").outcome is Outcome.ESCALATE
    assert gov.audit.verify().valid


def test_parsing() -> None:
    assert plugins_from_env({"CLAW_PLUGINS": ""}) == []
    found = plugins_from_env({"CLAW_PLUGINS": " claw_governance.testing , claw_governance.testing:NoopPlugin "})
    assert [name for name, _ in found] == ["claw_governance.testing", "claw_governance.testing:NoopPlugin"]
    assert isinstance(found[1][1], NoopPlugin)
