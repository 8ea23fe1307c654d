"""The Makefile and .pre-commit-config.yaml agree with themselves and with each other: every ``.PHONY`` name is
a target, every ``make X`` a hook runs exists, and pre-commit runs the checks of ``make lint`` on its folders."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def makefile() -> str:
    return (ROOT / "Makefile").read_text()


def targets(text: str) -> set[str]:
    """Rule names (``name: ...`` at the start of a line; not ``:=`` assignments)."""
    return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.M)} - {".PHONY"}


def phony(text: str) -> set[str]:
    return {name for line in re.findall(r"^\.PHONY\s*:(.*)$", text, re.M) for name in line.split()}


def recipe(text: str, target: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{re.escape(target)}\s*:(?!=)", line))
    out = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        out.append(line.strip())
    return out


def hooks() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    return config, [hook for repo in config["repos"] for hook in repo["hooks"]]


def test_every_phony_name_is_a_target() -> None:
    text = makefile()
    assert phony(text) and phony(text) <= targets(text), phony(text) - targets(text)


def test_every_make_target_pre_commit_runs_exists() -> None:
    _, found = hooks()
    wanted = {entry.split()[1] for entry in (h["entry"] for h in found) if entry.startswith("make ")}
    assert wanted and wanted <= targets(makefile()), wanted - targets(makefile())


def test_pre_commit_runs_what_make_lint_runs_on_the_same_folders() -> None:
    text = makefile()
    config, found = hooks()
    lint_dirs = re.search(r"^LINT_DIRS\s*:=\s*(.*)$", text, re.M)
    assert lint_dirs is not None
    folders = set(lint_dirs.group(1).split())
    hooked = re.fullmatch(r"\^\((.*)\)/", config["files"])
    assert hooked is not None and set(hooked.group(1).split("|")) == folders
    lint = recipe(text, "lint")
    commands = {h["entry"].replace(".venv/bin/", "$(BIN)/") for h in found}
    assert "$(BIN)/ruff check $(LINT_DIRS)" in lint and "$(BIN)/ruff check" in commands
    assert "$(BIN)/ruff format --check $(LINT_DIRS)" in lint and "$(BIN)/ruff format --check" in commands
    assert any(line.endswith("lint-types") for line in lint) and "make lint-types" in commands
    assert any("mypy" in line for line in recipe(text, "lint-types"))


def test_the_parsers_see_a_broken_makefile() -> None:
    broken = ".PHONY: lint gone\nlint:\n\ttrue\nX := 1\n"
    assert phony(broken) - targets(broken) == {"gone"} and "X" not in targets(broken)
