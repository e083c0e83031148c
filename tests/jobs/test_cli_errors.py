"""Errors a person can read: a malformed or unsafe job file and a malformed --set are one `error:`
line naming the place (exit 2, no traceback); Ctrl-C says how to resume (exit 130)."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest


def decant(repo, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "jobs.cli", *args], cwd=repo, capture_output=True, text=True,
                          timeout=timeout)


def assert_one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    text = " ".join(lines)
    for n in needles:
        assert n in text, (n, r.stderr)


@pytest.mark.parametrize("content, needles", [
    ("pipeline: [langid: {threshold: 0.5}\n", ["line 2", "malformed YAML"]),
    ("pipeline:\n  - langid: {threshold: 0.5\n", ["malformed YAML"]),
    ("input: !!python/object/apply:os.system ['touch /tmp/decant-pwned']\n", ["line 1", "unsupported YAML tag"]),
    ("- just\n- a list\n", ["top level must be a mapping"]),
    ("output: {format: parquett}\npipeline: []\n", ["output.format", "parquett"]),
])
def test_bad_job_files(tmp_path, repo, content, needles):
    job = tmp_path / "job.yaml"
    job.write_text(content)
    assert_one_line_error(decant(repo, "run", str(job), "-o", str(tmp_path / "o"), "-q"), *needles)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("setting, needles", [
    ("pipeline.99.langid.threshold=1", ["pipeline.99.langid.threshold", "steps"]),
    ("pipeline.langid=5", ["pipeline.langid", "parameter"]),
    ("output.path.x=1", ["output.path", "not a mapping"]),
    ("pipeline.nope.x=1", ["no pipeline step named 'nope'"]),
    ("=3", ["expected key.path=value"]),
    ("pipeline.langid.thresold=0.6", ["pipeline[2].langid.thresold"]),
])
def test_bad_set_overrides(tmp_path, repo, setting, needles):
    r = decant(repo, "run", "-o", str(tmp_path / "o"), "-q", "--set", setting)
    assert_one_line_error(r, *needles)


def test_ctrl_c_says_how_to_resume(tmp_path, repo):
    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", "run", "-o", str(out), "--workers", "1", "-q"],
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    manifest = out / "_work" / "manifest"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(manifest.rglob("*.json")) and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "the job ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "resume" in stderr and "Traceback" not in stderr
    # and the re-run resumes to the end
    r = decant(repo, "run", "-o", str(out), "-q", timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
