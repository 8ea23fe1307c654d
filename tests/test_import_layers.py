"""The package's import layers, read from the source with ``ast`` (nothing is imported):

- the core never imports the CLI, the console or an adapter, not even inside a function (CONTRIBUTING.md:
  "the core never imports the CLI or an adapter"), so a library user never pulls in click, the web stack or a
  framework through the core;
- the state store interface (``state/base.py``) imports no store implementation;
- no import circles among module-level imports (a circle works only while import order happens to allow it).

Each rule is also checked against a planted violation, so a walker that saw nothing would fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "claw_governance"
FRONT_PACKAGES = ("claw_governance.cli", "claw_governance.console")


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_front(module: str) -> bool:
    """The CLI and the console, and each subpackage's command module (``witness.cli``, ``reviewer_cli``)."""
    return module.startswith(FRONT_PACKAGES) or module.rsplit(".", 1)[-1] == "cli" or module.endswith("_cli")


def imports(source: str, module: str, is_package: bool, *, top_level_only: bool) -> set[str]:
    """The absolute names ``module`` imports. ``from pkg import name`` counts as ``pkg.name`` (a submodule or
    an attribute) and, unless ``pkg`` is a package of this one's own path, as ``pkg``. Imports under
    ``if TYPE_CHECKING:`` are left out (never run); with ``top_level_only`` so are those inside functions."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) and top_level_only:
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    here = module.split(".") if is_package else module.split(".")[:-1]
                    base = ".".join(here[: len(here) - child.level + 1] + ([base] if base else []))
                found.update(f"{base}.{alias.name}" for alias in child.names)
                found.add(base)
            visit(child)

    visit(ast.parse(source))
    return found


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def upward_imports(root: Path = PACKAGE) -> list[str]:
    """``core -> front`` and ``core -> adapter`` imports, anywhere in a module."""
    bad = []
    for name, path in modules(root).items():
        if is_front(name):
            continue
        for target in imports(path.read_text(), name, path.name == "__init__.py", top_level_only=False):
            if target.startswith("claw_governance_") or (target.startswith("claw_governance.") and is_front(target)):
                bad.append(f"{name} imports {target}")
    return sorted(bad)


def import_cycles(root: Path = PACKAGE) -> list[list[str]]:
    """Circles among module-level imports (strongly connected components of more than one module)."""
    known = modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = imports(path.read_text(), name, path.name == "__init__.py", top_level_only=True)
        # `from pkg import sub` needs only pkg to have *started* (Python imports parents first), not finished:
        # the edge that matters is to the submodule, so a parent package named this way is no edge
        parents = {t.rsplit(".", 1)[0] for t in targets if t in known and "." in t}
        graph[name] = {
            t for t in targets if t in known and t != name and not (t in parents and name.startswith(t + "."))
        }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return cycles


def test_the_core_never_imports_the_cli_the_console_or_an_adapter() -> None:
    assert upward_imports() == []


def test_the_state_interface_imports_no_implementation() -> None:
    path = PACKAGE / "state" / "base.py"
    found = imports(path.read_text(), "claw_governance.state.base", False, top_level_only=False)
    implementations = {"claw_governance.state.memory", "claw_governance.state.sqlite", "claw_governance.state.postgres"}
    assert not found & implementations


def test_no_import_circles() -> None:
    assert import_cycles() == []


def test_the_walker_finds_planted_violations(tmp_path: Path) -> None:
    """The rules above would pass on a walker that saw nothing: plant each violation and see it reported."""
    root = tmp_path / "claw_governance"
    (root / "cli").mkdir(parents=True)
    (root / "audit").mkdir()
    (root / "__init__.py").write_text("")
    (root / "cli" / "__init__.py").write_text("import click\n")
    (root / "audit" / "__init__.py").write_text("from claw_governance.audit import a\n")  # a submodule: no circle
    (root / "audit" / "a.py").write_text(
        "def later():\n    from claw_governance.cli import main\n    import claw_governance_langchain\n"
    )
    (root / "x.py").write_text("from claw_governance import y\n")
    (root / "y.py").write_text("import claw_governance.x\n")
    assert upward_imports(root) == [
        "claw_governance.audit.a imports claw_governance.cli",
        "claw_governance.audit.a imports claw_governance.cli.main",
        "claw_governance.audit.a imports claw_governance_langchain",
    ]
    assert import_cycles(root) == [["claw_governance.x", "claw_governance.y"]]
