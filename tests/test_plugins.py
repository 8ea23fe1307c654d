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
from claw_governance.pipeline import PIPELINE_HOOKS
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


#: Every pipeline hook one allowed ``execute`` meets, in order (the trust update runs after the tool).
EXECUTE_HOOKS = [
    "claw_verify_identity",
    "claw_trust_score",
    "claw_decide",
    "claw_record_audit",
    "claw_update_trust",
    "claw_record_audit",
]
#: ... and one ``check`` of an escalating action.
ESCALATE_HOOKS = [
    "claw_verify_identity",
    "claw_trust_score",
    "claw_decide",
    "claw_consume_grant",
    "claw_open_escalation",
    "claw_record_audit",  # the escalation's own entry (EscalationQueue.open)
    "claw_notify_escalation",
    "claw_record_audit",  # the decision
]


def _pipeline_calls(seen: list[str]) -> list[str]:
    return [name for name in seen if name in PIPELINE_HOOKS]


def test_hookcall_monitoring_sees_every_pipeline_step(make_governor: MakeGov) -> None:
    gov = make_governor(POLICY)
    agent = gov.agent("a")
    agent.execute("read:x", {}, lambda args: "ok")  # the table as the call path uses it, before monitoring
    table = gov.pipeline
    seen: list[str] = []
    undo = gov.pm.add_hookcall_monitoring(lambda name, impls, kwargs: seen.append(name), lambda *args: None)
    assert gov.pipeline.hooked == frozenset(PIPELINE_HOOKS)  # every step is the real hook call now
    assert agent.execute("read:x", {"n": 1}, lambda args: "ok").success
    assert _pipeline_calls(seen) == EXECUTE_HOOKS
    seen.clear()
    assert agent.check("refund", {"amount": 3}).outcome is Outcome.ESCALATE
    assert _pipeline_calls(seen) == ESCALATE_HOOKS
    undo()
    undo()  # pluggy's undo may be called twice: counted once
    assert gov.pipeline.hooked == table.hooked  # back to the table of before
    seen.clear()
    agent.execute("read:x", {}, lambda args: "ok")
    assert seen == []


def test_enable_tracing_sees_every_pipeline_step(make_governor: MakeGov) -> None:
    gov = make_governor(POLICY)
    agent = gov.agent("a")
    lines: list[str] = []
    gov.pm.trace.root.setwriter(lines.append)
    undo = gov.pm.enable_tracing()
    try:
        assert agent.execute("read:x", {}, lambda args: "ok").success
    finally:
        undo()
    called = [line.split()[0] for line in lines if "[hook]" in line and not line.lstrip().startswith("finish")]
    assert _pipeline_calls(called) == EXECUTE_HOOKS


def test_the_built_in_plugins_are_the_table_entries(make_governor: MakeGov, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAW_PLUGINS", raising=False)  # this test is about the table without extra plugins
    gov = make_governor(POLICY)
    steps = gov.pipeline
    assert steps.hooked == {"claw_notify_escalation"}  # no built-in notifier without a webhook configured
    assert steps.decide == gov.pm.get_plugin("policy").claw_decide  # the bound method itself: no dispatch
    assert steps.verify_identity == gov.pm.get_plugin("identity").claw_verify_identity
    assert steps.trust_score == gov.pm.get_plugin("trust").claw_trust_score
    assert steps.record_audit == gov.pm.get_plugin("audit").claw_record_audit
    veto = Veto()
    gov.pm.register(veto)  # straight on the plugin manager: the table is rebuilt all the same
    assert gov.pipeline.hooked == {"claw_decide", "claw_notify_escalation"}
    assert gov.agent("a").check("read:file", {"path": "/etc/x"}).reason == "no /etc"
    gov.pm.unregister(veto)
    assert gov.pipeline.hooked == steps.hooked and gov.pipeline.decide == steps.decide  # as before


class Abstain:
    """Answers ``None`` on the firstresult steps: with the built-ins gone, no plugin answers."""

    @hookimpl
    def claw_verify_identity(self, call: ToolCall, policy: PolicySet) -> None:
        return None

    @hookimpl
    def claw_trust_score(self, agent_id: str, policy: PolicySet) -> None:
        return None

    @hookimpl
    def claw_decide(self, call: ToolCall, policy: PolicySet) -> None:
        return None


@pytest.mark.parametrize(
    ("replaced", "reason", "stage"),
    [
        ("identity", 'No identity plugin vouches for "a"', "identity"),
        ("trust", 'Trust score of "a" is None, below the minimum 50', "trust"),
        ("policy", "No policy plugin gave a decision (default deny)", "policy"),
    ],
)
def test_a_step_where_every_plugin_abstains_denies(
    make_governor: MakeGov, replaced: str, reason: str, stage: str
) -> None:
    gov = make_governor(POLICY)
    agent = gov.agent("a")
    gov.pm.unregister(name=replaced)  # only the abstaining plugin is left on that step
    gov.register_plugin(Abstain())
    ran: list[int] = []
    decision = agent.execute("read:x", {}, lambda args: ran.append(1)).decision
    assert (decision.outcome, decision.reason, decision.stage) == (Outcome.DENY, reason, stage)
    assert ran == []


def test_trust_is_scored_under_the_policy_the_call_is_decided_by(
    make_governor: MakeGov, write_policy: Callable[..., Path]
) -> None:
    """The trust step gets the call's policy: a reload while a call is on its way cannot mix two policies
    (before, the hook path read the agent's initial score from the policy in force *now*, but compared it with
    the minimum of the call's policy)."""
    old = "agent: a\ntrust: {min_score: 50, initial: 60}\npermissions: {allow: ['read:*']}\n"
    new = "agent: a\ntrust: {min_score: 5, initial: 10}\npermissions: {allow: ['read:*']}\n"
    gov = make_governor(old)
    agent = gov.agent("a")

    class ReloadMidCall:
        """Swaps the policy file and reloads it while the call is in the identity step (then abstains)."""

        @hookimpl
        def claw_verify_identity(self, call: ToolCall, policy: PolicySet) -> None:
            if call.action == "read:swap":
                write_policy(new)
                assert gov.reload_policies().changed

    gov.register_plugin(ReloadMidCall())
    decision = agent.check("read:swap")
    assert gov.policy.trust_settings("a").initial == 10  # the reload happened during the call
    assert decision.outcome is Outcome.ALLOW, decision.reason  # decided wholly under the old policy (60 >= 50)


def test_audit_events_match_the_trails_fields() -> None:
    """The built-in audit step unpacks an AuditEvent into ``append_parts``: their fields must line up."""
    import inspect

    from claw_governance.audit.trail import AuditTrail

    params = list(inspect.signature(AuditTrail.append_parts).parameters)[1:]
    assert params[0] == "entry_type" and list(AuditEvent._fields[1:]) == params[1:]


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


def test_decision_stage_is_a_stage_and_stays_a_plain_string_outside(make_governor: MakeGov) -> None:
    import orjson

    from claw_governance import Stage

    call = ToolCall("a", "read:x")
    given = Decision(Outcome.DENY, "no", call, stage="plugin")  # what plugins write
    assert given.stage is Stage.PLUGIN and given.stage == "plugin" and f"{given.stage}" == "plugin"
    assert orjson.loads(orjson.dumps(given.as_dict()))["stage"] == "plugin"
    with pytest.raises(ValueError):
        Decision(Outcome.ALLOW, "yes", call, stage="made-up")
    gov = make_governor(POLICY, plugins=[Veto()])
    agent = gov.agent("a")
    assert agent.check("read:x").stage is Stage.POLICY
    assert agent.check("read:file", {"path": "/etc/x"}).stage is Stage.PLUGIN
    assert agent.check("nothing:matches").stage is Stage.DEFAULT
    stages = [e["decision"]["stage"] for e in gov.audit.entries() if e["type"] == "policy_decision"]
    assert stages == ["policy", "plugin", "default"] and all(type(s) is str for s in stages)


def test_a_plugin_decision_with_an_unknown_stage_denies(make_governor: MakeGov) -> None:
    class Odd:
        @hookimpl
        def claw_decide(self, call: ToolCall, policy: PolicySet) -> Decision:
            return Decision(Outcome.ALLOW, "odd", call, stage="odd")

    gov = make_governor(POLICY, plugins=[Odd()])
    decision = gov.agent("a").check("read:x")
    assert decision.outcome is Outcome.DENY and "claw_decide (ValueError)" in decision.reason
