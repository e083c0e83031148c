"""How the local executor's worker processes start: forked from the driver when that is safe.

A spawned worker starts a new interpreter that imports (and, without bytecode caches, compiles)
the engine, pyarrow and the operators again and rebuilds the job's graph: about a second of CPU
per worker before its first unit, which a job on one worker (run in the driver) never pays. A
forked worker starts with all of that in milliseconds. Forking copies only the calling thread,
so a lock another thread holds (a progress display mid-write, an fsspec event loop, Ray's
client threads) would stay held in the child: with any other thread alive, workers are forked
from a forkserver instead, a clean single-threaded process that imported the engine once.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
from collections.abc import Iterable
from multiprocessing.context import BaseContext

#: What a forkserver imports once for all the workers it forks, besides the modules of the job's
#: packages that the driver has imported (its operators, readers and writers).
FORKSERVER_PRELOAD = ["numpy", "pyarrow", "pyarrow.parquet", "pyarrow.compute", "pydantic", "fsspec",
                      "engine.worker", "engine.shard_task", "engine.reduce"]


def fork_is_safe() -> bool:
    """Is the driver the only thread (so a fork copies no lock held elsewhere)?"""
    return sys.platform == "linux" and threading.active_count() == 1


def _forkserver(packages: Iterable[str]) -> BaseContext:
    ctx = mp.get_context("forkserver")
    below = tuple(f"{p}." for p in packages)
    loaded = sorted(m for m in list(sys.modules) if m in packages or m.startswith(below))
    ctx.set_forkserver_preload(FORKSERVER_PRELOAD + loaded)  # no effect once the server runs
    return ctx


def pool_context(packages: Iterable[str] = ()) -> BaseContext:
    """The start method of a new pool, decided when it is created (threads come and go)."""
    return mp.get_context("fork") if fork_is_safe() else _forkserver(tuple(packages))


def prestart_forkserver(packages: Iterable[str] = ()) -> None:
    """Start the forkserver now when the pool will need one, so that its imports run while the
    driver plans (the server is started once per driver and serves every later pool)."""
    if not fork_is_safe() and sys.platform != "win32":
        from multiprocessing import forkserver
        _forkserver(tuple(packages))
        forkserver.ensure_running()


def worker_env() -> dict[str, str]:
    """The driver's environment, for a worker forked from a forkserver started earlier."""
    return dict(os.environ)
