"""engine/ is the runtime and nothing domain-specific: it never imports operators/, jobs/ or
benchmarks/, and each of its modules stays small enough to hold one concept."""
from __future__ import annotations

import ast

from support import REPO

FORBIDDEN = ("operators", "jobs", "benchmarks")
MAX_LINES = 250


def engine_modules():
    mods = sorted((REPO / "engine").rglob("*.py"))
    assert len(mods) > 15, mods  # the walk found the package
    return mods


def imported_packages(path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            out.add(str(node.args[0].value).split(".")[0])
    return out


def test_engine_imports_nothing_from_operators_jobs_or_benchmarks():
    offenders = {str(p.relative_to(REPO)): sorted(imported_packages(p) & set(FORBIDDEN)) for p in engine_modules()}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_sees_a_forbidden_import(tmp_path):
    # the detector itself: a module importing operators in any of the three ways is caught
    bad = tmp_path / "bad.py"
    bad.write_text("import operators.langid\nfrom jobs import cli\nimport importlib\nimportlib.import_module('benchmarks.e2e')\n")
    assert imported_packages(bad) >= set(FORBIDDEN)


def test_engine_modules_stay_small():
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in engine_modules()}
    assert {k: n for k, n in sizes.items() if n > MAX_LINES} == {}
