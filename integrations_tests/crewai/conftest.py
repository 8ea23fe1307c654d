"""Fixtures for the CrewAI integration tests.

Every crew runs in a child process whose environment is set before crewai is imported: telemetry and
tracing off, HOME / XDG_DATA_HOME / CREWAI_STORAGE_DIR / TMPDIR inside the test's temporary folder, and
HTTP(S) proxies pointing at a closed local port, so nothing is written outside that folder and nothing
leaves the machine. The pytest process itself never imports crewai and its environment is not touched
(other suites share it). All scenarios share one child process, because ``import crewai`` costs seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from crewai_checks import STORAGE_NAME

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def crewai_env(base: Path) -> dict[str, str]:
    """The environment for a child process that imports crewai, rooted at ``base``."""
    home = base / "home"
    tmp = base / "tmp"
    home.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "CREWAI_DISABLE_TELEMETRY": "true",
            "OTEL_SDK_DISABLED": "true",
            "CREWAI_TRACING_ENABLED": "false",
            "HOME": str(home),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "CREWAI_STORAGE_DIR": STORAGE_NAME,
            "TMPDIR": str(tmp),
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "http_proxy": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9",
            "NO_PROXY": "",
            "no_proxy": "",
            "OPENAI_API_KEY": "",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def run_python(args: list[str], base: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` in the isolated environment, with ``base`` as working directory."""
    return subprocess.run(
        [sys.executable, *args],
        env=crewai_env(base),
        cwd=base,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def run_crewai_python(crewai_base: Path) -> Any:
    """``run(args)``: run ``python *args`` in a child process with the isolated crewai environment."""

    def run(args: list[str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return run_python(args, crewai_base, timeout)

    return run


@pytest.fixture(scope="session")
def crewai_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder that holds every file the crew processes write."""
    return tmp_path_factory.mktemp("crewai")


@pytest.fixture(scope="session")
def crew_results(crewai_base: Path) -> dict[str, Any]:
    """Run every crew scenario once (one child process) and return what it observed."""
    out = crewai_base / "scenarios"
    proc = run_python([str(HERE / "crewai_scenarios.py"), str(out)], crewai_base)
    assert proc.returncode == 0, proc.stderr[-6000:]
    results: dict[str, Any] = json.loads((out / "results.json").read_text())
    assert not results["errors"], "\n".join(results["errors"].values())
    return results


@pytest.fixture(params=["react", "native"])
def path(request: pytest.FixtureRequest) -> str:
    """crewai's two tool paths: text/ReAct and native function calling."""
    return str(request.param)


@pytest.fixture
def hooks(crew_results: dict[str, Any], path: str) -> dict[str, Any]:
    """The global-hook scenarios of one tool path."""
    return crew_results[f"hooks_{path}"]  # type: ignore[no-any-return]
