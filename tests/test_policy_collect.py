"""policy lint's every-error parse agrees with the loader: no errors exactly when the file loads, and the
loader's (first) error is always among the ones reported."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claw_governance.errors import PolicyError
from claw_governance.policy.collect import parse_file_all
from claw_governance.policy.store import parse_file

patterns = st.one_of(st.sampled_from(["read:*", "delete:*", "x", "", "*"]), st.integers(), st.none())
rule = st.one_of(
    patterns,
    st.fixed_dictionaries(
        {"action": patterns},
        optional={
            "condition": st.sampled_from(["amount > 5", "amount >", "", 3]),
            "timeout": st.sampled_from(["4h", "forever", -1, "30m"]),
            "reason": st.sampled_from(["why", 7]),
            "colour": st.just("blue"),
        },
    ),
)
document = st.fixed_dictionaries(
    {},
    optional={
        "agent": st.sampled_from(["a", "", 5, "*"]),
        "permissions": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "allow": st.lists(rule, max_size=3),
                    "deny": st.lists(rule, max_size=3),
                    "escalate": st.one_of(st.lists(rule, max_size=3), st.just("oops")),
                },
            ),
            st.just([1]),
        ),
        "trust": st.one_of(st.fixed_dictionaries({}, optional={"min_score": st.integers(-5, 500)}), st.just(3)),
        "audit": st.fixed_dictionaries({}, optional={"level": st.sampled_from(["full", "loud"])}),
        "extra": st.just(1),
    },
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(document, min_size=1, max_size=3))
def test_collect_agrees_with_the_loader(tmp_path: Path, docs: list[dict[str, object]]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    parsed, errors = parse_file_all(path)
    try:
        loaded, _ = parse_file(path)
    except PolicyError as exc:
        assert errors, "the loader failed but lint found nothing"
        assert (exc.line, exc.detail) in {(e.line, e.detail) for e in errors}
    else:
        assert errors == [] and len(parsed) == len(loaded)
