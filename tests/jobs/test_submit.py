"""`decant submit | status | logs | stop` end to end through the Ray Jobs API of a real 2-node
cluster on 127.0.0.1 (head with the dashboard + one worker node, shared with test_ray_executor)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray")
pytest.importorskip("ray.job_submission")

from support import REPO

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.usefixtures("ray_cluster_booting")]


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    with pytest.MonkeyPatch.context() as mp:
        # the client must use the cluster's token auth, whatever this machine's default
        mp.setenv("RAY_AUTH_MODE", "token")
        mp.delenv("RAY_ADDRESS", raising=False)
        yield ray_cluster


def decant(*args: str, env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs.cli", *args], cwd=str(REPO), env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_entrypoint_and_runtime_env(tmp_path):
    from jobs.paths import WORKING_DIR_EXCLUDES as EXCLUDES
    from jobs.submit import build_entrypoint, runtime_env
    cmd, excl = build_entrypoint(str(REPO / "jobs" / "default.yaml"), ["data/x.jsonl"], "out2", ["langid.threshold=0.6"], 2)
    assert cmd.startswith("python -m jobs.cli run jobs/default.yaml ")
    assert f"-i {Path('data/x.jsonl').resolve()}" in cmd and f"-o {Path('out2').resolve()}" in cmd
    assert "--executor ray" in cmd and "--workers 2" in cmd and "--set langid.threshold=0.6" in cmd
    env = runtime_env(excl)
    assert env["working_dir"] == str(REPO) and ".git" in env["excludes"] and "out" in env["excludes"]
    assert set(EXCLUDES) <= set(env["excludes"])
    # a job file outside the repository travels inside the entrypoint
    outside = tmp_path / "my job.yaml"
    outside.write_text("pipeline:\n  - langid: {}\n")
    cmd, _ = build_entrypoint(str(outside), None, None, None, None)
    assert "python -m jobs.cli run .decant-job-" in cmd and "base64" in cmd


def test_submit_waits_streams_and_output_adds_up(tmp_path, shared_data, cluster):
    """A small job on real WARC samples (extract -> langid), submitted by path outside the repo."""
    job = tmp_path / "small.yaml"
    job.write_text(yaml.safe_dump({"name": "submit-test", "pipeline": [{"extract": {}}, {"langid": {}}],
                                   "executor": {"workers": 2}}))
    out = tmp_path / "out"
    inputs = [str(shared_data / "warc" / "web-2024-sample-0000.warc.gz"),
              str(shared_data / "warc" / "web-2024-sample-0001.warc.gz")]
    env = dict(cluster.env)
    r = decant("submit", str(job), "--address", cluster.dashboard_url, *[a for p in inputs for a in ("-i", p)],
               "-o", str(out), env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    job_id = r.stdout.strip().splitlines()[0]
    assert job_id.startswith("raysubmit_")
    # the job's own output (the summary table printed by `decant run`) was streamed back
    assert "documents read" in r.stdout and "SUCCEEDED" in r.stderr
    stats = json.loads((out / "stats.json").read_text())
    t = stats["total"]
    assert t["accounting_ok"] and t["documents_read"] == t["documents_kept"] + t["documents_dropped"]
    assert t["documents_read"] == 37  # 22 + 15 HTML responses
    assert stats["job"]["inputs"] == 2
    docs = list((out / "documents").rglob("*.parquet"))
    assert docs
    # status and logs of the finished job
    st = decant("status", job_id, "--address", cluster.dashboard_url, env=env, timeout=60)
    assert st.returncode == 0 and st.stdout.strip() == "SUCCEEDED"
    lg = decant("logs", job_id, "--address", cluster.dashboard_url, env=env, timeout=60)
    assert lg.returncode == 0 and "documents read" in lg.stdout


def test_submit_no_wait_then_stop(tmp_path, shared_data, cluster):
    """--no-wait returns the id at once; `decant stop` stops the running job."""
    out = tmp_path / "out"
    env = dict(cluster.env)
    r = decant("submit", "jobs/default.yaml", "--address", cluster.dashboard_url, "--no-wait",
               "-i", str(shared_data / "warc" / "archive-org-2008.warc.gz"), "-o", str(out), env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    job_id = r.stdout.strip().splitlines()[0]
    st = decant("status", job_id, "--address", cluster.dashboard_url, env=env, timeout=60)
    assert st.stdout.strip() in {"PENDING", "RUNNING"}, st.stdout + st.stderr
    sp = decant("stop", job_id, "--address", cluster.dashboard_url, env=env, timeout=120)
    assert sp.returncode == 0, sp.stderr[-2000:]
    deadline = time.monotonic() + 60
    status = ""
    while time.monotonic() < deadline:
        status = decant("status", job_id, "--address", cluster.dashboard_url, env=env, timeout=60).stdout.strip()
        if status in {"STOPPED", "SUCCEEDED", "FAILED"}:
            break
        time.sleep(1)
    assert status == "STOPPED"
