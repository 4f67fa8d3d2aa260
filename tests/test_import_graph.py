"""The import graph holds the layering: no import circle among the modules of ``training/`` (function-level imports
count: a lazy import only hides a circle), nothing outside ``cli/`` imports ``cli/`` (tests may call its entry
point), and nothing edits ``sys.path``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nncf_bootstrapnas"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any level of the file (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def python_files(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py") if ".venv" not in p.parts)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (module -> modules it imports), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_no_import_circle_in_training():
    modules = {_module_name(p): p for p in python_files(PACKAGE / "training") if p.name != "__init__.py"}
    graph = {name: {m for m in imported_modules(path) if m in modules and m != name} for name, path in modules.items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


# Tests may run the command line in process through its entry point (the console script's ``main(argv)``), as a user
# runs it; the command line's own unit tests (``tests/test_cli*.py``) may import its modules; no other module of cli/
# is anybody's library: not the package's, not a benchmark's, not an example's, not another test's.
ENTRY_POINT = {"nncf_bootstrapnas.cli.main", "nncf_bootstrapnas.cli.main.main"}


def _may_import_cli(path: Path, module: str) -> bool:
    in_tests = ROOT / "tests" in path.parents
    return in_tests and (module in ENTRY_POINT or path.name.startswith("test_cli"))


def test_nothing_outside_cli_imports_cli():
    files = python_files(PACKAGE, ROOT / "tests", ROOT / "benchmarks", ROOT / "examples")
    offenders = [
        f"{p.relative_to(ROOT)} imports {m}"
        for p in files
        if PACKAGE / "cli" not in p.parents
        for m in sorted(imported_modules(p))
        if (m == "nncf_bootstrapnas.cli" or m.startswith("nncf_bootstrapnas.cli.")) and not _may_import_cli(p, m)
    ]
    assert not offenders, offenders


def test_nothing_in_the_package_or_tests_edits_sys_path():
    """The reference models are in the package; nothing needs the repository root on ``sys.path``."""
    offenders = []
    for p in python_files(PACKAGE, ROOT / "examples") + [ROOT / "tests" / "conftest.py"]:
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            target = node.func if isinstance(node, ast.Call) else None
            if isinstance(target, ast.Attribute) and target.attr in ("insert", "append", "extend"):
                if ast.unparse(target.value) == "sys.path":
                    offenders.append(f"{p.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
