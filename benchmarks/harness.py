"""The benchmark harness behind `decant bench`.

A benchmark is a module `benchmarks/<name>.py`, named like the operator it measures, with
    DESCRIPTION: str        one line
    QUICK: bool             part of `decant bench all` (the quick set, < 10 min in all on 2 cores)
    def run(quick: bool) -> dict   returning {"figures": {...}, "rows": [{...}, ...],
                                               "inputs": {...}, "notes": [...]}
`rows` print as a table; `figures` are the headline numbers (docs/s per core, ratios against a
reference measured in the same run). The harness adds the machine and versions and writes JSON.
"""
from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import platform
import time
from typing import Any

#: Modules of benchmarks/ that are helpers, not benchmarks (corpora live in the `corpora` package).
SKIP = {"harness", "map_output", "__init__"}
#: Former names of benchmarks (before they were named like their operator): still accepted.
ALIASES = {"extraction": "extract", "dedup": "minhash_dedup"}


def available() -> dict[str, Any]:
    """name -> module of every benchmark (packages such as `corpora` are helpers, not benchmarks)."""
    import benchmarks as pkg
    out = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.ispkg or info.name in SKIP or info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"benchmarks.{info.name}")
        if hasattr(mod, "run"):
            out[info.name] = mod
    return dict(sorted(out.items()))


def machine() -> dict[str, Any]:
    import psutil
    versions = {}
    for pkg in ("numpy", "pyarrow", "ray", "trafilatura", "datasketch", "xxhash", "kenlm", "fasttext", "warcio"):
        try:
            from importlib.metadata import version
            versions[pkg] = version({"fasttext": "fasttext-numpy2"}.get(pkg, pkg))
        except Exception:  # noqa: BLE001 - a missing optional package is just not listed
            pass
    return {
        "git_commit": git_commit(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "versions": versions,
    }


def git_commit() -> str | None:
    """The repository's HEAD commit (with "-dirty" when the tree has changes), or None outside git."""
    import subprocess

    from operators.paths import REPO_ROOT
    root = str(REPO_ROOT)
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10,
                              check=False)
        if head.returncode != 0:
            return None
        # GIT_OPTIONAL_LOCKS=0: read only, git status must not refresh the index
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=False,
                               env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def print_result(name: str, result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console()
    if not console.is_terminal or console.width < 150:  # wide tables stay readable in logs and CI
        console = Console(width=160)
    rows = result.get("rows") or []
    if rows:
        t = Table(title=f"bench {name}")
        cols = list(dict.fromkeys(k for r in rows for k in r))
        for c in cols:
            t.add_column(str(c))
        for r in rows:
            t.add_row(*[_fmt(r.get(c, "")) for c in cols])
        console.print(t)
    figs = result.get("figures") or {}
    if figs:
        t = Table(title=f"{name}: figures")
        t.add_column("figure")
        t.add_column("value")
        for k, v in figs.items():
            t.add_row(k, _fmt(v))
        console.print(t)
    for n in result.get("notes") or []:
        console.print(f"[dim]{n}[/dim]")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def write_json(path: str, data: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=1, default=str)


def resolve(name: str) -> str:
    """The benchmark's name for `name`, which may be a former name (ALIASES)."""
    return ALIASES.get(name, name)


def run(name: str, quick: bool = False, json_path: str | None = None, args: list[str] | None = None) -> dict[str, Any]:
    """Run one benchmark (by its name or a former name), print its tables and write its JSON; `args`
    (the command line after the name) go to a benchmark whose run() takes options."""
    name = resolve(name)
    benches = available()
    if name not in benches:
        raise SystemExit(f"unknown benchmark {name!r}; available: {', '.join(benches)}")
    if args and "args" not in inspect.signature(benches[name].run).parameters:
        raise SystemExit(f"benchmark {name!r} takes no options (got {' '.join(args)})")
    t0 = time.perf_counter()
    result = benches[name].run(quick=quick, **({"args": list(args)} if args else {}))
    result = {"benchmark": name, "quick": quick, "machine": machine(),
              "wall_seconds": round(time.perf_counter() - t0, 2), **result}
    print_result(name, result)
    write_json(json_path or os.path.join("bench-results", f"{name}.json"), result)
    return result


def run_all(quick: bool = True, json_path: str | None = None, out_dir: str = "bench-results") -> dict[str, Any]:
    """Run the quick set (every module with QUICK = True), one JSON per benchmark in out_dir, and print
    the seconds each took and the total (the quick set's budget is 10 minutes on 2 cores). A benchmark
    that fails is reported and the others still run."""
    from rich.console import Console
    from rich.table import Table

    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name, mod in available().items():
        if not getattr(mod, "QUICK", False):
            continue
        t = time.perf_counter()
        try:
            results[name] = run(name, quick=quick, json_path=os.path.join(out_dir, f"{name}.json"))
        except Exception as e:  # noqa: BLE001 - one broken benchmark must not hide the others' figures
            results[name] = {"benchmark": name, "error": f"{type(e).__name__}: {e}"}
        seconds[name] = round(time.perf_counter() - t, 2)
    total = round(time.perf_counter() - t0, 2)
    t = Table(title=f"decant bench all ({'quick' if quick else 'full'}): {total:.0f} s in all")
    t.add_column("benchmark")
    t.add_column("seconds", justify="right")
    t.add_column("status")
    for name, s in seconds.items():
        t.add_row(name, f"{s:.1f}", results[name].get("error", "ok"))
    t.add_row("TOTAL", f"{total:.1f}", "")
    Console(width=160).print(t)
    summary = {"quick": quick, "machine": machine(), "total_seconds": total, "seconds": seconds,
               "benchmarks": results}
    if json_path:
        write_json(json_path, summary)
    return summary
