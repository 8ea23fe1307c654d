"""Every distribution builds and passes the package-index checks (``make dist-check``), within a time bound."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_make_dist_check() -> None:
    # Through the Makefile target, with this interpreter's environment; -o: that environment is installed
    # already (make test built it), so make must not reinstall it.
    venv = Path(sys.executable).parent.parent
    result = subprocess.run(
        ["make", "-s", "dist-check", f"VENV={venv}", "-o", f"{venv}/.installed"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in (
        "claw_governance",
        "claw_governance_langchain",
        "claw_governance_crewai",
        "claw_governance_mcp",
        "claw_governance_openclaw",
    ):
        assert f"ok  {name}-" in result.stdout
    assert "ok  @claw-governance/openclaw-plugin" in result.stdout


def test_every_distribution_has_the_license() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    for project in (ROOT / "adapters").glob("*/pyproject.toml"):
        assert (project.parent / "LICENSE").read_text(encoding="utf-8") == text, project.parent
        assert 'license = "MIT"' in project.read_text(encoding="utf-8")
    assert (ROOT / "adapters" / "openclaw" / "openclaw-plugin" / "LICENSE").read_text(encoding="utf-8") == text


def test_make_demo_installs_only_the_core(tmp_path: Path) -> None:
    # Dry run against an empty environment folder: what a fresh clone's `make demo` would do.
    venv = tmp_path / "venv"
    result = subprocess.run(
        ["make", "-n", "demo", f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    installs = [line for line in result.stdout.splitlines() if "pip install" in line]
    assert installs and all(line.rstrip().endswith("-e .") for line in installs), result.stdout
    assert "adapters/" not in result.stdout and "benchmarks/requirements" not in result.stdout
