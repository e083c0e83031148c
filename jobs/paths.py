"""Where the project's own files are: the repository, the default job, the bundled samples, and
what of the repository is never shipped to a cluster."""
from __future__ import annotations

from operators.paths import REPO_ROOT
DEFAULT_JOB = REPO_ROOT / "jobs" / "default.yaml"
SAMPLES = REPO_ROOT / "samples"
#: Packages whose modules register the bundled operators, readers and writers.
PACKAGES = ["operators"]

#: Never shipped to a cluster with the code (Ray's working_dir is limited in size, and these are
#: outputs, caches or history).
WORKING_DIR_EXCLUDES = [
    ".git", "out", "bench-results", "**/__pycache__", "*.egg-info", "**/*.pyc", ".pytest_cache",
    ".venv", "**/_work", ".decant-job-*.yaml", "docker/*.tar", "docker/data", ".ruff_cache", ".benchmarks",
]


def working_dir_env(excludes: list[str] | None = None) -> dict:
    """A Ray runtime_env that ships the repository as the job's working directory."""
    return {"working_dir": str(REPO_ROOT), "excludes": list(WORKING_DIR_EXCLUDES) + list(excludes or [])}
