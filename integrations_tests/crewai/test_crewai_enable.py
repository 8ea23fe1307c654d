"""``gov.enable()`` through the installed entry point; the adapter's import cost; environment isolation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from crewai_checks import STORAGE_NAME


def test_gov_enable_alone_governs_an_existing_crew(crew_results: dict[str, Any]) -> None:
    r = crew_results["enable"]
    assert "crewai" in r["plugins"]  # loaded from the entry point group claw_governance
    counts = r["counts"]
    assert counts["start"] == [0, 0]
    assert counts["enabled"] == [1, 1]  # enable() twice registers once
    assert counts["disabled"] == [0, 0] and counts["closed"] == [1, 1] and counts["disabled_after_close"] == [0, 0]
    assert r["health"] == {"status": "ok", "installed": True, "hooks_enabled": True, "waiting_for_import": False}
    assert r["while_enabled"]["effects"] == [] and "denied by governance" in r["while_enabled"]["seen"]
    assert r["after_disable"]["ran"] == ["lookup"]  # after disable(), crewai runs tools on its own again


def test_loading_the_plugin_does_not_import_crewai() -> None:
    code = (
        "import sys, claw_governance_crewai, claw_governance_crewai.plugin as p\n"
        "from claw_governance import Governor\n"
        "print(sorted(m for m in sys.modules if m == 'crewai' or m.startswith('crewai.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout.replace("'", '"')) == []


def test_crewai_wrote_only_inside_the_test_folder(crew_results: dict[str, Any], crewai_base: Path) -> None:
    assert (crewai_base / "home").exists()
    assert not (Path.home() / ".local" / "share" / STORAGE_NAME).exists()
