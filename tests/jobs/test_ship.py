"""What `decant submit` ships: git-tracked files (and untracked modules of the code packages), or the
package folders outside git; never local data, outputs or .env files; refused past the limit."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from jobs.paths import WORKING_DIR_EXCLUDES
from jobs.ship import ShipError, excluded, list_files, stage
from jobs.submit import job_file_place, shipment


def write(root: Path, rel: str, data: bytes = b"x = 1\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                            GIT_COMMITTER_EMAIL="t@t"))


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A git checkout of a small package with the kinds of things that lie around in a real one."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "repo"
    for rel in ("engine/core.py", "operators/op.py", "jobs/default.yaml", "pyproject.toml", ".gitignore"):
        write(root, rel)
    (root / ".gitignore").write_text("out/\n*.log\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "init")
    # untracked: a module being written, local data, secrets, an output, an ignored log, a big file
    write(root, "engine/new_module.py")
    write(root, "data/crawl.warc.gz", b"\0" * 5000)
    write(root, ".env", b"AWS_SECRET_ACCESS_KEY=hunter2\n")
    write(root, "operators/.env.local", b"TOKEN=1\n")
    write(root, "out/documents/part-0.parquet", b"\0" * 100)
    write(root, "run.log", b"log\n")
    write(root, "notes.txt", b"todo\n")
    return root


def test_git_checkout_ships_tracked_files_and_new_modules_only(checkout):
    ship = list_files(checkout, WORKING_DIR_EXCLUDES)
    assert set(ship.files) == {"engine/core.py", "operators/op.py", "jobs/default.yaml", "pyproject.toml",
                               "engine/new_module.py"}
    assert ship.untracked_modules == 1
    # .env, .env.local, data/ and notes.txt are untracked and not shipped (out/ and run.log are ignored)
    assert ship.untracked == 4
    line = ship.describe()
    assert "5 files" in line and "4 untracked files not shipped" in line
    # a tracked file deleted in the checkout is not shipped (nor does listing fail)
    (checkout / "operators" / "op.py").unlink()
    assert "operators/op.py" not in list_files(checkout).files


def test_a_tracked_link_out_of_the_checkout_is_not_followed(checkout, tmp_path):
    secret = write(tmp_path, "elsewhere/id_rsa", b"PRIVATE")
    (checkout / "engine" / "key").symlink_to(secret)
    (checkout / "engine" / "alias.py").symlink_to(checkout / "engine" / "core.py")
    git(checkout, "add", "engine/key", "engine/alias.py")
    ship = list_files(checkout)
    assert "engine/key" not in ship.files and any("engine/key" in s for s in ship.skipped)
    assert "engine/alias.py" in ship.files


def test_outside_git_the_package_folders_are_shipped(tmp_path):
    root = tmp_path / "plain"
    for rel in ("engine/core.py", "engine/sub/x.py", "models/en.bin", "pyproject.toml"):
        write(root, rel)
    write(root, "engine/__pycache__/core.cpython-311.pyc")
    write(root, "data/crawl.warc.gz", b"\0" * 100)
    write(root, ".env", b"SECRET=1\n")
    write(root, "README.md")
    ship = list_files(root, WORKING_DIR_EXCLUDES)
    assert ship.source == "package folders"
    assert set(ship.files) == {"engine/core.py", "engine/sub/x.py", "models/en.bin", "pyproject.toml"}
    with pytest.raises(ShipError, match="nothing to ship"):
        list_files(tmp_path / "plain" / "data")


def test_limit_refuses_with_the_sizes(checkout):
    write(checkout, "models/big.bin", b"\0" * 300_000)
    git(checkout, "add", "models/big.bin")
    ship = list_files(checkout)
    ship.check_limit(1.0)
    with pytest.raises(ShipError, match=r"0\.3 MB in 6 files, over the 0\.2 MB limit \(largest: models/big\.bin"):
        ship.check_limit(0.2)


def test_staging_mirrors_the_listing_and_the_job_file(checkout, tmp_path):
    job = write(tmp_path, "my job.yaml", b"pipeline:\n  - langid: {}\n")
    ship, job_arg = shipment(str(job), str(checkout))
    assert job_arg.startswith(".decant-job-") and job_arg.endswith(".yaml")
    # the name comes from the content: the same job file ships under the same name
    assert job_file_place(str(job), checkout)[0] == job_arg
    # a job file inside the shipped folder keeps its path there
    inside, inside_arg = shipment(str(checkout / "jobs" / "default.yaml"), str(checkout))
    assert inside_arg == "jobs/default.yaml" and not any(r.startswith(".decant-job-") for r in inside.files)
    folder = stage(ship)
    staged = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_symlink()}
    assert staged == set(ship.files)
    assert (folder / job_arg).read_bytes() == job.read_bytes()
    assert not (folder / ".env").exists() and not (folder / "data").exists()


@pytest.mark.parametrize(("rel", "hit"), [
    ("out/documents/x.parquet", True), ("engine/__pycache__/a.pyc", True), (".env", True),
    ("operators/.env.prod", True), ("docker/data/x", True), ("docker/x.tar", True), ("engine/out.py", False),
    ("outline.md", False), ("jobs/default.yaml", False),
])
def test_exclude_patterns(rel, hit):
    assert excluded(rel, WORKING_DIR_EXCLUDES) is hit
