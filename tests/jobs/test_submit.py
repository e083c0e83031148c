"""`decant submit | status | logs | stop` end to end through the Ray Jobs API of a real 2-node
cluster on 127.0.0.1 (head with the dashboard + one worker node, shared with test_ray_executor),
which wants token authentication: the client is given no `RAY_AUTH_MODE` and must send the token
by itself; and the one-line errors of a person's mistakes."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray")
pytest.importorskip("ray.job_submission")

from support import REPO, free_port

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.usefixtures("ray_cluster_booting")]


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    with pytest.MonkeyPatch.context() as mp:
        # decant finds out by itself that the cluster wants a token
        mp.delenv("RAY_AUTH_MODE", raising=False)
        mp.delenv("RAY_ADDRESS", raising=False)
        if ray_cluster.env.get("RAY_AUTH_TOKEN"):  # the cluster's own token, for clients in this process
            mp.setenv("RAY_AUTH_TOKEN", ray_cluster.env["RAY_AUTH_TOKEN"])
        yield ray_cluster


def client_env(cluster, **over) -> dict:
    env = {k: v for k, v in cluster.env.items() if k != "RAY_AUTH_MODE"}
    env.update(over)
    return {k: v for k, v in env.items() if v is not None}


def decant(*args: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs.cli", *args], cwd=str(REPO), env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def one_line_error(r: subprocess.CompletedProcess, *words: str) -> str:
    """The failure is exit code 2 with one `error:` line that says what to do, no traceback."""
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-3000:]
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in r.stderr + r.stdout, r.stderr[-3000:]
    for w in words:
        assert w in errors[0], errors[0]
    return errors[0]


def test_entrypoint():
    from jobs.submit import build_entrypoint
    cmd = build_entrypoint("jobs/default.yaml", ["data/x.jsonl"], "out2", ["langid.threshold=0.6"], 2)
    assert cmd.startswith("python -m jobs.cli run jobs/default.yaml ")
    assert f"-i {Path('data/x.jsonl').resolve()}" in cmd and f"-o {Path('out2').resolve()}" in cmd
    assert "--executor ray" in cmd and "--workers 2" in cmd and "--set langid.threshold=0.6" in cmd
    assert build_entrypoint(".decant-job-0123.yaml", None, None, None, None).startswith(
        "python -m jobs.cli run .decant-job-0123.yaml --executor ray")


def test_mistakes_without_a_cluster_are_one_line(tmp_path):
    nobody = f"http://127.0.0.1:{free_port(28900)}"
    one_line_error(decant("submit", "jobs/default.yaml", "--max-ship-mb", "0.5", "--address", nobody),
                   "over the 0.5 MB limit", "--max-ship-mb")
    one_line_error(decant("submit", str(tmp_path / "missing.yaml"), "--address", nobody), "does not exist")
    for cmd in (("status", "raysubmit_x"), ("logs", "raysubmit_x"), ("stop", "raysubmit_x")):
        one_line_error(decant(*cmd, "--address", nobody), "no Ray Jobs API answers", "ray start --head")


def shipped_package(cluster, job_id: str) -> Path:
    """The working directory the cluster unpacked for a job."""
    from jobs.submit import Cluster
    uri = Cluster(cluster.dashboard_url).client.get_job_info(job_id).runtime_env["working_dir"]
    name = uri.rsplit("/", 1)[-1].removesuffix(".zip")
    found = [p for p in cluster.root.rglob(name) if p.is_dir()]
    assert found, f"{name} not unpacked under {cluster.root}"
    return found[0]


def test_submit_waits_streams_and_output_adds_up(tmp_path, shared_data, cluster):
    """A small job on real WARC samples (extract -> langid), submitted by path outside the repo."""
    job = tmp_path / "small.yaml"
    job.write_text(yaml.safe_dump({"name": "submit-test", "pipeline": [{"extract": {}}, {"langid": {}}],
                                   "executor": {"workers": 2}}))
    out = tmp_path / "out"
    inputs = [str(shared_data / "warc" / "web-2024-sample-0000.warc.gz"),
              str(shared_data / "warc" / "web-2024-sample-0001.warc.gz")]
    from jobs.submit import authentication_mode
    assert authentication_mode(cluster.dashboard_url) == "token"
    env = client_env(cluster)
    r = decant("submit", str(job), "--address", cluster.dashboard_url, *[a for p in inputs for a in ("-i", p)],
               "-o", str(out), env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    job_id = r.stdout.strip().splitlines()[0]
    assert job_id.startswith("raysubmit_")
    # what was shipped is what was announced: the listed files and the job file, nothing else
    count = int(re.search(r"shipping (\d+) files, [\d.]+ MB", r.stderr).group(1))
    package = shipped_package(cluster, job_id)
    files = {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()}
    assert len(files) == count
    job_files = [f for f in files if f.startswith(".decant-job-")]
    assert len(job_files) == 1 and (package / job_files[0]).read_bytes() == job.read_bytes()
    tracked = set(subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True,
                                 check=True).stdout.split())
    untracked = set(subprocess.run(["git", "-C", str(REPO), "ls-files", "--others", "--exclude-standard"],
                                   capture_output=True, text=True, check=True).stdout.split())
    others = files - tracked - set(job_files)
    assert all(f.endswith(".py") and f.split("/")[0] in {"engine", "operators", "jobs", "benchmarks"}
               and f in untracked for f in others), sorted(others)[:10]
    assert "jobs/cli.py" in files and not any(f.startswith((".git/", "out/", "bench-results/")) for f in files)
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
    env = client_env(cluster)
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


def test_token_trouble_is_one_line(tmp_path, cluster):
    """No token anywhere, or a wrong one, against a cluster that wants one; an unknown job id."""
    url = cluster.dashboard_url
    home = tmp_path / "home"
    home.mkdir()
    none = client_env(cluster, HOME=str(home), RAY_AUTH_TOKEN=None, RAY_AUTH_TOKEN_PATH=None)
    for cmd in (("status", "raysubmit_x"), ("logs", "raysubmit_x"), ("stop", "raysubmit_x"),
                ("submit", "jobs/default.yaml", "--no-wait")):
        one_line_error(decant(*cmd, "--address", url, env=none, timeout=120), "requires a token", "RAY_AUTH_TOKEN")
    wrong = client_env(cluster, RAY_AUTH_TOKEN="not-the-token")
    one_line_error(decant("status", "raysubmit_x", "--address", url, env=wrong, timeout=120),
                   "refused the token from RAY_AUTH_TOKEN", "ray get-auth-token")
    # the token file named by RAY_AUTH_TOKEN_PATH is used as Ray uses it
    token_file = tmp_path / "token"
    from jobs.submit import auth_token
    token_file.write_text(auth_token()[0] + "\n")
    by_path = client_env(cluster, HOME=str(home), RAY_AUTH_TOKEN=None, RAY_AUTH_TOKEN_PATH=str(token_file))
    one_line_error(decant("status", "raysubmit_nope", "--address", url, env=by_path, timeout=120),
                   "raysubmit_nope does not exist")
