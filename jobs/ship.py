"""The code a Ray Job (or a driver on a remote cluster) is given as its working directory: the
repository's git-tracked files, or its package folders outside a git checkout, plus the job file.

Of the untracked files only Python modules inside the code packages go too (a module not yet
committed is code the job imports, never data); other output folders, local data, `.env` files and
whatever else lies untracked in the checkout stay here. The chosen files are staged as symlinks in a temporary
folder (Ray packs a folder and follows the links), checked against a size limit first.
"""
from __future__ import annotations

import atexit
import dataclasses
import fnmatch
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from engine.errors import JobError

#: What is shipped when the code is not a git checkout.
PACKAGE_PATHS = ["engine", "operators", "jobs", "benchmarks", "models", "samples", "pyproject.toml"]
#: Packages whose untracked Python modules are shipped with the tracked files.
CODE_PACKAGES = ["engine", "operators", "jobs", "benchmarks"]
#: Refuse to ship more than this (MB) unless told otherwise: Ray's packages live in the GCS.
DEFAULT_LIMIT_MB = 100.0
#: Never shipped even when tracked: ignore files would make Ray drop staged files, caches are noise.
NEVER_SHIPPED = [".gitignore", ".rayignore", "**/__pycache__", "**/*.pyc"]


class ShipError(JobError):
    """The code cannot be shipped as asked (over the limit, nothing to ship); the message says why."""


@dataclasses.dataclass
class Shipment:
    """The files of one working directory: `files` maps the path on the cluster (relative, posix) to
    the file here."""
    root: Path
    source: str
    files: dict[str, Path]
    untracked: int = 0
    untracked_modules: int = 0
    skipped: list[str] = dataclasses.field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.files.values())

    def largest(self, n: int = 3) -> list[tuple[str, int]]:
        sizes = sorted(((rel, p.stat().st_size) for rel, p in self.files.items()), key=lambda t: -t[1])
        return sizes[:n]

    def add(self, rel: str, path: Path) -> None:
        self.files[rel] = path

    def describe(self) -> str:
        """One line for a person: what is shipped, from where, and what was left out."""
        line = f"shipping {len(self.files)} files, {megabytes(self.size)} ({self.source} of {self.root})"
        notes = []
        if self.untracked_modules:
            notes.append(f"with {self.untracked_modules} untracked modules of {', '.join(CODE_PACKAGES)}")
        if self.untracked:
            notes.append(f"{self.untracked} untracked files not shipped: `git add` what the job needs")
        if self.skipped:
            notes.append(f"{len(self.skipped)} skipped: {', '.join(self.skipped[:3])}")
        return line + ("; " + "; ".join(notes) if notes else "")

    def check_limit(self, limit_mb: float) -> None:
        if self.size > limit_mb * 1e6:
            big = ", ".join(f"{rel} {megabytes(n)}" for rel, n in self.largest())
            raise ShipError(f"the code to ship is {megabytes(self.size)} in {len(self.files)} files, over the "
                            f"{limit_mb:g} MB limit (largest: {big}); raise it with --max-ship-mb or leave "
                            "big files out of git")


def megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def excluded(rel: str, patterns: list[str]) -> bool:
    """Whether a relative posix path matches a gitignore-like pattern: `name`, `dir/*.x`, `**/name`."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pat in patterns:
        bare = pat.rstrip("/")
        while bare.startswith("**/"):
            bare = bare[3:]
        if "/" in bare:
            if any(fnmatch.fnmatchcase(p, bare) for p in prefixes):
                return True
        elif any(fnmatch.fnmatchcase(part, bare) for part in parts):
            return True
    return False


def _git(root: Path, *args: str) -> list[str] | None:
    """NUL-separated output of a git command in `root`, or None when git cannot answer there."""
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return [p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p]


def list_files(root: Path, excludes: list[str] | None = None) -> Shipment:
    """The files of `root` to ship: git-tracked ones in a checkout, else PACKAGE_PATHS."""
    root = Path(root).resolve()
    patterns = NEVER_SHIPPED + list(excludes or [])
    tracked = _git(root, "ls-files", "-z", "--cached")
    if tracked is not None:
        ship = Shipment(root, "git-tracked files", {})
        untracked = _git(root, "ls-files", "-z", "--others", "--exclude-standard") or []
        modules = [p for p in untracked if p.endswith(".py") and p.split("/", 1)[0] in CODE_PACKAGES]
        candidates = tracked + modules
        ship.untracked, ship.untracked_modules = len(untracked) - len(modules), len(modules)
    else:
        ship = Shipment(root, "package folders", {})
        candidates = []
        for top in PACKAGE_PATHS:
            path = root / top
            if path.is_file():
                candidates.append(top)
            elif path.is_dir():
                candidates += [p.relative_to(root).as_posix() for p in sorted(path.rglob("*"))
                               if p.is_file() or p.is_symlink()]
        if not candidates:
            raise ShipError(f"nothing to ship from {root}: not a git checkout and none of "
                            f"{', '.join(PACKAGE_PATHS)} there")
    for rel in candidates:
        if excluded(rel, patterns):
            continue
        path = root / rel
        if path.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(root):
                ship.skipped.append(f"{rel} (a link out of {root.name})")
                continue
        if path.is_file():  # a tracked file deleted here, or a submodule (a folder), is not shipped
            ship.add(rel, path)
    return ship


def stage(ship: Shipment) -> Path:
    """A temporary folder holding the shipment as symlinks (removed when this process exits)."""
    folder = Path(tempfile.mkdtemp(prefix="decant-ship-"))
    atexit.register(shutil.rmtree, folder, True)
    for rel, path in ship.files.items():
        dest = folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(path.resolve(), dest)
    return folder
