"""Output on an fsspec memory:// filesystem, from the driver and from worker processes."""
from __future__ import annotations

import pytest

from engine import io as eio
from jobs.runjob import run_job
from operators.writers import read_documents
from support import drop_sevens_job


def test_memory_filesystem_output(shards, tmp_path):
    stats = run_job(drop_sevens_job(), inputs=shards[:2], out="memory://decant-test/out")
    assert stats["total"]["documents_kept"] == 72
    docs = read_documents("memory://decant-test/out")
    assert docs.num_rows == 72
    assert eio.exists("memory://decant-test/out/stats.json")


def test_memory_filesystem_output_with_worker_processes(shards):
    # memory:// is per process: with a pool of 2 (the job default) the workers wrote into their own
    # memory, and the driver finished with an empty output and "accounting_ok" (0 = 0 + 0)
    stats = run_job(drop_sevens_job(), inputs=shards[:2], out="memory://decant-test-pool/out", workers=2)
    assert stats["total"]["documents_read"] == 80 and stats["total"]["documents_kept"] == 72
    assert read_documents("memory://decant-test-pool/out").num_rows == 72


@pytest.mark.parametrize("path", ["/tmp/x/y.parquet", "rel/a/", "~/x", "/tmp//x/./y/", "/", ".", "a b/c"])
def test_a_local_path_is_what_fsspec_makes_of_it(path):
    """Local paths skip fsspec's URL parsing (hundreds of files a unit): same filesystem kind, same path."""
    import fsspec

    fs, _, paths = fsspec.get_fs_token_paths(path)
    mine, p = eio.fs_and_path(path)
    assert p == paths[0] and mine.protocol == fs.protocol and eio.is_local(mine)


def test_version_changes_when_a_file_is_rewritten(tmp_path):
    path = str(tmp_path / "t.bin")
    assert eio.version(path) is None
    assert eio.version(str(tmp_path)) is None          # a folder is not a file
    eio.write_bytes_atomic(b"abcd", path)
    first = eio.version(path)
    assert first is not None and eio.version(path) == first
    eio.write_bytes_atomic(b"wxyz", path)             # same size, a new file in its place
    assert eio.version(path) != first
