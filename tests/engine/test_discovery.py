"""Input discovery on a hostile folder: links that loop or lead nowhere, FIFOs, sockets, devices,
empty files and earlier decant outputs are skipped and named; the intact shards are read whole."""
from __future__ import annotations

import os
import shutil
import socket

import pytest

from engine.discovery import find_inputs
from jobs.runjob import run_job
from operators.writers import read_documents, sort_by_id
from support import REPO

SAMPLE = REPO / "samples" / "cc-main-2024-22-whirlwind.warc.wet.gz"
JOB = {"pipeline": [{"langid": {}}], "executor": {"workers": 1}}


@pytest.fixture
def hostile(tmp_path):
    d = tmp_path / "crawl"
    (d / "sub").mkdir(parents=True)
    shutil.copy(SAMPLE, d / "good.wet.gz")
    shutil.copy(SAMPLE, d / "sub" / "good2.wet.gz")
    os.symlink(d, d / "sub" / "loop")                      # a folder link back up: a loop
    os.symlink(d / "nowhere.wet.gz", d / "dangling.wet.gz")
    os.symlink(d / "self", d / "self")                     # a link to itself
    os.mkfifo(d / "pipe.wet.gz")                           # opening it would block forever
    os.symlink("/dev/null", d / "device.wet.gz")           # a character device
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "sock.wet.gz"))
    (d / "empty.jsonl").write_bytes(b"")
    yield d
    sock.close()


def test_find_inputs_names_every_bad_entry(hostile):
    found = find_inputs([str(hostile)])
    assert found.files == sorted([str(hostile / "good.wet.gz"), str(hostile / "sub" / "good2.wet.gz")])
    reasons = {os.path.relpath(k, hostile): v for k, v in found.skipped.items()}
    assert reasons["dangling.wet.gz"] == "dangling symlink"
    assert reasons["self"] == "symlink loop"
    assert reasons["sub/loop"].startswith("symlink loop")
    assert reasons["pipe.wet.gz"].startswith("a FIFO")
    assert reasons["sock.wet.gz"].startswith("a socket")
    assert reasons["device.wet.gz"].startswith("a character device")
    assert reasons["empty.jsonl"] == "empty file (0 bytes)"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_skipped(tmp_path):
    p = tmp_path / "secret.jsonl"
    p.write_text('{"id": "a", "text": "x"}\n')
    p.chmod(0)
    assert find_inputs([str(tmp_path)]).skipped == {str(p): "unreadable: permission denied"}


def test_job_over_hostile_folder_keeps_what_the_good_shards_keep(hostile, tmp_path):
    alone = run_job(JOB, inputs=[str(SAMPLE)], out=str(tmp_path / "alone"))
    stats = run_job(JOB, inputs=[str(hostile)], out=str(tmp_path / "all"))
    assert stats["input"]["files"] == 2 and len(stats["input"]["skipped"]) == 7
    assert stats["total"]["accounting_ok"]
    assert stats["total"]["documents_read"] == 2 * alone["total"]["documents_read"]
    # the copy in sub/ repeats the first shard's record ids: kept once, the repeats rejected as such
    assert stats["operators"]["unique_ids"]["dropped"] == {"duplicate_id": alone["total"]["documents_kept"]}
    docs = sort_by_id(read_documents(str(tmp_path / "all")))
    assert docs.num_rows == alone["total"]["documents_kept"] > 0
    ref = sort_by_id(read_documents(str(tmp_path / "alone")))
    assert docs.drop_columns(["source"]).equals(ref.drop_columns(["source"]))
    assert all(s.startswith("good.wet.gz:") for s in docs.column("source").to_pylist())  # the first copy won


def test_output_inside_the_input_is_never_read(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    shutil.copy(SAMPLE, d / "a.wet.gz")
    first = run_job(JOB, inputs=[str(d)], out=str(d / "out"))
    assert first["input"]["files"] == 1
    second = run_job(JOB, inputs=[str(d)], out=str(d / "out2"))
    assert second["input"]["files"] == 1
    assert second["input"]["skipped"] == {str(d / "out"): "a decant output folder (holds _work/job.json)"}
    assert second["total"]["documents_read"] == first["total"]["documents_read"]
    # a re-run into out2 (now holding an output too) resumes: out2 is this job's own output folder
    again = run_job(JOB, inputs=[str(d)], out=str(d / "out2"))
    assert again["total"] == second["total"]
    assert sort_by_id(read_documents(str(d / "out2"))).equals(sort_by_id(read_documents(str(d / "out"))))


def test_a_file_gone_between_discovery_and_reading_is_a_shard_error(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    shutil.copy(SAMPLE, d / "a.wet.gz")
    (d / "b.jsonl").write_text('{"id": "b1", "text": "hello there"}\n')
    stats = run_job({"pipeline": [], "executor": {"workers": 1}}, inputs=[str(d)], out=str(tmp_path / "o"),
                    on_plan=lambda plan, graph: os.remove(d / "b.jsonl"))
    assert stats["total"]["accounting_ok"] and stats["total"]["documents_kept"] > 0
    assert any(e.startswith("b.jsonl: cannot open: FileNotFoundError") for e in stats["reader"]["errors"])
