"""Build every distribution (core and adapters/*) and check it as a package index would: ``make dist-check``.

For each distribution: ``python -m build`` (sdist and wheel, into OUTDIR/<name>), ``twine check --strict``,
and what twine does not check: the wheel's metadata carries ``License-Expression: MIT`` and the LICENSE file,
the version equals the package's ``__version__`` (single-sourced), and the long description (README) has no
link relative to the repository (it must stand alone on the index). Then ``npm pack --dry-run`` for the
OpenClaw plugin: every file its package.json names exists and is packed. Prints one line per distribution;
exit 1 with the reasons on the first failure.
"""

from __future__ import annotations

import ast
import email
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "adapters" / "openclaw" / "openclaw-plugin"
RELATIVE_LINK = re.compile(r"\]\((?!https?://|#|mailto:)([^)]+)\)")


def projects() -> list[Path]:
    """The core and every adapter distribution folder."""
    return [ROOT, *sorted(p.parent for p in (ROOT / "adapters").glob("*/pyproject.toml"))]


def source_version(project: Path) -> str:
    """``__version__`` of the distribution's package, read without importing it."""
    init = next(p for p in project.glob("claw_governance*/__init__.py"))
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__version__" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise SystemExit(f"{init}: no __version__")


def check_wheel(wheel: Path, version: str) -> list[str]:
    problems = []
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(zf.read(meta_name))
    if meta.get("License-Expression") != "MIT":
        problems.append(f"{wheel.name}: License-Expression is {meta.get('License-Expression')!r}, not 'MIT'")
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        problems.append(f"{wheel.name}: no LICENSE in .dist-info/licenses/")
    if meta.get("Version") != version:
        problems.append(f"{wheel.name}: version {meta.get('Version')} differs from __version__ {version}")
    for field in ("Author", "Author-email"):
        if meta.get(field):
            break
    else:
        problems.append(f"{wheel.name}: no author")
    if not meta.get_all("Project-URL"):
        problems.append(f"{wheel.name}: no project URLs")
    if not meta.get_all("Classifier"):
        problems.append(f"{wheel.name}: no classifiers")
    body = meta.get_payload()
    if isinstance(body, str):
        links = RELATIVE_LINK.findall(body)
        if links:
            problems.append(f"{wheel.name}: README links relative to the repository: {', '.join(links[:3])}")
    return problems


def check_npm(out: Path) -> list[str]:
    npm = shutil.which("npm")
    if npm is None:
        return ["npm not found: cannot check the OpenClaw plugin package"]
    manifest = json.loads((PLUGIN / "package.json").read_text(encoding="utf-8"))
    problems = [
        f"openclaw-plugin: package.json names {f}, which does not exist"
        for f in manifest.get("files", [])
        if not (PLUGIN / f).exists()
    ]
    done = subprocess.run(
        [npm, "pack", "--json", "--pack-destination", str(out)], cwd=PLUGIN, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        return [*problems, f"openclaw-plugin: npm pack failed: {done.stderr.strip().splitlines()[-1:]}"]
    packed = {f["path"] for f in json.loads(done.stdout)[0]["files"]}
    problems += [f"openclaw-plugin: {f} is not in the package" for f in manifest.get("files", []) if f not in packed]
    for required in ("LICENSE", "README.md", "package.json", "openclaw.plugin.json"):
        if required not in packed:
            problems.append(f"openclaw-plugin: {required} is not in the package")
    print(f"ok  {manifest['name']} {manifest['version']} (npm pack: {', '.join(sorted(packed))})")
    return problems


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="claw-dist-"))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    problems: list[str] = []
    for project in projects():
        target = out / project.name
        build = subprocess.run(
            [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(target), str(project)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if build.returncode != 0:
            tail = (build.stderr or build.stdout).strip().splitlines()[-3:]
            problems.append(f"{project.name}: python -m build failed: {' | '.join(tail)}")
            continue
        files = sorted(target.iterdir())
        twine = subprocess.run(
            [sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if twine.returncode != 0:
            problems.append(f"{project.name}: twine check: {twine.stdout.strip()} {twine.stderr.strip()}")
        wheels = [f for f in files if f.suffix == ".whl"]
        if len(wheels) != 1 or not any(f.name.endswith(".tar.gz") for f in files):
            problems.append(f"{project.name}: expected one wheel and one sdist, got {[f.name for f in files]}")
            continue
        problems += check_wheel(wheels[0], source_version(project))
        print(f"ok  {', '.join(f.name for f in files)}")
    problems += check_npm(out)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
