"""Where the project's own files are: the repository, the default job, the bundled samples, and
what of the repository is never shipped to a cluster."""
from __future__ import annotations

from operators.paths import REPO_ROOT

DEFAULT_JOB = REPO_ROOT / "jobs" / "default.yaml"
SAMPLES = REPO_ROOT / "samples"
#: Packages whose modules register the bundled operators, readers and writers.
PACKAGES = ["operators"]

#: Never shipped to a cluster with the code, even when tracked (outputs, caches, history); the code
#: shipped is the repository's git-tracked files to begin with (jobs.ship).
WORKING_DIR_EXCLUDES = [
    ".git", "out", "bench-results", "**/__pycache__", "*.egg-info", "**/*.pyc", ".pytest_cache",
    ".venv", "**/_work", ".decant-job-*.yaml", "docker/*.tar", "docker/data", ".ruff_cache", ".benchmarks",
    ".env", ".env.*",
]


def working_dir_env(excludes: list[str] | None = None) -> dict:
    """A Ray runtime_env whose working directory is the repository's shipped files (jobs.ship),
    staged in a temporary folder; a JobError when they are over the size limit."""
    from jobs.ship import DEFAULT_LIMIT_MB, list_files, stage

    ship = list_files(REPO_ROOT, WORKING_DIR_EXCLUDES + list(excludes or []))
    ship.check_limit(DEFAULT_LIMIT_MB)
    return {"working_dir": str(stage(ship))}
