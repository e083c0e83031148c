"""Object storage: the objects a job writes per unit and stage, and what they cost on a real S3 API.

On object storage every file is a few requests (a PUT to stage it, a server-side copy into place,
a DELETE of the staged copy, later a listing entry and GETs to read it), so the count of files a
unit writes, more than their bytes, sets a job's time there. Runs:

1. jobs/default.yaml over the sample shards in samples/ with 2 local workers, on local files and
   then from and to a real S3 API server (moto's standalone server on 127.0.0.1, s3fs the client):
   objects per unit per stage (from the units' manifest records), requests by method, wall time
   and the S3/local wall ratio.
2. `decant dedup`'s job over one JSONL file of real text (40,000 documents; 10,000 in the quick
   set): objects per unit per stage on local files.
"""
from __future__ import annotations

import collections
import logging
import os
import re
import shutil
import tempfile
import time
import urllib.parse
from typing import Any

DESCRIPTION = ("objects written per unit per stage (default job on samples/, decant dedup on a JSONL file), "
               "requests and wall time on a real S3 API server (moto) vs local files")
QUICK = True

BUCKET = "decant-bench"


class _MotoS3:
    """moto's standalone S3 server on 127.0.0.1 for this process and its pool workers (through
    os.environ), counting the requests it serves by method."""

    LINE = re.compile(r'"([A-Z]+) /([^/?\s]+)/?([^?\s]*)\S* HTTP')

    def __enter__(self) -> _MotoS3:
        from moto.server import ThreadedMotoServer
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL_S3": endpoint,
               "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_CONFIG_FILE": os.devnull,
               "NO_PROXY": ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1"]))}
        self.saved = {k: os.environ.get(k) for k in [*env, "AWS_PROFILE"]}
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(env)
        self.requests: collections.Counter = collections.Counter()
        counter = self

        class Count(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                m = counter.LINE.search(re.sub(r"\x1b\[[0-9;]*m", "", record.getMessage()))
                if m and m.group(2) == BUCKET:
                    counter.requests[(m.group(1), urllib.parse.unquote(m.group(3)).split("/", 1)[0])] += 1

        self.handler = Count(logging.INFO)
        log = logging.getLogger("werkzeug")
        log.addHandler(self.handler)
        log.setLevel(logging.INFO)
        log.propagate = False
        self.fs().mkdir(BUCKET)
        return self

    def fs(self):
        import s3fs
        return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)

    def take(self, prefix: str) -> dict[str, int]:
        """Requests under s3://BUCKET/prefix/ since the last call, by method."""
        out: collections.Counter = collections.Counter()
        for (method, top), n in list(self.requests.items()):
            if top == prefix:
                out[method] += n
                del self.requests[(method, top)]
        return dict(out.most_common())

    def __exit__(self, *exc) -> None:
        logging.getLogger("werkzeug").removeHandler(self.handler)
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self.server.stop()


def objects_per_stage(out: str) -> dict[str, dict[str, Any]]:
    """{stage: units, objects (all units), per unit (mean, max), by kind} from the manifest records."""
    from engine import io as eio
    manifest = eio.Manifest(f"{out.rstrip('/')}/_work/manifest")
    stages: dict[str, dict[str, Any]] = {}
    for unit in manifest.units():
        stage, _, rest = unit.partition("/")
        if not rest.startswith("shard-"):
            continue
        rec = manifest.get(unit)
        s = stages.setdefault(stage, {"units": 0, "objects": 0, "max": 0, "kinds": collections.Counter()})
        s["units"] += 1
        s["objects"] += rec.get("objects_written", 0)
        s["max"] = max(s["max"], rec.get("objects_written", 0))
        s["kinds"].update(rec.get("objects") or {})
    return dict(sorted(stages.items(), key=lambda kv: (len(kv[0]), kv[0])))


def _run(spec: dict, inputs: list[str], out: str, workers: int) -> tuple[dict, float]:
    from jobs.runjob import run_job
    t0 = time.perf_counter()
    stats = run_job(spec, inputs=inputs, out=out, workers=workers, executor="local")
    return stats, time.perf_counter() - t0


def _rows(job: str, storage: str, stages: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"job": job, "storage": storage, "stage": stage, "units": s["units"], "objects": s["objects"],
             "objects/unit": round(s["objects"] / s["units"], 2), "max/unit": s["max"],
             "by kind": ", ".join(f"{k} {n}" for k, n in sorted(s["kinds"].items()))}
            for stage, s in stages.items()]


def carry_cpu(path: str, folder: str, batch_size: int = 256, repeats: int = 3) -> list[dict[str, Any]]:
    """CPU seconds to write a unit's documents as its stage output and read them back (the best of
    `repeats`), with the engine's carry (Arrow IPC) and with the Parquet/zstd carry it replaced."""
    import pyarrow.json as pj

    import operators.writers  # noqa: F401 - registers the parquet writer
    from engine.carry import LOCAL, iter_carry
    from engine.output import FolderWriter
    table = pj.read_json(path)
    batches = table.to_batches(batch_size)
    out = []
    for fmt in ("parquet", LOCAL):
        best = None
        for r in range(repeats):
            stage = f"{folder}/{fmt}-{r}"
            c0 = time.process_time()
            w = FolderWriter(stage, 0, fmt, 1 << 40)
            for b in batches:
                w.write_to("carry", b)
            files = w.publish(stage)
            c1 = time.process_time()
            rows = sum(b.num_rows for b in iter_carry(f"{stage}/carry", batch_size))
            c2 = time.process_time()
            assert rows == table.num_rows
            size = sum(os.path.getsize(f) for f in files)
            if best is None or c2 - c0 < best[0] + best[1]:
                best = (c1 - c0, c2 - c1, size)
        out.append({"carry": "parquet zstd (before)" if fmt == "parquet" else "arrow ipc (now)",
                    "write_cpu_s": round(best[0], 3), "read_cpu_s": round(best[1], 3),
                    "mb": round(best[2] / 1e6, 1), "docs": table.num_rows})
    return out


def run(quick: bool = True) -> dict:
    from engine.job import load_job
    from jobs.dedup_cmd import dedup_job
    from jobs.paths import DEFAULT_JOB
    from jobs.runjob import default_inputs

    samples = default_inputs()
    tmp = tempfile.mkdtemp(prefix="decant-bench-objects-")
    rows, figures, notes = [], {}, []
    try:
        spec = load_job(DEFAULT_JOB)
        local_stats, local_wall = _run(spec, samples, f"{tmp}/local", 2)
        local = objects_per_stage(f"{tmp}/local")
        rows += _rows("default", "local", local)
        with _MotoS3() as s3:
            fs = s3.fs()
            for path in samples:
                fs.put(path, f"{BUCKET}/in/{os.path.basename(path)}")
            s3.take("in")
            s3_stats, s3_wall = _run(spec, [f"s3://{BUCKET}/in/{os.path.basename(p)}" for p in samples],
                                     f"s3://{BUCKET}/out", 2)
            requests = s3.take("out")
            remote = objects_per_stage(f"s3://{BUCKET}/out")
        rows += _rows("default", "s3", remote)
        assert s3_stats["total"] == local_stats["total"], "s3 and local runs differ"
        units = sum(s["units"] for s in local.values())
        figures.update({
            "default_units": units,
            "default_objects_per_unit": round(sum(s["objects"] for s in local.values()) / units, 2),
            "default_map_objects_per_unit_per_global_op": round(
                sum(n for s in local.values() for k, n in s["kinds"].items() if k.startswith("map:"))
                / max(1, sum(s["units"] * sum(1 for k in s["kinds"] if k.startswith("map:")) for s in local.values())),
                2),
            "default_local_wall_s": round(local_wall, 2), "default_s3_wall_s": round(s3_wall, 2),
            "s3_over_local_wall": round(s3_wall / local_wall, 2),
            "s3_requests": sum(requests.values()), "s3_requests_per_unit": round(sum(requests.values()) / units, 1),
            "s3_requests_by_method": requests,
        })

        from benchmarks.corpora.jsonl_corpus import jsonl_corpus
        n = 10_000 if quick else 40_000
        path = jsonl_corpus(f"{tmp}/jsonl", shards=1, docs_per_shard=n)[0]
        dedup_stats, dedup_wall = _run(dedup_job([path], f"{tmp}/dedup"), [path], f"{tmp}/dedup", 2)
        dedup = objects_per_stage(f"{tmp}/dedup")
        rows += _rows(f"dedup {n:,} docs", "local", dedup)
        figures.update({"dedup_docs": n, "dedup_wall_s": round(dedup_wall, 2),
                        "dedup_objects": sum(s["objects"] for s in dedup.values()),
                        "dedup_objects_per_unit": round(sum(s["objects"] for s in dedup.values())
                                                        / sum(s["units"] for s in dedup.values()), 2)})
        carry = carry_cpu(path, f"{tmp}/carry")
        rows += [{"job": "carry", "storage": "local", "stage": c["carry"], "units": 1, "objects": 1,
                  "by kind": f"{c['docs']:,} docs, {c['mb']} MB, write {c['write_cpu_s']} s + read "
                             f"{c['read_cpu_s']} s CPU"} for c in carry]
        before, now = (c["write_cpu_s"] + c["read_cpu_s"] for c in carry)
        figures.update({"carry_cpu_s_per_1k_docs_parquet": round(before / n * 1000, 4),
                        "carry_cpu_s_per_1k_docs_arrow": round(now / n * 1000, 4),
                        "carry_parquet_over_arrow_cpu": round(before / max(now, 1e-6), 1),
                        "carry_share_of_dedup_worker_cpu_before": round(
                            before / max(1e-6, dedup_stats["job"].get("worker_cpu_seconds") or 0), 3)})
        notes.append("objects: files a unit commits (documents, rejects, carry = its stage output, map:<op> = "
                     "a global operator's map output); each unit also writes one manifest record. "
                     "Reduces write their own files in place (not counted here).")
        notes.append(f"S3: moto's server on 127.0.0.1 (no network latency: a real bucket's round trips make "
                     f"the ratio larger); {len(samples)} sample shards, 2 workers, same totals as local.")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"figures": figures, "rows": rows, "notes": notes,
            "inputs": {"samples": [os.path.basename(p) for p in samples], "dedup_docs": figures.get("dedup_docs")}}
