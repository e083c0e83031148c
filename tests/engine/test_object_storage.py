"""decant on object storage for real: a real S3 API server (moto's standalone server, on 127.0.0.1)
with s3fs as the client, the way a cluster reads its crawl from and writes its output to a bucket.

Inputs and output on s3 give what the same job gives on local files; a driver killed mid-job
resumes to the same output; `decant report` reads the result; and the objects a job writes are
counted per shard and per stage (run with -s to see the figures)."""
from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
import yaml

from engine import io as eio
from jobs.runjob import run_job
from operators.writers import read_documents, read_rejects

pytestmark = pytest.mark.slow

SHARDS = ("web-2024-sample-0000.warc.gz", "web-2024-sample-0001.warc.gz")
#: Two stages (line_dedup is global), extract for the WARC shards; small enough to run four times.
JOB = {"pipeline": [{"extract": {}}, {"langid": {}}, {"line_dedup": {"partitions": 2}}, {"quality": {}}],
       "output": {"partition_by": ["language"]}}
#: Where a unit stages its files: OUT/_work/staging/stage-S/shard-N/attempt-X/<kind>/...
#: A staged object: its unit and its kind (documents-00003-0000.parquet, carry-..., map-<operator>/...).
STAGED = re.compile(r"_work/staging/stage-(\d+)/shard-(\d+)/attempt-[^/]+/(map-[^/]+|[a-z]+)[/-]")
#: What stays in OUT after a run (without --keep-work).
FINAL_PREFIXES = ("documents/", "rejects/", "index/", "_work/manifest/")
FINAL_FILES = ("stats.json", "duplicates.parquet", "_work/job.json", "_work/units.json")


def rows(table, *keys: str) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: tuple(str(r[k]) for k in keys))


@pytest.fixture(scope="module")
def s3_inputs(s3_server, repo) -> str:
    fs = s3_server.fs()
    for name in SHARDS:
        fs.put(str(repo / "samples" / name), f"{s3_server.BUCKET}/in/{name}")
    return s3_server.url("in/*.warc.gz")


@pytest.fixture(scope="module")
def s3_run(s3_server, s3_inputs):
    """The job from s3 to s3 with 2 local workers (work files kept to be counted), its stats and
    every request it made to the server."""
    s3_server.take_requests()
    stats = run_job(JOB, inputs=[s3_inputs], out=s3_server.url("out"), workers=2, keep_work=True)
    return stats, s3_server.take_requests()


def test_a_listing_does_not_hide_what_another_process_wrote(s3_server):
    # s3fs caches listings: after one, `exists` answered from the cache and missed the manifest
    # records and apply tables that other processes (the pool workers) wrote since
    other = s3_server.fs()
    base = s3_server.url("listing")
    other.pipe(f"{s3_server.BUCKET}/listing/stage-0/a.json", b"{}")
    assert eio.listdir_files(base, ".json") == [f"{base}/stage-0/a.json"]
    other.pipe(f"{s3_server.BUCKET}/listing/stage-0/b.json", b"{}")
    assert eio.exists(f"{base}/stage-0/b.json")
    assert eio.Manifest(base).units() == ["stage-0/a", "stage-0/b"]


def test_an_objects_version_changes_when_it_is_rewritten(s3_server):
    # a worker keeps the apply table it read while the object's version (its ETag) stays the same
    path = s3_server.url("version/apply.parquet")
    assert eio.version(path) is None
    eio.write_bytes_atomic(b"abcd", path)
    first = eio.version(path)
    assert first is not None and eio.version(path) == first
    eio.write_bytes_atomic(b"wxyz", path)
    assert eio.version(path) != first


def test_a_job_from_s3_to_s3_writes_what_it_writes_on_local_files(s3_run, s3_server, repo, tmp_path):
    stats, _ = s3_run
    local = run_job(JOB, inputs=[str(repo / "samples" / n) for n in SHARDS], out=str(tmp_path / "local"), workers=1)
    out = s3_server.url("out")
    docs, local_docs = read_documents(out), read_documents(str(tmp_path / "local"))
    rejects, local_rejects = read_rejects(out), read_rejects(str(tmp_path / "local"))
    assert docs.num_rows > 0 and rejects.num_rows > 0
    assert docs.schema.names == local_docs.schema.names
    assert rows(docs, "id") == rows(local_docs, "id")
    assert rows(rejects, "id", "operator") == rows(local_rejects, "id", "operator")
    assert stats["total"] == local["total"] and stats["total"]["accounting_ok"]
    assert stats["total"]["documents_read"] == docs.num_rows + rejects.num_rows
    assert stats["input"]["files"] == len(SHARDS) and not stats["reader"]["errors"]


def test_objects_a_job_writes_per_shard_and_stage(s3_run, s3_server):
    stats, requests = s3_run
    keys = s3_server.keys("out")
    fs = s3_server.fs()
    manifest = {k[len("_work/manifest/"):-len(".json")]: json.loads(fs.cat(f"{s3_server.BUCKET}/out/{k}"))
                for k in keys if k.startswith("_work/manifest/")}
    shard_units = {u: r for u, r in manifest.items() if "/shard-" in u}
    assert len(shard_units) == 2 * len(SHARDS)  # two stages
    # every committed file is one object in its place: documents, rejects, stage output, map partitions
    committed = [k for k in keys if k.startswith(("documents/", "rejects/", "_work/stage-"))
                 or re.match(r"_work/global-[^/]+/map/", k)]
    assert sum(r["objects_written"] for r in shard_units.values()) == len(committed)
    # ... staged once by its unit, then copied into place, the staged object deleted
    staged: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for method, key in requests:
        m = STAGED.search(key)
        if m and method == "PUT":
            staged[f"stage-{int(m[1])}/shard-{int(m[2]):06d}"][m[3]] += 1
    deleted = sum(1 for method, key in requests if method == "DELETE" and STAGED.search(key))
    assert deleted == len(committed)
    for unit, record in shard_units.items():
        assert sum(staged[unit].values()) == record["objects_written"], unit
    for unit, record in shard_units.items():
        stage = int(unit.split("/")[0].split("-")[1])
        assert record["objects_written"] > 0
        assert ("carry" in staged[unit]) == (stage == 0) and ("documents" in staged[unit]) == (stage == 1)

    # what each reduce writes in place (apply tables, its own files, OUT/index/<operator>)
    reduce_puts: collections.Counter = collections.Counter()
    for method, key in requests:
        m = re.match(r"out/(?:_work/global-(\d+)-([^/]+)/(?!map/)|index/([^/]+)/)", key)
        if method == "PUT" and m:
            reduce_puts[f"stage-{m[1] or 0}/reduce-{m[2] or m[3]}"] += 1
    assert set(reduce_puts) <= set(manifest)
    final = [k for k in keys if k.startswith(FINAL_PREFIXES) or k in FINAL_FILES]
    by_method = collections.Counter(method for method, _ in requests)
    lines = [(f"\nobjects a job writes on s3 ({len(SHARDS)} WARC shards, {stats['total']['documents_read']} documents;"
              f" {'; '.join(stats['job']['stages'])})"),
             f"  {'unit':28} {'objects':>7}  (a shard's: each staged, copied into place, staged copy deleted)"]
    for unit in sorted(shard_units):
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(staged[unit].items()))
        lines.append(f"  {unit:28} {shard_units[unit]['objects_written']:>7}  {kinds}")
    for unit, n in sorted(reduce_puts.items()):
        lines.append(f"  {unit:28} {n:>7}  written in place")
    for stage in sorted({u.split("/")[0] for u in shard_units}):
        n = [r["objects_written"] for u, r in shard_units.items() if u.startswith(stage + "/")]
        lines.append(f"  {stage + ' per shard':28} {sum(n) / len(n):>7.1f}  (+1 manifest record per unit)")
    count = collections.Counter(k.split("/", 1)[0] for k in final)
    lines += [(f"  left in OUT after the run: {len(final)} objects (documents {count['documents']},"
               f" rejects {count['rejects']}, index {count['index']}, manifest {len(manifest)}, stats.json,"
               " _work/job.json)"),
              (f"  requests to the server: {len(requests)}"
               f" ({', '.join(f'{m} {n}' for m, n in by_method.most_common())})")]
    print("\n".join(lines))


def test_decant_report_of_an_s3_output(s3_run, s3_server, repo):
    stats, _ = s3_run
    out = s3_server.url("out")
    proc = subprocess.run([sys.executable, "-m", "jobs.cli", "report", out], check=False, cwd=repo,
                          env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fs = s3_server.fs()
    page = fs.cat(f"{s3_server.BUCKET}/out/report/index.html").decode()
    for row in ("documents read", "documents kept", "documents dropped"):
        assert f"<td>{row}</td><td>{stats['total'][row.replace(' ', '_')]:,}</td>" in page
    pngs = [k for k in s3_server.keys("out/report") if k.endswith(".png")]
    assert pngs and all(fs.cat(f"{s3_server.BUCKET}/out/report/{k}")[:8] == b"\x89PNG\r\n\x1a\n" for k in pngs)


def test_a_driver_killed_mid_job_resumes_to_the_same_output(s3_run, s3_server, s3_inputs, repo, tmp_path):
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(JOB))
    out = s3_server.url("resumed")
    cmd = [sys.executable, "-m", "jobs.cli", "run", str(job_file), "-i", s3_inputs, "-o", out, "--quiet"]
    manifest = eio.Manifest(f"{out}/_work/manifest")
    with open(tmp_path / "killed.log", "w") as log:
        driver = subprocess.Popen(cmd + ["--workers", "2"], cwd=repo, env=dict(os.environ), stdout=log,
                                  stderr=subprocess.STDOUT)
        workers: list[psutil.Process] = []
        done: list[str] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and driver.poll() is None:
            workers = psutil.Process(driver.pid).children(recursive=True) or workers
            done = manifest.units()
            if done:
                break
            time.sleep(0.2)
        before = {u: manifest.get(u) for u in done}
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert done, f"no unit finished before the driver ended:\n{(tmp_path / 'killed.log').read_text()[-3000:]}"
    _, alive = psutil.wait_procs(workers, timeout=15)  # pool workers end with their driver
    for p in alive:
        p.kill()
    assert not alive
    total_units = len(eio.Manifest(s3_server.url("out/_work/manifest")).units())  # of the uninterrupted run
    assert len(manifest.units()) < total_units  # killed mid-job, not after it

    # the re-run (in one process this time: the output does not depend on the worker count)
    proc = subprocess.run(cmd + ["--workers", "1"], check=False, cwd=repo, env=dict(os.environ),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {u: manifest.get(u) for u in done} == before  # finished units were skipped, not redone
    assert len(manifest.units()) == total_units
    ref = s3_server.url("out")
    assert rows(read_documents(out), "id") == rows(read_documents(ref), "id")
    assert rows(read_rejects(out), "id", "operator") == rows(read_rejects(ref), "id", "operator")
    stats = json.loads(s3_server.fs().cat(f"{s3_server.BUCKET}/resumed/stats.json"))
    assert stats["total"] == s3_run[0]["total"]
    # nothing half-written or left over: the same objects as the uninterrupted run's output, by name
    keys = s3_server.keys("resumed")
    assert keys == [k for k in s3_server.keys("out") if k.startswith(FINAL_PREFIXES) or k in FINAL_FILES]
    print(f"\nobjects left by a killed and resumed run: {len(keys)} ({len(done)} unit(s) done before the kill)")
