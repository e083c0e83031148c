"""Helpers shared by the tests (imported as `support`: pyproject puts tests/ on sys.path). Test
modules import from here, never from each other; fixtures live in conftest.py."""
from __future__ import annotations

import collections
import gzip
import json
import logging
import os
import re
import socket
import subprocess
import tempfile
import threading
import urllib.parse
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
    writer.commit(ctx.layout, shard)


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
        # token auth needs a token before `ray start` (a fresh machine has none): Ray's own command
        # writes ~/.ray/auth_token when it is missing, which every client here then finds
        subprocess.run(["ray", "get-auth-token", "--generate"], env=self.env, capture_output=True, timeout=120,
                       check=True)
        # each node's dashboard agent on a port of its own: on the default port (52365) it clashes
        # with any other Ray on this machine, and a head without its agent accepts no job
        agent_port = free_port(24400)
        self._ray(*head, "--dashboard-agent-listen-port", str(agent_port))
        for i in range(self.workers):
            agent_port = free_port(agent_port + 1)
            self._ray("--address", self.address, "--node-ip-address", "127.0.0.1", "--num-cpus", str(self.cpus),
                      "--temp-dir", str(self.root / f"w{i}"), "--dashboard-agent-listen-port", str(agent_port))
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


# ------------------------------------------------------------------------------------ a local S3 server

class LocalS3:
    """A real S3 API server (moto's standalone server, the S3 protocol over HTTP) on 127.0.0.1, and
    the environment that points botocore/s3fs at it. The environment goes into os.environ, so the
    local pool workers a job spawns reach the same server, and `env` is what a driver run as a
    subprocess needs. Every request is logged as (method, key) for tests that count writes."""

    BUCKET = "decant-test"

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._saved: dict[str, str | None] = {}
        self.server = None
        self.endpoint = ""

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_ENDPOINT_URL_S3": self.endpoint,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_CONFIG_FILE": os.devnull,
                "NO_PROXY": ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1"]))}

    def start(self) -> LocalS3:
        from moto.server import ThreadedMotoServer
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        log = logging.getLogger("werkzeug")  # the server's request lines: counted, not printed
        log.addHandler(_RequestCounter(self))
        log.setLevel(logging.INFO)
        log.propagate = False
        for k, v in {**self.env, "AWS_PROFILE": None, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": None}.items():
            self._saved[k] = os.environ.get(k)
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self.fs().mkdir(self.BUCKET)
        return self

    def fs(self):
        """An s3fs client of its own (no listing cache shared with the engine's)."""
        import s3fs
        return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)

    def url(self, key: str) -> str:
        return f"s3://{self.BUCKET}/{key.lstrip('/')}"

    def keys(self, prefix: str) -> list[str]:
        """Every object under s3://BUCKET/prefix, as keys relative to it."""
        root = f"{self.BUCKET}/{prefix.strip('/')}/"
        return sorted(k[len(root):] for k in self.fs().find(root))

    def log_request(self, method: str, key: str) -> None:
        with self._lock:
            self.requests.append((method, key))

    def take_requests(self) -> list[tuple[str, str]]:
        """The requests since the last call (method, key without the bucket; `?` and after dropped)."""
        with self._lock:
            out, self.requests = self.requests, []
        return out

    def stop(self) -> None:
        log = logging.getLogger("werkzeug")
        for h in [h for h in log.handlers if isinstance(h, _RequestCounter) and h.s3 is self]:
            log.removeHandler(h)
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if self.server is not None:
            self.server.stop()


class _RequestCounter(logging.Handler):
    """The server's request lines ('"PUT /bucket/key?x HTTP/1.1" 200 -', maybe coloured) as (method, key)."""

    LINE = re.compile(r'"([A-Z]+) /([^/?\s]+)/?([^?\s]*)\S* HTTP')
    ANSI = re.compile(r"\x1b\[[0-9;]*m")

    def __init__(self, s3: LocalS3) -> None:
        super().__init__(logging.INFO)
        self.s3 = s3

    def emit(self, record: logging.LogRecord) -> None:
        m = self.LINE.search(self.ANSI.sub("", record.getMessage()))
        if m and m.group(2) == self.s3.BUCKET:
            self.s3.log_request(m.group(1), urllib.parse.unquote(m.group(3)))


# ------------------------------------------------------------------------------------ golden output

#: The default job's output on samples/ over the columns that engine work must not change
#: (perplexity and bucket follow the bundled models; new signal columns are not in the list).
#: Change these only on purpose, saying why. History: 732c01611fa549dc / ec76a02851d30bc1 before
#: and after the engine restructure (issue 10); then per-language quality settings (zh/ja words
#: by ICU, stop words per language; issue 13) changed which documents quality keeps.
DEFAULT_JOB_COLUMNS = (
    "date", "extract_html_bytes", "id", "language", "language_score", "line_dedup_length", "line_dedup_nlines",
    "line_dedup_original_length", "line_dedup_original_nlines", "pii_emails", "pii_ips", "quality_alpha_word_frac",
    "quality_bullet_line_frac", "quality_c4_curly_bracket", "quality_c4_lines_removed", "quality_c4_lorem_ipsum",
    "quality_c4_sentences", "quality_dup_10gram_char_frac", "quality_dup_5gram_char_frac",
    "quality_dup_6gram_char_frac", "quality_dup_7gram_char_frac", "quality_dup_8gram_char_frac",
    "quality_dup_9gram_char_frac", "quality_dup_line_char_frac", "quality_dup_line_frac",
    "quality_dup_para_char_frac", "quality_dup_para_frac", "quality_ellipsis_line_frac",
    "quality_fineweb_dup_line_char_ratio", "quality_fineweb_line_punct_ratio", "quality_fineweb_lines",
    "quality_fineweb_newline_word_ratio", "quality_fineweb_short_line_ratio", "quality_mean_word_length",
    "quality_stop_word_count", "quality_symbol_word_ratio", "quality_top_2gram_char_frac",
    "quality_top_3gram_char_frac", "quality_top_4gram_char_frac", "quality_word_count", "source", "text", "url",
    "url_filter_domain", "url_filter_keyword")
DEFAULT_JOB_DIGEST = {"documents": "48a2c18dd891b118", "rejects": "66448b553563e34a"}


def table_digest(table, columns) -> str:
    """sha256 (16 hex) of the rows' values in the named columns, independent of row order."""
    import hashlib
    missing = [c for c in columns if c not in table.schema.names]
    assert not missing, f"columns missing from the output: {missing}"
    rows = sorted(json.dumps({c: r[c] for c in columns}, sort_keys=True, default=str) for r in table.to_pylist())
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


def output_digest(out) -> dict[str, str]:
    from operators.writers import read_documents, read_rejects
    return {"documents": table_digest(read_documents(str(out)), DEFAULT_JOB_COLUMNS),
            "rejects": table_digest(read_rejects(str(out)), ("id", "operator", "reason", "source", "url"))}
