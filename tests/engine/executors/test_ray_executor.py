"""The Ray executor on real Ray: same output as the local executor, an actor killed mid-shard,
a driver killed mid-job and re-run, on a 2-node cluster started on 127.0.0.1 by the tests.

Every Ray process the tests start is stopped by its pid (the processes of the test cluster are
recognised by its private temp dir), never with a broad `ray stop`.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

ray = pytest.importorskip("ray")

from benchmarks.corpora.jsonl_corpus import jsonl_corpus
from benchmarks.scaling import scaling_job
from engine import io as eio
from support import REPO

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.usefixtures("ray_cluster_booting")]

SHARDS, DOCS = 6, 300


# ----------------------------------------------------------------- helpers

def read_tables(out: str | Path) -> tuple[list[dict], list[dict]]:
    """Documents sorted by id and rejects sorted by (operator, id), as plain rows."""
    out = str(out)
    docs = [pq.read_table(f) for f in eio.listdir_files(f"{out}/documents", ".parquet")]
    rej = [pq.read_table(f) for f in eio.listdir_files(f"{out}/rejects", ".parquet")]
    d = pa.concat_tables(docs, promote_options="default").to_pylist() if docs else []
    r = pa.concat_tables(rej, promote_options="default").to_pylist() if rej else []
    # partition columns come from the folder names; the files hold everything else
    return sorted(d, key=lambda x: x["id"]), sorted(r, key=lambda x: (x.get("operator") or "", x["id"]))


def stats_summary(out: str | Path) -> dict:
    s = eio.read_json(f"{out}/stats.json")
    ops = {n: (o["docs_in"], o["docs_out"], dict(sorted(o["dropped"].items()))) for n, o in s["operators"].items()}
    return {"total": s["total"], "operators": ops}


def assert_same_output(out: str | Path, ref: str | Path) -> None:
    docs, rejects = read_tables(out)
    rdocs, rrejects = read_tables(ref)
    ids = [d["id"] for d in docs]
    assert len(ids) == len(set(ids)), "a document was written twice"
    assert len(docs) == len(rdocs) and len(rejects) == len(rrejects)
    assert docs == rdocs
    assert rejects == rrejects
    assert stats_summary(out) == stats_summary(ref)
    assert stats_summary(out)["total"]["accounting_ok"]


# ------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared_data) -> list[str]:
    return jsonl_corpus(tmp_path_factory.mktemp("corpus"), shards=SHARDS, docs_per_shard=DOCS)


@pytest.fixture(scope="module")
def job() -> dict:
    return scaling_job()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, corpus, job) -> Path:
    """A clean run of the job with the local executor (2 worker processes)."""
    from jobs.runjob import run_job
    out = tmp_path_factory.mktemp("ref") / "out"
    stats = run_job(job, inputs=corpus, out=str(out), executor="local", workers=2)
    assert stats["total"]["accounting_ok"]
    assert stats["total"]["documents_read"] == SHARDS * DOCS
    # the comparison below means something only if the job both keeps and drops documents
    assert 0 < stats["total"]["documents_kept"] < SHARDS * DOCS
    assert stats["total"]["dropped_by_operator"].get("line_dedup", 0) > 0
    return out


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    yield ray_cluster
    if ray.is_initialized():
        ray.shutdown()


# ---------------------------------------------------------------------------------------- tests

def test_same_output_as_local_executor(tmp_path, corpus, job, reference):
    """A private local Ray instance (address None): same documents, rejects and stats as local."""
    from engine.executors.ray_executor import RayExecutor
    from engine.finish import finish
    from engine.plan import prepare_output
    from jobs.runjob import plan_job

    plan, graph = plan_job(job, corpus, str(tmp_path / "out"))
    prepare_output(plan)
    ex = RayExecutor(workers=2, max_in_flight=2, shutdown=False)
    seen = []
    try:
        ex.run(plan, graph, seen.append)
        assert ray.is_initialized()
        # parallel(): Ray tasks, results in order (a module-level function every worker can import)
        assert ex.parallel(math.factorial, list(range(25))) == [math.factorial(i) for i in range(25)]
        assert ex.parallel(math.factorial, []) == []
    finally:
        ray.shutdown()
    finish(plan, graph, 1.0)
    assert len([r for r in seen if r.unit.startswith("stage-0/")]) == SHARDS
    assert ex.replaced == []
    assert_same_output(tmp_path / "out", reference)


def test_actor_killed_mid_shard_is_replaced_and_shard_redone(tmp_path, corpus, job, reference, cluster):
    """On the 2-node cluster: when the first shard finishes, SIGKILL every actor process (each is in
    the middle of its next shard); the executor replaces them, redoes their shards, and the output
    equals the clean local run with nothing lost or doubled."""
    from engine.executors.ray_executor import RayExecutor
    from engine.finish import finish
    from engine.plan import prepare_output
    from jobs.runjob import plan_job

    plan, graph = plan_job(job, corpus, str(tmp_path / "out"))
    prepare_output(plan)
    ex = RayExecutor(workers=2, address=cluster.address, max_in_flight=2, max_retries=3)
    killed: list[int] = []

    def on_done(rec):
        if not killed:
            for pid in list(ex.pids):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    ex.run(plan, graph, on_done)
    finish(plan, graph, 1.0)
    assert len(killed) == 2
    replaced_pids = {old for _, old, _ in ex.replaced}
    assert replaced_pids == set(killed), ex.replaced
    assert sum(ex.failures.values()) >= 2
    assert_same_output(tmp_path / "out", reference)


def test_driver_killed_mid_job_resumes_from_manifest(tmp_path, corpus, job, reference, cluster):
    """`python -m jobs.cli run --executor ray` against the cluster, SIGKILLed after the first shard's
    manifest record appears; the re-run finishes the job without redoing finished shards."""
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(job))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "jobs.cli", "run", str(job_file), *[a for p in corpus for a in ("-i", p)],
           "-o", str(out), "--executor", "ray", "--address", cluster.address, "--workers", "2", "--quiet"]
    manifest = out / "_work" / "manifest" / "stage-0"
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(cmd, cwd=str(REPO), env=cluster.env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while not list(manifest.glob("shard-*.json")):
                assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "no shard finished"
                time.sleep(0.05)
            first.send_signal(signal.SIGKILL)
        finally:
            if first.poll() is None:
                first.kill()
            first.wait()
    # the dead driver's actors are killed by Ray; wait for them so nothing writes behind the re-run
    deadline = time.monotonic() + 60
    while cluster.actor_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not cluster.actor_processes(), "actors of the killed driver survived it"
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in manifest.glob("*.json")}
    assert before and not (out / "stats.json").exists()
    assert len([n for n in before if n.startswith("shard-")]) < SHARDS, "the kill came after the whole stage"

    second = subprocess.run(cmd, cwd=str(REPO), env=cluster.env, capture_output=True, text=True, timeout=300,
                            check=False)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
    for name, (mtime, content) in before.items():
        p = manifest / name
        assert p.stat().st_mtime_ns == mtime and p.read_bytes() == content, f"{name} was redone"
    after = {p.name for p in manifest.glob("shard-*.json")}
    assert len(after) == SHARDS
    assert_same_output(out, reference)


def test_split_file_on_ray_matches_the_whole_file_locally(tmp_path, corpus, job):
    """The corpus as one plain JSONL file split into ranges, on Ray with 2 actors (a private local
    instance): the same documents, rejects and counts as the file read whole by one local worker."""
    import gzip

    from jobs.runjob import run_job
    big = tmp_path / "all.jsonl"
    with open(big, "wb") as f:
        for p in corpus:
            f.write(gzip.decompress(Path(p).read_bytes()))
    ref = tmp_path / "ref"
    run_job({**job, "input": {"format": "jsonl", "split_bytes": 0}}, inputs=[str(big)], out=str(ref),
            executor="local", workers=1)
    out = tmp_path / "out"
    seen = []
    run_job({**job, "input": {"format": "jsonl", "split_bytes": big.stat().st_size // 5}}, inputs=[str(big)],
            out=str(out), executor="ray", workers=2, on_done=seen.append)
    ranges = [r.unit for r in seen if r.unit.startswith("stage-0/shard-000000-")]
    assert len(ranges) >= 4
    assert_same_output(out, ref)
    assert eio.read_json(f"{out}/stats.json")["reader"]["formats"] == {"jsonl": 1}


def test_default_job_on_ray_matches_local(tmp_path):
    """The user's path: `decant run --executor ray` on the bundled samples with jobs/default.yaml
    (every operator, both barriers) writes what `--executor local` writes."""
    outs = {}
    for kind in ("local", "ray"):
        out = tmp_path / kind
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
        env.pop("RAY_ADDRESS", None)
        proc = subprocess.run([sys.executable, "-m", "jobs.cli", "run", "-o", str(out), "--executor", kind,
                               "--workers", "2", "-q"], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs[kind] = out
    assert_same_output(outs["ray"], outs["local"])
    docs, _ = read_tables(outs["local"])
    assert docs and all(d["text"] for d in docs)
