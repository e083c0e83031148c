"""The shard loop: accounting, resume, determinism, bad shards, operator failures, storage retries."""
from __future__ import annotations

import json

import pytest

from engine.errors import JobError
from jobs.runjob import run_job
from operators.writers import read_documents, read_rejects, sort_by_id
from support import SLOW_JOB, drop_sevens_job, slow_attempt, slow_input


def test_accounting_every_document_kept_or_rejected(shards, tmp_path):
    out = tmp_path / "out"
    stats = run_job(drop_sevens_job(), inputs=shards, out=str(out))
    t = stats["total"]
    assert t["documents_read"] == 120
    assert t["accounting_ok"] and t["documents_read"] == t["documents_kept"] + t["documents_dropped"]
    docs, rej = read_documents(str(out)), read_rejects(str(out))
    kept, dropped = set(docs.column("id").to_pylist()), set(rej.column("id").to_pylist())
    assert kept.isdisjoint(dropped)
    assert kept | dropped == {f"doc-{i:04d}" for i in range(120)}
    assert dropped == {f"doc-{i:04d}" for i in range(120) if i % 10 == 7}
    assert set(rej.column("reason").to_pylist()) == {"ends_in_seven"}
    assert stats["operators"]["test_drop_sevens"]["dropped"] == {"ends_in_seven": 12}
    # input fields other than id/text survive as columns; internal columns never reach the output
    assert {"lang_hint", "n", "test_drop_sevens_flag"} <= set(docs.schema.names)
    assert not any(c.startswith("_") for c in docs.schema.names)
    # no partially written files anywhere
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp-")]
    written = json.loads((out / "stats.json").read_text())
    assert written["total"] == t


def test_resume_skips_finished_shards_and_redoes_missing(shards, tmp_path):
    out = tmp_path / "out"
    run_job(drop_sevens_job(), inputs=shards, out=str(out))
    first = sort_by_id(read_documents(str(out)))
    manifest = out / "_work" / "manifest" / "stage-0"
    mtimes = {p.name: p.stat().st_mtime_ns for p in manifest.iterdir()}
    done: list[str] = []
    run_job(drop_sevens_job(), inputs=shards, out=str(out), on_done=lambda r: done.append(r.unit))
    assert {p.name: p.stat().st_mtime_ns for p in manifest.iterdir()} == mtimes  # nothing redone
    (manifest / "shard-000001.json").unlink()  # as if the job died while shard 1 ran
    done.clear()
    stats = run_job(drop_sevens_job(), inputs=shards, out=str(out), on_done=lambda r: done.append(r.unit))
    assert done == ["stage-0/shard-000001"]
    assert (manifest / "shard-000000.json").stat().st_mtime_ns == mtimes["shard-000000.json"]
    assert sort_by_id(read_documents(str(out))).equals(first)  # same content, nothing written twice
    assert stats["total"]["accounting_ok"] and stats["total"]["documents_read"] == 120


def test_output_folder_of_another_job_is_refused(shards, tmp_path):
    out = str(tmp_path / "out")
    run_job(drop_sevens_job(), inputs=shards[:1], out=out)
    with pytest.raises(JobError, match="another job"):
        run_job(drop_sevens_job(), inputs=shards, out=out)


def test_same_output_whatever_the_worker_count(shards, tmp_path):
    a = run_job(drop_sevens_job(), inputs=shards, out=str(tmp_path / "a"), workers=1)
    b = run_job(drop_sevens_job(), inputs=shards, out=str(tmp_path / "b"), workers=2)
    assert a["total"] == b["total"]
    assert sort_by_id(read_documents(str(tmp_path / "a"))).equals(sort_by_id(read_documents(str(tmp_path / "b"))))
    names_a = sorted(p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a" / "documents").rglob("*.parquet"))
    names_b = sorted(p.relative_to(tmp_path / "b").as_posix() for p in (tmp_path / "b" / "documents").rglob("*.parquet"))
    assert names_a == names_b


def test_a_broken_shard_is_recorded_and_the_others_go_on(shards, shared_data, tmp_path):
    clipped = str(shared_data / "warc" / "edge" / "clipped.warc.gz")
    stats = run_job({"pipeline": [], "executor": {"workers": 1}}, inputs=[clipped, shards[0]], out=str(tmp_path / "o"))
    assert stats["total"]["shard_errors"] >= 1
    assert any("clipped.warc.gz" in e for e in stats["reader"]["errors"])
    assert stats["total"]["accounting_ok"]
    ids = set(read_documents(str(tmp_path / "o")).column("id").to_pylist())
    assert {f"doc-{i:04d}" for i in range(40)} <= ids


def test_stage_output_survives_a_column_typed_differently_across_batches(shards, tmp_path):
    # the first batch of a shard has the signal all-null (type null), later batches have strings: the
    # stage output before a global operator must keep every batch (it crashed casting string to null)
    out = tmp_path / "out"
    job = drop_sevens_job(pipeline=[{"test_null_first": {}}, {"line_dedup": {}}])
    stats = run_job(job, inputs=shards[:1], out=str(out))
    assert stats["total"]["accounting_ok"] and stats["total"]["documents_read"] == 40
    docs = read_documents(str(out))
    tags = {t for t in docs.column("test_null_first_tag").to_pylist() if t}
    assert tags and all(int(t[-2:]) >= 16 for t in tags)


def test_two_attempts_of_one_shard_at_once(tmp_path):
    # the pool worker of a killed driver still finishes its shard while the resumed driver runs the
    # same shard: they shared one staging folder, so one attempt's commit renamed the other's files
    # (half written) into OUT and the other crashed on a missing file
    import multiprocessing as mp
    src, out = slow_input(tmp_path), str(tmp_path / "out")
    from engine.plan import prepare_output
    from jobs.runjob import plan_job
    prepare_output(plan_job(SLOW_JOB, [src], out)[0])
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=slow_attempt, args=(out, src, d)) for d in (0.0, 2.0)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    stats = run_job({**SLOW_JOB, "executor": {"batch_size": 5, "workers": 1}}, inputs=[src], out=out)
    assert stats["total"]["documents_kept"] == 200
    assert sorted(read_documents(out).column("id").to_pylist()) == [f"d{i:04d}" for i in range(200)]


def test_finish_drops_the_global_operators_intermediate_files(shards, tmp_path):
    # finish() removed only the map output: line_dedup's hash pieces and the apply tables stayed
    # in OUT/_work for ever (as large as the corpus's line hashes); a re-run still resumes to the end
    out = tmp_path / "out"
    job = drop_sevens_job(pipeline=[{"test_drop_sevens": {}}, {"line_dedup": {}}])
    first = run_job(job, inputs=shards, out=str(out))
    assert sorted(p.name for p in (out / "_work").iterdir()) == ["job.json", "manifest", "units.json"]
    again = run_job(job, inputs=shards, out=str(out))
    assert again["total"] == first["total"]


def test_operator_error_fails_the_job_without_running_the_queued_shards(tmp_path):
    # the error of shard 0 surfaced only after every queued shard had run (hours late on a big job)
    src = []
    for s in range(8):
        p = tmp_path / f"shard-{s}.jsonl"
        p.write_text("".join(json.dumps({"id": f"{s}-{i}", "text": "t"}) + "\n" for i in range(100)))
        src.append(str(p))
    job = {"plugins": ["decant_test_plugins"], "pipeline": [{"test_fail_first_shard": {}}, {"test_slow": {}}],
           "executor": {"batch_size": 5}}
    with pytest.raises(ValueError, match="operator bug"):
        run_job(job, inputs=src, out=str(tmp_path / "o"), workers=2)
    finished = list((tmp_path / "o" / "_work" / "manifest" / "stage-0").glob("*.json"))
    assert len(finished) <= 5  # the running ones and the pool's pre-queued call; not all 7


def test_an_operator_that_loses_rows_fails_the_job_naming_it(shards, tmp_path):
    job = drop_sevens_job()
    job["pipeline"] = [{"test_loses_rows": {}}]
    with pytest.raises(RuntimeError, match="test_loses_rows.*returned"):
        run_job(job, inputs=shards[:1], out=str(tmp_path / "o"))


def test_a_storage_failure_mid_shard_is_retried_not_recorded_as_damage(shared_data, tmp_path):
    """A reset connection halfway through a real WARC: the shard is read again, and the output is the
    same as from healthy storage (a shorter shard would silently lose documents)."""
    from decant_test_plugins import FlakyFileSystem
    warc = str(shared_data / "warc" / "cc-main-2020-34-sample.warc.gz")
    job = {"plugins": ["decant_test_plugins"], "pipeline": [], "executor": {"workers": 1}}
    ref = run_job(job, inputs=[warc], out=str(tmp_path / "ref"))
    FlakyFileSystem.failures[warc] = 2
    stats = run_job(job, inputs=[f"flaky://{warc}"], out=str(tmp_path / "flaky"))
    assert FlakyFileSystem.failures[warc] == 0  # both failures happened, and were retried
    assert stats["total"]["shard_errors"] == 0
    assert stats["total"]["documents_read"] == ref["total"]["documents_read"] == 16
    assert sort_by_id(read_documents(str(tmp_path / "flaky"))).equals(sort_by_id(read_documents(str(tmp_path / "ref"))))


def test_storage_that_keeps_failing_fails_the_job_and_leaves_the_shard_to_redo(shared_data, tmp_path):
    from decant_test_plugins import FlakyFileSystem
    warc = str(shared_data / "warc" / "web-2024-sample-0000.warc.gz")
    FlakyFileSystem.failures[warc] = 100
    job = {"plugins": ["decant_test_plugins"], "pipeline": [], "executor": {"workers": 1, "max_retries": 1}}
    out = tmp_path / "o"
    with pytest.raises(RuntimeError, match="storage kept failing after 2 attempts"):
        run_job(job, inputs=[f"flaky://{warc}"], out=str(out))
    assert not (out / "_work" / "manifest" / "stage-0" / "shard-000000.json").exists()
    FlakyFileSystem.failures[warc] = 0  # the storage is back: a re-run resumes and reads it whole
    stats = run_job(job, inputs=[f"flaky://{warc}"], out=str(out))
    assert stats["total"]["documents_read"] == 22 and stats["total"]["shard_errors"] == 0
