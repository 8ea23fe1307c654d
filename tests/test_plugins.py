"""The hook contract: plugins join the pipeline, and any plugin error fails closed."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from claw_governance import Decision, Governor, Outcome, ToolCall, hookimpl
from claw_governance.hookspecs import PROJECT
from claw_governance.model import AuditEvent, Escalation
from claw_governance.plugins import ClawPluginManager, HookDispatch
from claw_governance.policy import PolicySet

MakeGov = Callable[..., Governor]
POLICY = """\
agent: a
permissions:
  allow: ["read:*", "tool:*"]
  deny: ["delete:*"]
  escalate: [refund]
"""


def _raising(hook: str) -> object:
    """A plugin whose ``hook`` raises (pluggy lets an implementation take none of the hook's arguments)."""

    def explode(self: object) -> None:
        raise RuntimeError(f"{hook} exploded")

    return type(f"Raising_{hook}", (), {hook: hookimpl(explode)})()


@pytest.mark.parametrize(
    ("hook", "action"),
    [
        ("claw_verify_identity", "read:x"),
        ("claw_trust_score", "read:x"),
        ("claw_decide", "read:x"),
        ("claw_consume_grant", "refund"),
        ("claw_open_escalation", "refund"),
    ],
)
def test_a_raising_pipeline_plugin_denies(make_governor: MakeGov, hook: str, action: str) -> None:
    gov = make_governor(POLICY, plugins=[_raising(hook)])
    ran = []
    result = gov.agent("a").execute(action, {}, lambda args: ran.append(1))
    assert result.decision.outcome is Outcome.DENY
    assert hook in result.decision.reason and "RuntimeError" in result.decision.reason
    assert "exploded" not in result.decision.reason  # error text can quote arguments: never in the trail
    assert "exploded" in gov.health_check()["faults"]["plugin"]  # ... but the operator sees it
    assert ran == []
    assert gov.health_check()["status"] == "degraded"
    logged = [e for e in gov.audit.entries() if e["type"] == "policy_decision"]
    assert logged[-1]["decision"]["outcome"] == "deny"


def test_an_audit_failure_denies(make_governor: MakeGov) -> None:
    gov = make_governor(POLICY)
    agent = gov.agent("a")
    gov.register_plugin(_raising("claw_record_audit"))
    ran = []
    result = agent.execute("read:x", {}, lambda args: ran.append(1))
    assert result.decision.outcome is Outcome.DENY and result.decision.stage == "audit"
    assert "Audit trail cannot be written" in result.decision.reason
    assert ran == []
    health = gov.health_check()
    assert health["status"] == "degraded" and "audit" in health["faults"]
    with pytest.raises(RuntimeError):  # creating an identity that cannot be audited is refused, not hidden
        gov.agent("b")


def test_a_failing_notifier_never_changes_the_decision(make_governor: MakeGov) -> None:
    gov = make_governor(POLICY, plugins=[_raising("claw_notify_escalation")])
    decision = gov.agent("a").check("refund", {"amount": 1})
    assert decision.outcome is Outcome.ESCALATE and decision.escalation_id
    assert "notify" in gov.health_check()["faults"]


class Veto:
    @hookimpl
    def claw_decide(self, call: ToolCall, policy: PolicySet) -> Decision | None:
        if call.args.get("path", "").startswith("/etc"):
            return Decision(Outcome.DENY, "no /etc", call, stage="plugin")
        return None


class AllowEverything:
    @hookimpl
    def claw_decide(self, call: ToolCall, policy: PolicySet) -> Decision:
        return Decision(Outcome.ALLOW, "plugin says yes", call, stage="plugin")


def test_plugin_decisions_combine_deny_first(make_governor: MakeGov) -> None:
    gov = make_governor(POLICY, plugins=[Veto(), AllowEverything()])
    agent = gov.agent("a")
    assert agent.check("read:file", {"path": "/etc/passwd"}).reason == "no /etc"
    assert agent.check("delete:everything").outcome is Outcome.DENY  # policy deny beats a plugin allow
    assert agent.check("refund").outcome is Outcome.ESCALATE  # escalate beats a plugin allow
    assert agent.check("something:new").outcome is Outcome.ALLOW  # a plugin may allow what policy omits


def test_plugins_registered_later_take_effect(make_governor: MakeGov) -> None:
    gov = make_governor(POLICY)
    agent = gov.agent("a")
    assert agent.check("read:file", {"path": "/etc/x"}).allowed
    gov.register_plugin(Veto(), name="veto")
    assert agent.check("read:file", {"path": "/etc/x"}).outcome is Outcome.DENY
    gov.pm.unregister(name="veto")
    assert agent.check("read:file", {"path": "/etc/x"}).allowed


class Recorder:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []
        self.escalations: list[Escalation] = []

    @hookimpl
    def claw_record_audit(self, event: AuditEvent) -> None:
        self.events.append(event)

    @hookimpl
    def claw_notify_escalation(self, escalation: Escalation) -> None:
        self.escalations.append(escalation)


def test_every_decision_and_action_reaches_audit_plugins(make_governor: MakeGov) -> None:
    recorder = Recorder()
    gov = make_governor(POLICY, plugins=[recorder])
    agent = gov.agent("a")
    agent.execute("read:x", {"password": "hunter2"}, lambda args: "ok")
    agent.check("refund", {"amount": 3})
    types = [e.type for e in recorder.events]
    assert types.count("policy_decision") == 2 and "agent_action" in types
    assert len(recorder.escalations) == 1 and recorder.escalations[0].action == "refund"


def test_fast_dispatch_matches_pluggy() -> None:
    pm = ClawPluginManager()

    class One:
        @hookimpl
        def claw_trust_score(self, agent_id: str) -> int:
            return len(agent_id)

    pm.register(One())
    dispatch = HookDispatch(pm, "claw_trust_score")
    assert dispatch(agent_id="abcd") == pm.hook.claw_trust_score(agent_id="abcd") == 4

    class Two:
        @hookimpl(tryfirst=True)
        def claw_trust_score(self, agent_id: str) -> int:
            return 99

    pm.register(Two())
    assert dispatch(agent_id="abcd") == pm.hook.claw_trust_score(agent_id="abcd") == 99


@pytest.fixture
def fake_distribution(tmp_path: Path) -> Iterator[Path]:
    """A real installed-looking distribution with a broken and a working entry point."""
    site = tmp_path / "site"
    info = site / "claw_fake_plugins-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: claw-fake-plugins\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(f"""\
        [{PROJECT}]
        a_broken = claw_fake_missing_module_xyz
        b_raises = claw_fake_raises
        c_works = claw_fake_works
    """)
    )
    (site / "claw_fake_raises.py").write_text("raise RuntimeError('import-time failure')\n")
    (site / "claw_fake_works.py").write_text(
        textwrap.dedent("""\
        from claw_governance import hookimpl, Decision, Outcome

        @hookimpl
        def claw_decide(call, policy):
            if call.action == "fake:veto":
                return Decision(Outcome.DENY, "vetoed by the installed plugin", call, stage="plugin")
    """)
    )
    sys.path.insert(0, str(site))
    yield site
    sys.path.remove(str(site))
    for name in ("claw_fake_works", "claw_fake_raises"):
        sys.modules.pop(name, None)


def test_broken_entry_points_are_reported_and_skipped(fake_distribution: Path, make_governor: MakeGov) -> None:
    gov = make_governor("agent: a\npermissions: {allow: ['fake:*']}\n", load_entry_points=True)
    failed = {f.name: f.error for f in gov.pm.load_failures}
    assert set(failed) >= {"a_broken", "b_raises"}
    assert "import-time failure" in failed["b_raises"]
    assert gov.pm.get_plugin("c_works") is not None  # loaded although earlier ones broke
    agent = gov.agent("a")
    assert agent.check("fake:veto").reason == "vetoed by the installed plugin"
    assert agent.check("fake:other").allowed
    health = gov.health_check()
    assert health["components"]["plugins"]["status"] == "degraded"
    assert {f["name"] for f in health["components"]["plugins"]["failed"]} >= {"a_broken", "b_raises"}


def test_a_failing_trust_update_is_reported_and_never_undoes_the_call(make_governor: MakeGov) -> None:
    gov = make_governor(POLICY)
    agent = gov.agent("a")
    assert agent.execute("read:x", {}, lambda args: "ok").success  # the built-in ledger, called directly
    gov.register_plugin(_raising("claw_update_trust"))  # now through the hooks, and it raises
    ran = []
    result = agent.execute("read:x", {}, lambda args: ran.append(1) or "ok")
    assert result.success and ran == [1]
    assert "claw_update_trust" in gov.health_check()["faults"]["trust"]
    assert gov.audit.query(type="agent_action")[-1]["details"]["success"] is True
