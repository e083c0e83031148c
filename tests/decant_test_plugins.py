"""An operator defined outside the `operators` package, loaded through the job's `plugins:` list."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from engine.documents import set_column
from engine.operator import Filter, register
from engine.reader import Reader


@register
class DropSevens(Filter):
    """Test operator: drops documents whose id ends in 7 (a decision the test can predict)."""

    name = "test_drop_sevens"
    outputs = ("test_drop_sevens_flag",)

    def compute(self, batch):
        ids = batch.column("id").to_pylist()
        return set_column(batch, "test_drop_sevens_flag", pa.array([i.endswith("7") for i in ids]))

    def decide(self, batch):
        flag = np.asarray(batch.column("test_drop_sevens_flag").to_pylist(), dtype=bool)
        return ~flag, np.full(len(flag), "ends_in_seven", dtype=object)


@register
class NullFirst(Filter):
    """Test operator: a signal column that is all-null (Arrow type null) in batches where no id ends in
    0..4, and strings elsewhere: batches of one shard whose column types differ."""

    name = "test_null_first"
    outputs = ("test_null_first_tag",)

    def compute(self, batch):
        ids = batch.column("id").to_pylist()
        return set_column(batch, "test_null_first_tag", pa.array([i if int(i[-2:]) >= 16 else None for i in ids]))

    def decide(self, batch):
        return np.ones(batch.num_rows, dtype=bool), np.full(batch.num_rows, "", dtype=object)


@register
class Slow(Filter):
    """Test operator: 0.1 s per batch, so that a shard is still running when a test acts on it."""

    name = "test_slow"

    def decide(self, batch):
        import time
        time.sleep(0.1)
        return np.ones(batch.num_rows, dtype=bool), np.full(batch.num_rows, "", dtype=object)


@register
class FailFirstShard(Filter):
    """Test operator: raises on the documents of the first shard (an operator bug)."""

    name = "test_fail_first_shard"

    def decide(self, batch):
        if batch.column("source").to_pylist()[0].startswith("shard-0."):
            raise ValueError("operator bug on the first shard")
        return np.ones(batch.num_rows, dtype=bool), np.full(batch.num_rows, "", dtype=object)


@register
class KillWorkerOnce(Filter):
    """Test operator: the first pool worker to run it kills its own process (as the OOM killer
    would), once per `marker` file; it never kills a driver running units in-process."""

    name = "test_kill_worker_once"

    class Params(Filter.Params):
        marker: str
        #: The environment variable this worker must see with value "1" (the driver's, at run time).
        needs_env: str = ""

    def decide(self, batch):
        import multiprocessing
        import os
        import signal
        if self.params.needs_env and os.environ.get(self.params.needs_env) != "1":
            raise RuntimeError(f"worker does not see the driver's {self.params.needs_env}")
        if multiprocessing.parent_process() is not None and not os.path.exists(self.params.marker):
            open(self.params.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return np.ones(batch.num_rows, dtype=bool), np.full(batch.num_rows, "", dtype=object)


@register
class SetupPid(Filter):
    """Test operator: a column with the pid of the process that set it up (`preload: true` lets a
    driver about to fork preload it), and one with the pid that ran the batch."""

    name = "test_setup_pid"
    outputs = ("test_setup_pid", "test_batch_pid")

    class Params(Filter.Params):
        preload: bool = False

    def __init__(self, **params):
        super().__init__(**params)
        self.preload_before_fork = self.params.preload
        self.setup_pid = None

    def setup(self):
        import os
        self.setup_pid = os.getpid()

    def compute(self, batch):
        import os
        n = batch.num_rows
        batch = set_column(batch, "test_setup_pid", pa.array([self.setup_pid] * n, pa.int64()))
        return set_column(batch, "test_batch_pid", pa.array([os.getpid()] * n, pa.int64()))

    def decide(self, batch):
        return np.ones(batch.num_rows, dtype=bool), np.full(batch.num_rows, "", dtype=object)


@register
class LosesRows(Filter):
    """Test operator that breaks the contract: filters the batch itself instead of returning a mask."""

    name = "test_loses_rows"

    def process(self, batch):
        from engine.operator import Result
        return Result(batch.slice(0, max(0, batch.num_rows - 1)))


# ----------------------------------------------------------------------------- a storage that fails
import fsspec
from fsspec.implementations.local import LocalFileSystem


class FlakyFileSystem(LocalFileSystem):
    """Local files behind `flaky://`: reading past CUT bytes of a file raises ConnectionResetError
    while `failures[path]` is above zero (each failure uses one), as a dropped object-store stream."""

    protocol = "flaky"
    CUT = 20_000
    failures: dict[str, int] = {}

    @classmethod
    def _strip_protocol(cls, path):
        path = path[len("flaky://"):] if str(path).startswith("flaky://") else path
        return super()._strip_protocol(path)

    def _open(self, path, mode="rb", **kw):
        f = super()._open(path, mode, **kw)
        return _CutFile(f, self._strip_protocol(path)) if "r" in mode else f


class _CutFile:
    def __init__(self, f, path):
        self._f, self._path = f, path

    def read(self, n=-1):
        pos = self._f.tell()
        want = n if n is not None and n >= 0 else 1 << 62
        if pos + want > FlakyFileSystem.CUT and FlakyFileSystem.failures.get(self._path, 0) > 0:
            FlakyFileSystem.failures[self._path] -= 1
            raise ConnectionResetError(104, "Connection reset by peer")
        return self._f.read(n)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


fsspec.register_implementation("flaky", FlakyFileSystem, clobber=True)


@register
class LinesThenCrash(Reader):
    """Test reader (a plugin format): one document per line of a text file, `text.lines`, and it
    raises after CRASH_AFTER lines when that is set: a reader bug part-way through a shard."""

    name = "test_lines"
    suffixes = (".lines",)
    OPTIONS = {"crash_after"}

    def __init__(self, crash_after: int | None = None) -> None:
        super().__init__(crash_after=crash_after)
        self.crash_after = crash_after

    @classmethod
    def sniff(cls, head: bytes, path: str) -> bool:
        return head.startswith(b"#lines\n")

    def read(self, path, batch_size):
        from engine.documents import make_batch
        from engine.io import open_input
        with open_input(path) as f:
            lines = f.read().decode().splitlines()[1:]
        for i, line in enumerate(lines):
            if self.crash_after is not None and i == self.crash_after:
                raise RuntimeError("reader bug")
            self.count("records", "line")
            yield make_batch({"id": [f"{path.rsplit('/', 1)[-1]}:{i}"], "text": [line],
                              "source": [f"{path.rsplit('/', 1)[-1]}:{i + 2}"]})
