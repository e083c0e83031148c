"""The runtime: job validation, accounting, partitioned output, resume, determinism, bad shards."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from engine import io as eio
from engine.documents import TEXT, texts
from engine.graph import JobError, apply_sets, build, load_job
import decant_test_plugins  # noqa: F401  (registers test_drop_sevens in this process too)
from jobs.runjob import run_job
from operators.writers import read_documents, read_rejects, sort_by_id


def _sentences(shared_data: Path, lang: str, n: int) -> list[str]:
    lines = (shared_data / "text" / "lingua" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
    return [l.strip() for l in lines if l.strip()][:n]


@pytest.fixture(scope="module")
def shards(tmp_path_factory, shared_data) -> list[str]:
    """Three JSONL shards of real multilingual documents, with some documents repeated across shards."""
    d = tmp_path_factory.mktemp("shards")
    rng = random.Random(7)
    pool = {lang: _sentences(shared_data, lang, 300) for lang in ("en", "de", "fr", "ru")}
    docs = []
    for i in range(120):
        lang = ["en", "de", "fr", "ru"][i % 4]
        docs.append({"id": f"doc-{i:04d}", "text": "\n".join(rng.sample(pool[lang], 6)), "lang_hint": lang,
                     "n": i})
    paths = []
    for s in range(3):
        p = d / f"shard-{s}.jsonl"
        with open(p, "w", encoding="utf-8") as f:
            for doc in docs[s * 40:(s + 1) * 40]:
                f.write(json.dumps(doc, ensure_ascii=False) + "\n")
        paths.append(str(p))
    return paths


def _job(**over):
    job = {"plugins": ["decant_test_plugins"], "pipeline": [{"test_drop_sevens": {}}],
           "executor": {"workers": 1, "batch_size": 16}}
    job.update(over)
    return job


def test_validation_names_the_place():
    with pytest.raises(JobError, match=r"pipeline\[1\]\.nonexistent: unknown operator"):
        build({"pipeline": [{"test_drop_sevens": {}}, {"nonexistent": {}}]})
    with pytest.raises(JobError, match=r"plugins\[0\]: cannot import"):
        build({"plugins": ["no_such_module_xyz"]})
    with pytest.raises(JobError, match=r"pipeline\[0\]\.test_drop_sevens\.bogus"):
        build({"pipeline": [{"test_drop_sevens": {"bogus": 1}}]})
    with pytest.raises(JobError, match=r"outptu"):
        build({"outptu": {}})
    with pytest.raises(JobError, match=r"executor\.workers"):
        build({"executor": {"workers": 0}})


def test_set_overrides_address_steps_by_name_and_index():
    data = {"pipeline": [{"a": {"x": 1}}, {"b": None}], "executor": {"workers": 2}}
    out = apply_sets(data, ["pipeline.a.x=3", "pipeline.1.b.y=[1, 2]", "executor.workers=4", "output.format=jsonl"])
    assert out["pipeline"][0]["a"]["x"] == 3
    assert out["pipeline"][1]["b"]["y"] == [1, 2]
    assert out["executor"]["workers"] == 4 and out["output"]["format"] == "jsonl"
    assert data["pipeline"][0]["a"]["x"] == 1  # the original is untouched
    with pytest.raises(JobError):
        apply_sets(data, ["pipeline.zzz.x=1"])


def test_default_job_file_validates():
    build(load_job(None))


def test_accounting_every_document_kept_or_rejected(shards, tmp_path):
    out = tmp_path / "out"
    stats = run_job(_job(), inputs=shards, out=str(out))
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
    run_job(_job(), inputs=shards, out=str(out))
    first = sort_by_id(read_documents(str(out)))
    manifest = out / "_work" / "manifest" / "stage-0"
    mtimes = {p.name: p.stat().st_mtime_ns for p in manifest.iterdir()}
    done: list[str] = []
    run_job(_job(), inputs=shards, out=str(out), on_done=lambda r: done.append(r["unit"]))
    assert {p.name: p.stat().st_mtime_ns for p in manifest.iterdir()} == mtimes  # nothing redone
    (manifest / "shard-000001.json").unlink()  # as if the job died while shard 1 ran
    done.clear()
    stats = run_job(_job(), inputs=shards, out=str(out), on_done=lambda r: done.append(r["unit"]))
    assert done == ["stage-0/shard-000001"]
    assert (manifest / "shard-000000.json").stat().st_mtime_ns == mtimes["shard-000000.json"]
    assert sort_by_id(read_documents(str(out))).equals(first)  # same content, nothing written twice
    assert stats["total"]["accounting_ok"] and stats["total"]["documents_read"] == 120


def test_output_folder_of_another_job_is_refused(shards, tmp_path):
    out = str(tmp_path / "out")
    run_job(_job(), inputs=shards[:1], out=out)
    with pytest.raises(JobError, match="another job"):
        run_job(_job(), inputs=shards, out=out)


def test_same_output_whatever_the_worker_count(shards, tmp_path):
    a = run_job(_job(), inputs=shards, out=str(tmp_path / "a"), workers=1)
    b = run_job(_job(), inputs=shards, out=str(tmp_path / "b"), workers=2)
    assert a["total"] == b["total"]
    assert sort_by_id(read_documents(str(tmp_path / "a"))).equals(sort_by_id(read_documents(str(tmp_path / "b"))))
    names_a = sorted(p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a" / "documents").rglob("*.parquet"))
    names_b = sorted(p.relative_to(tmp_path / "b").as_posix() for p in (tmp_path / "b" / "documents").rglob("*.parquet"))
    assert names_a == names_b


def test_jsonl_output_rolls_files_by_size(shards, tmp_path):
    out = tmp_path / "out"
    run_job(_job(output={"format": "jsonl", "max_file_bytes": 4000}), inputs=shards, out=str(out))
    parts = sorted((out / "documents").rglob("*.jsonl.gz"))
    assert len(parts) > 3  # several parts per shard: the size limit rolled them
    assert {p.name.split("-")[1] for p in parts} == {"000000", "000001", "000002"}
    docs = read_documents(str(out))
    assert docs.num_rows == 108
    assert all(t for t in docs.column(TEXT).to_pylist())


def test_memory_filesystem_output(shards, tmp_path):
    stats = run_job(_job(), inputs=shards[:2], out="memory://decant-test/out")
    assert stats["total"]["documents_kept"] == 72
    docs = read_documents("memory://decant-test/out")
    assert docs.num_rows == 72
    assert eio.exists("memory://decant-test/out/stats.json")


def test_a_broken_shard_is_recorded_and_the_others_go_on(shards, shared_data, tmp_path):
    clipped = str(shared_data / "warc" / "edge" / "clipped.warc.gz")
    stats = run_job({"pipeline": [], "executor": {"workers": 1}}, inputs=[clipped, shards[0]], out=str(tmp_path / "o"))
    assert stats["total"]["shard_errors"] >= 1
    assert any("clipped.warc.gz" in e for e in stats["reader"]["errors"])
    assert stats["total"]["accounting_ok"]
    ids = set(read_documents(str(tmp_path / "o")).column("id").to_pylist())
    assert {f"doc-{i:04d}" for i in range(40)} <= ids


def test_cli_run_default_job_on_bundled_samples(tmp_path, repo):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "jobs.cli", "run", "-o", str(out), "--workers", "2", "-q"],
                          cwd=repo, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["total"]["accounting_ok"]
    assert stats["total"]["documents_kept"] > 0
    assert list((out / "documents").glob("language=*/bucket=*/*.parquet"))
    assert "documents read" in proc.stdout


def test_expand_multi_value_input_flag():
    from jobs.cli import expand_multi_value
    assert expand_multi_value(["run", "job.yaml", "-i", "a", "b", "-o", "x", "--input", "c"]) == \
        ["run", "job.yaml", "-i", "a", "-i", "b", "-o", "x", "--input", "c"]
    assert expand_multi_value(["run", "-i", "-weird-name"]) == ["run", "-i", "-weird-name"]
    # design.md's `[--set key.path=value ...]`: several overrides after one flag; a job file is not one
    assert expand_multi_value(["run", "--set", "a.b=1", "c=2", "job.yaml", "-i", "x"]) == \
        ["run", "--set", "a.b=1", "--set", "c=2", "job.yaml", "-i", "x"]


def test_cli_every_shared_warc_and_wet_file(tmp_path, repo, shared_data):
    """Issue 2's bar: every file of shared/data/warc (with edge/) and wet through the default job:
    exit 0, every document kept or rejected with a reason, every broken shard named."""
    files = sorted(str(p) for d in ("warc", "warc/edge", "wet") for p in (shared_data / d).iterdir() if p.is_file())
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "jobs.cli", "run", "-i", *files, "-o", str(out), "-q"],
                          cwd=repo, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["job"]["inputs"] == len(files)
    assert stats["total"]["accounting_ok"]
    errors = " ".join(stats["reader"]["errors"])
    for broken in ("clipped.warc.gz", "warcio-bad.arc", "warcio-example-space-in-url.arc"):
        assert broken in errors
    rejects = read_rejects(str(out))
    assert rejects.num_rows == stats["total"]["documents_dropped"]
    assert "binary_payload" in set(rejects.column("reason").to_pylist())
    assert read_documents(str(out)).num_rows == stats["total"]["documents_kept"] > 0


def test_stage_output_survives_a_column_typed_differently_across_batches(shards, tmp_path):
    # the first batch of a shard has the signal all-null (type null), later batches have strings: the
    # stage output before a global operator must keep every batch (it crashed casting string to null)
    out = tmp_path / "out"
    job = _job(pipeline=[{"test_null_first": {}}, {"line_dedup": {}}])
    stats = run_job(job, inputs=shards[:1], out=str(out))
    assert stats["total"]["accounting_ok"] and stats["total"]["documents_read"] == 40
    docs = read_documents(str(out))
    tags = {t for t in docs.column("test_null_first_tag").to_pylist() if t}
    assert tags and all(int(t[-2:]) >= 16 for t in tags)


def test_input_language_column_that_is_not_a_string(tmp_path):
    # a JSONL input's own `language` field is kept as a column and partitions the output: an int
    # there crashed the writer (str.strip on a number) and failed the whole job
    src = tmp_path / "lang.jsonl"
    src.write_text("".join(json.dumps({"id": str(i), "text": f"hello world {i}", "language": 5}) + "\n"
                           for i in range(4)))
    out = tmp_path / "out"
    stats = run_job({"pipeline": [], "executor": {"workers": 1}}, inputs=[str(src)], out=str(out))
    assert stats["total"]["documents_kept"] == 4 and stats["total"]["accounting_ok"]
    assert list((out / "documents").iterdir())[0].name == "language=5"


def test_cli_input_matching_no_file_is_a_clear_error(tmp_path, repo):
    # was an uncaught FileNotFoundError with a traceback; now the CLI's job error (exit 2)
    with pytest.raises(JobError, match="matches no file"):
        run_job(_job(), inputs=[str(tmp_path / "missing.jsonl")], out=str(tmp_path / "o"))
    r = subprocess.run([sys.executable, "-m", "jobs.cli", "run", "-i", str(tmp_path / "missing.jsonl"),
                        "-o", str(tmp_path / "o"), "-q"], cwd=repo, capture_output=True, text=True)
    assert r.returncode == 2 and "matches no file" in r.stderr and "Traceback" not in r.stderr


def test_cli_dedup_bad_parameter_is_a_clear_error(tmp_path, repo, shards):
    # a bad --threshold or --bands without --rows was an uncaught JobError with a traceback
    for extra in (["--threshold", "1.5"], ["--bands", "4"]):
        r = subprocess.run([sys.executable, "-m", "jobs.cli", "dedup", "-i", shards[0], "-o", str(tmp_path / "o"),
                            *extra], cwd=repo, capture_output=True, text=True)
        assert r.returncode == 2 and "error" in r.stderr and "Traceback" not in r.stderr, r.stderr[-500:]


def test_cli_unknown_executor_is_a_clear_error(tmp_path, repo, shards):
    r = subprocess.run([sys.executable, "-m", "jobs.cli", "run", "-i", shards[0], "-o", str(tmp_path / "o"),
                        "--executor", "foo", "-q"], cwd=repo, capture_output=True, text=True)
    assert r.returncode == 2 and "unknown executor" in r.stderr and "Traceback" not in r.stderr


def test_memory_filesystem_output_with_worker_processes(shards):
    # memory:// is per process: with a pool of 2 (the job default) the workers wrote into their own
    # memory, and the driver finished with an empty output and "accounting_ok" (0 = 0 + 0)
    stats = run_job(_job(), inputs=shards[:2], out="memory://decant-test-pool/out", workers=2)
    assert stats["total"]["documents_read"] == 80 and stats["total"]["documents_kept"] == 72
    assert read_documents("memory://decant-test-pool/out").num_rows == 72


_SLOW_JOB = {"plugins": ["decant_test_plugins"], "pipeline": [{"test_slow": {}}], "executor": {"batch_size": 5}}


def _slow_attempt(out: str, src: str, delay: float) -> None:
    import time

    from engine.runner import run_shard_stage
    from jobs.runjob import plan_job
    time.sleep(delay)
    plan, _ = plan_job(_SLOW_JOB, [src], out)
    run_shard_stage(plan, 0, 0)


def _slow_input(tmp_path) -> str:
    src = tmp_path / "big.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i:04d}", "text": f"text number {i}"}) + "\n" for i in range(200)))
    return str(src)


def test_two_attempts_of_one_shard_at_once(tmp_path):
    # the pool worker of a killed driver still finishes its shard while the resumed driver runs the
    # same shard: they shared one staging folder, so one attempt's commit renamed the other's files
    # (half written) into OUT and the other crashed on a missing file
    import multiprocessing as mp
    src, out = _slow_input(tmp_path), str(tmp_path / "out")
    from engine.runner import prepare_output
    from jobs.runjob import plan_job
    prepare_output(plan_job(_SLOW_JOB, [src], out)[0])
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_slow_attempt, args=(out, src, d)) for d in (0.0, 2.0)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    stats = run_job({**_SLOW_JOB, "executor": {"batch_size": 5, "workers": 1}}, inputs=[src], out=out)
    assert stats["total"]["documents_kept"] == 200
    assert sorted(read_documents(out).column("id").to_pylist()) == [f"d{i:04d}" for i in range(200)]


def test_pool_workers_end_with_a_killed_driver(tmp_path, repo):
    # a killed driver left its pool workers running forever (they finished their shard first)
    import signal
    import time
    src = _slow_input(tmp_path)
    code = ("import sys; from jobs.runjob import run_job; "
            f"run_job({_SLOW_JOB!r}, inputs=[{src!r}, {src!r} + '.copy'], out={str(tmp_path / 'o')!r}, workers=2)")
    Path(src + ".copy").write_text(Path(src).read_text())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), str(repo / "tests")])}
    drv = subprocess.Popen([sys.executable, "-c", code], cwd=repo, env=env)
    children: list[int] = []
    for _ in range(100):
        time.sleep(0.1)
        children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == drv.pid]
        if len(children) >= 2:
            break
    time.sleep(1.0)
    drv.send_signal(signal.SIGKILL)
    drv.wait()
    assert children
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{c}").exists() for c in children):
        time.sleep(0.2)
    alive = [c for c in children if Path(f"/proc/{c}").exists()]
    for c in alive:
        os.kill(c, signal.SIGKILL)
    assert not alive


def _ppid(proc: Path) -> int:
    try:
        for line in (proc / "status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def test_finish_drops_the_global_operators_intermediate_files(shards, tmp_path):
    # finish() removed only the map output: line_dedup's hash pieces and the apply tables stayed
    # in OUT/_work for ever (as large as the corpus's line hashes); a re-run still resumes to the end
    out = tmp_path / "out"
    job = _job(pipeline=[{"test_drop_sevens": {}}, {"line_dedup": {}}])
    first = run_job(job, inputs=shards, out=str(out))
    assert sorted(p.name for p in (out / "_work").iterdir()) == ["job.json", "manifest"]
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
    job = _job()
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
