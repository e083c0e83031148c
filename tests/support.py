"""Helpers shared by the tests (imported as `support`: pyproject puts tests/ on sys.path). Test
modules import from here, never from each other; fixtures live in conftest.py."""
from __future__ import annotations

import collections
import gzip
import json
import os
import socket
import subprocess
import tempfile
from pathlib import Path

from engine import io as eio
from engine.documents import DROP_REASON
from operators.paths import REPO_ROOT

#: The checkout under test: pyproject's pytest `pythonpath` puts it first on sys.path.
REPO = REPO_ROOT
SHARED_DATA = Path(os.environ.get("DECANT_SHARED_DATA", REPO.parent / "shared" / "data"))


# ------------------------------------------------------------------------------------ shared data

def lingua_lines(shared_data: Path, lang: str) -> list[str]:
    """The sentences of shared/data/text/lingua/<lang>.txt (one a line), stripped, blank lines left out."""
    text = (shared_data / "text" / "lingua" / f"{lang}.txt").read_text(encoding="utf-8")
    return [ln.strip() for ln in text.split("\n") if ln.strip()]


def ccnet_reference(shared_data: Path) -> list[dict]:
    """The 20 documents CCNet itself wrote (shared/data/ccnet-reference), as parsed JSON, in file order."""
    docs = []
    for name in ("cc_en_head-0091.jsonl.gz", "cc_en_head-0174.jsonl.gz"):
        with gzip.open(shared_data / "ccnet-reference" / name, "rt", encoding="utf-8") as f:
            docs += [json.loads(line) for line in f]
    return docs


def wikitext_words(shared_data: Path) -> list[str]:
    """The words of WikiText-2's validation split, in order (text for MinHash tests)."""
    return (shared_data / "text" / "wikitext-2" / "valid.txt").read_text(encoding="utf-8").split()


# ------------------------------------------------------------------------------------ near duplicates

def word_shingles(text: str, n: int = 5) -> set[str]:
    """The word n-grams of MinHash's normalised text (a document shorter than n is one shingle)."""
    from operators.dedup.minhash import normalize

    w = normalize(text).split()
    return {" ".join(w[i:i + n]) for i in range(max(1, len(w) - n + 1))}


def shingle_jaccard(a: str, b: str) -> float:
    """The true Jaccard similarity that MinHash estimates."""
    sa, sb = word_shingles(a), word_shingles(b)
    return len(sa & sb) / len(sa | sb)


# ------------------------------------------------------------------------------------ readers

def read_shard(path, fmt="auto", batch_size=64, **params):
    """(reader, rows as dicts, batches) for one shard."""
    from operators.readers import open_reader

    reader = open_reader(str(path), fmt, **params)
    batches = list(reader.read(str(path), batch_size))
    rows = [r for b in batches for r in b.to_pylist()]
    return reader, rows, batches


def documents(rows: list[dict]) -> list[dict]:
    """The rows a reader passed on as documents (no drop reason)."""
    return [r for r in rows if r[DROP_REASON] is None]


def drop_reasons(rows: list[dict]) -> collections.Counter:
    """How many rows a reader rejected, by reason."""
    return collections.Counter(r[DROP_REASON] for r in rows if r[DROP_REASON] is not None)


# ------------------------------------------------------------------------------------ global operators

def serial_map(fn, items):
    """`ctx.parallel` without workers: the reduce's tasks run one after the other in this process."""
    return [fn(i) for i in items]


def global_context(root, num_shards: int, num_partitions: int, parallel=serial_map, out=None):
    """A real GlobalContext for a reduce run by a test: its folder under `root`, files such as
    duplicates.parquet written to `out` (default `root`)."""
    from engine.reduce import GlobalContext

    return GlobalContext(f"{root}/global", num_shards, num_partitions, parallel,
                         [f"shard-{s}" for s in range(num_shards)], output_dir=str(out or root))


def write_map_output(ctx, shard: int, table) -> None:
    """One shard's map output (rows with a `_partition` column) scattered into the files the reduce
    reads, through the engine's own map writer, as a shard task commits it."""
    from engine.shuffle import MapWriter

    writer = MapWriter(f"{ctx.workdir}/test-staging/shard-{shard}", ctx.num_partitions)
    writer.write(table)
    for partition, path in writer.close().items():
        eio.rename(path, ctx.layout.map_file(partition, shard))


def read_apply(ctx, shard: int):
    """What the reduce left for `apply` on a shard (None: nothing)."""
    path = ctx.apply_path(shard)
    return eio.read_parquet(path) if eio.exists(path) else None


def run_global_operator(op, batches: list, root, parallel=serial_map, out=None, map_check=None):
    """A global operator's three phases as the engine runs them: map every shard (batches[s] is
    shard s), one reduce, then apply on every shard. `map_check(shard, table)` sees each map output.
    Returns (the apply Result of each shard, the reduce's stats)."""
    op.ensure_setup()
    ctx = global_context(root, len(batches), op.num_partitions(), parallel, out)
    for shard, batch in enumerate(batches):
        table = op.map(batch)
        if map_check is not None:
            map_check(shard, table)
        write_map_output(ctx, shard, table)
    stats = op.reduce(ctx)
    return [op.apply(batch, read_apply(ctx, shard)) for shard, batch in enumerate(batches)], stats


# ------------------------------------------------------------------------------------ jobs

def drop_sevens_job(**over) -> dict:
    """A job with one plugin operator whose drops the test can predict (ids ending in 7)."""
    job = {"plugins": ["decant_test_plugins"], "pipeline": [{"test_drop_sevens": {}}],
           "executor": {"workers": 1, "batch_size": 16}}
    job.update(over)
    return job


#: 0.1 s per batch of 5: a shard of `slow_input` is still running when a test acts on it
SLOW_JOB = {"plugins": ["decant_test_plugins"], "pipeline": [{"test_slow": {}}], "executor": {"batch_size": 5}}


def slow_attempt(out: str, src: str, delay: float) -> None:
    """One attempt at shard 0 of SLOW_JOB, as a pool worker runs it (a spawn target: module level)."""
    import time

    from engine.shard_task import run_shard_stage
    from jobs.runjob import plan_job
    time.sleep(delay)
    plan, graph = plan_job(SLOW_JOB, [src], out)
    run_shard_stage(plan, graph, 0, 0)


def slow_input(tmp_path) -> str:
    src = tmp_path / "big.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i:04d}", "text": f"text number {i}"}) + "\n" for i in range(200)))
    return str(src)


# ------------------------------------------------------------------------------------ a local Ray cluster

def free_port(start: int) -> int:
    """A free TCP port on 127.0.0.1 at or above `start` (non-default ports: no clash with a cluster
    someone else runs on 6379/8265)."""
    for port in range(start, start + 2000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


class LocalRayCluster:
    """A real multi-node Ray cluster on this machine: `ray start --head` on 127.0.0.1 plus worker
    nodes joining it, each node with its own temp dir (two nodes sharing /tmp/ray would unpack a
    job's working_dir into the same folder and delete it under each other)."""

    def __init__(self, workers: int = 1, cpus_per_node: int = 1, dashboard: bool = False, base_port: int = 23400):
        self.root = Path(tempfile.mkdtemp(prefix="dct", dir="/tmp"))
        self.port = free_port(base_port)
        self.client_port = free_port(self.port + 1)
        self.dashboard_port = free_port(self.client_port + 1) if dashboard else None
        self.workers, self.cpus, self.dashboard = workers, cpus_per_node, dashboard
        self.env = dict(os.environ, RAY_AUTH_MODE="token", RAY_USAGE_STATS_ENABLED="0")
        self.env.pop("RAY_ADDRESS", None)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def _ray(self, *args: str) -> None:
        proc = subprocess.run(["ray", "start", *args], env=self.env, capture_output=True, text=True, timeout=120,
                              check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")

    def start(self) -> LocalRayCluster:
        head = ["--head", "--node-ip-address", "127.0.0.1", "--port", str(self.port),
                "--ray-client-server-port", str(self.client_port), "--num-cpus", str(self.cpus),
                "--temp-dir", str(self.root / "h"), "--disable-usage-stats"]
        if self.dashboard:
            head += ["--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
                     "--dashboard-port", str(self.dashboard_port)]
        else:
            head += ["--include-dashboard", "false"]
        self._ray(*head)
        for i in range(self.workers):
            self._ray("--address", self.address, "--node-ip-address", "127.0.0.1", "--num-cpus", str(self.cpus),
                      "--temp-dir", str(self.root / f"w{i}"))
        return self

    def processes(self):
        import psutil
        mark = str(self.root)
        own = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                if mark in " ".join(p.info["cmdline"] or []):
                    own.append(p)
            except (psutil.Error, TypeError):
                continue
        found = {p.pid: p for p in own}
        for p in own:
            try:
                for c in p.children(recursive=True):
                    found.setdefault(c.pid, c)
            except psutil.Error:
                pass
        return list(found.values())

    def actor_processes(self, name: str = "ShardWorker"):
        import psutil
        out = []
        for p in self.processes():
            try:
                if name in " ".join(p.cmdline()):
                    out.append(p)
            except psutil.Error:
                continue
        return out

    def stop(self) -> None:
        import psutil
        procs = self.processes()
        for p in procs:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(procs, timeout=15)
        subprocess.run(["rm", "-rf", str(self.root)], check=False)




_SHARED: dict = {}


def shared_cluster(request) -> LocalRayCluster:
    """One 2-node cluster (head with the dashboard / Jobs API + one worker node, 1 CPU each) for the
    whole test session, shared by the Ray executor and submit tests; stopped when the session ends.
    Starting it takes a while, so `boot_cluster` begins in the background at module start."""
    if "cluster" not in _SHARED:
        boot_cluster(request)
    thread = _SHARED.get("thread")
    if thread is not None:
        thread.join()
        _SHARED.pop("thread")
    if "error" in _SHARED:
        raise _SHARED["error"]
    return _SHARED["cluster"]


def boot_cluster(request) -> None:
    import atexit
    import threading
    if "cluster" in _SHARED:
        return
    c = LocalRayCluster(workers=1, cpus_per_node=1, dashboard=True)
    _SHARED["cluster"] = c

    def start():
        try:
            c.start()
        except Exception as e:  # noqa: BLE001 - re-raised in the test that needs the cluster
            _SHARED["error"] = e

    t = threading.Thread(target=start, daemon=True)
    t.start()
    _SHARED["thread"] = t
    atexit.register(c.stop)
    request.session.addfinalizer(c.stop)
