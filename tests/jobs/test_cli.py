"""The decant CLI: the default job on the samples, every shared shard, clear errors, flag expansion."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.errors import JobError
from jobs.runjob import run_job
from operators.writers import read_documents, read_rejects
from support import DEFAULT_JOB_DIGEST, drop_sevens_job, output_digest


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
    # the same documents and decisions as before the engine was restructured
    assert output_digest(out) == DEFAULT_JOB_DIGEST


def test_console_script_exit_keeps_codes_output_and_atexit_handlers(tmp_path, repo):
    """`entry` leaves without the interpreter's teardown: the exit code, everything printed to a
    pipe and the atexit handlers (Ray's shutdown is one) must survive that."""
    script = ("import atexit, sys\n"
              "atexit.register(lambda: print('atexit ran', flush=False))\n"
              "from jobs.cli import entry\n"
              "sys.argv = ['decant'] + sys.argv[1:]\n"
              "entry()\n")
    ok = subprocess.run([sys.executable, "-c", script, "run", "-o", str(tmp_path / "o"), "-q"], cwd=repo,
                        capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "documents read" in ok.stdout and ok.stdout.rstrip().endswith("atexit ran")
    bad = subprocess.run([sys.executable, "-c", script, "run", "-i", str(tmp_path / "missing.jsonl"),
                          "-o", str(tmp_path / "o2"), "-q"], cwd=repo, capture_output=True, text=True)
    assert bad.returncode == 2 and "matches no file" in bad.stderr and "atexit ran" in bad.stdout
    usage = subprocess.run([sys.executable, "-c", script, "no-such-command"], cwd=repo, capture_output=True,
                           text=True)
    assert usage.returncode == 2 and "atexit ran" in usage.stdout


def test_expand_multi_value_input_flag():
    from jobs.cli import expand_multi_value
    assert expand_multi_value(["run", "job.yaml", "-i", "a", "b", "-o", "x", "--input", "c"]) == \
        ["run", "job.yaml", "-i", "a", "-i", "b", "-o", "x", "--input", "c"]
    assert expand_multi_value(["run", "-i", "-weird-name"]) == ["run", "-i", "-weird-name"]
    # the documented `[--set key.path=value ...]`: several overrides after one flag; a job file is not one
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


def test_cli_input_matching_no_file_is_a_clear_error(tmp_path, repo):
    # was an uncaught FileNotFoundError with a traceback; now the CLI's job error (exit 2)
    with pytest.raises(JobError, match="matches no file"):
        run_job(drop_sevens_job(), inputs=[str(tmp_path / "missing.jsonl")], out=str(tmp_path / "o"))
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


def test_progress_display_leaves_the_driver_single_threaded(tmp_path):
    # a display thread made the local executor start its workers from a forkserver (a new
    # interpreter) instead of forking them with the driver's imports and preloaded models
    import threading

    from jobs.cli import _run_with_progress
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": f"text {i}"}) + "\n" for i in range(30)))
    seen = []

    def run_job_spy(data, on_plan=None, on_done=None, **kw):
        seen.append(threading.active_count())  # while the display is up
        return run_job(data, on_plan=on_plan, on_done=on_done, **kw)

    before = threading.active_count()
    stats = _run_with_progress(run_job_spy, drop_sevens_job(), inputs=[str(src)], out=str(tmp_path / "o"))
    assert seen == [before]
    assert stats["total"]["accounting_ok"] and stats["total"]["documents_read"] == 30
