"""The local executor's process pool: its workers do not outlive a killed driver."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support import SLOW_JOB, slow_input


def test_pool_workers_end_with_a_killed_driver(tmp_path, repo):
    # a killed driver left its pool workers running forever (they finished their shard first)
    import signal
    import time
    src = slow_input(tmp_path)
    code = ("import sys; from jobs.runjob import run_job; "
            f"run_job({SLOW_JOB!r}, inputs=[{src!r}, {src!r} + '.copy'], out={str(tmp_path / 'o')!r}, workers=2)")
    Path(src + ".copy").write_text(Path(src).read_text())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), str(repo / "tests")])}
    drv = subprocess.Popen([sys.executable, "-c", code], cwd=repo, env=env)
    children: list[int] = []
    for _ in range(100):
        time.sleep(0.1)
        children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == drv.pid]
        if len(children) >= 2:
            break
    time.sleep(1.0)
    drv.send_signal(signal.SIGKILL)
    drv.wait()
    assert children
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{c}").exists() for c in children):
        time.sleep(0.2)
    alive = [c for c in children if Path(f"/proc/{c}").exists()]
    for c in alive:
        os.kill(c, signal.SIGKILL)
    assert not alive


def _ppid(proc: Path) -> int:
    try:
        for line in (proc / "status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def _lines_input(tmp_path, files: int = 4, docs: int = 60) -> list[str]:
    src = []
    for s in range(files):
        p = tmp_path / f"in-{s}.jsonl"
        p.write_text("".join(json.dumps({"id": f"{s}-{i:03d}", "text": f"text {s} {i}"}) + "\n" for i in range(docs)))
        src.append(str(p))
    return src


def _kill_job(marker: Path, needs_env: str = "") -> dict:
    return {"plugins": ["decant_test_plugins"], "executor": {"batch_size": 10},
            "pipeline": [{"test_kill_worker_once": {"marker": str(marker), "needs_env": needs_env}}]}


def test_a_killed_worker_is_replaced_and_its_unit_redone(tmp_path):
    # the pool is rebuilt (forked or from the forkserver) and the output is the one a single
    # in-process worker writes (which the operator never kills)
    from jobs.runjob import run_job
    from operators.writers import read_documents
    src = _lines_input(tmp_path)
    marker = tmp_path / "killed"
    two = run_job(_kill_job(marker), inputs=src, out=str(tmp_path / "two"), workers=2)
    assert marker.exists()  # a worker did die
    one = run_job(_kill_job(tmp_path / "never"), inputs=src, out=str(tmp_path / "one"), workers=1)
    assert two["total"]["documents_kept"] == one["total"]["documents_kept"] == 240
    assert two["total"]["accounting_ok"]
    key = [("id", "ascending")]
    assert read_documents(str(tmp_path / "two")).select(["id", "text"]).sort_by(key).equals(
        read_documents(str(tmp_path / "one")).select(["id", "text"]).sort_by(key))


def test_a_driver_with_other_threads_starts_workers_from_a_forkserver(tmp_path, monkeypatch):
    # a fork would copy the locks of the other thread (a progress display, Ray's client): the
    # workers come from a forkserver, and they see the driver's environment as it is now
    import threading

    from engine.executors import pool_start
    from jobs.runjob import run_job
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)
    t.start()
    try:
        assert not pool_start.fork_is_safe()
        assert pool_start.pool_context().get_start_method() == "forkserver"
        pool_start.prestart_forkserver()
        monkeypatch.setenv("DECANT_TEST_DRIVER_ENV", "1")  # set after the server started
        marker = tmp_path / "killed"
        stats = run_job(_kill_job(marker, "DECANT_TEST_DRIVER_ENV"), inputs=_lines_input(tmp_path),
                        out=str(tmp_path / "o"), workers=2)
    finally:
        stop.set()
    assert marker.exists()
    assert stats["total"]["documents_kept"] == 240 and stats["total"]["accounting_ok"]


def test_forked_workers_share_what_the_driver_preloaded(tmp_path):
    # an operator that allows it is set up once, in the driver, before the fork; one that does
    # not is set up in each worker; the documents are the same either way
    from engine.executors import pool_start
    from jobs.runjob import run_job
    from operators.writers import read_documents
    src = _lines_input(tmp_path)
    forked = pool_start.fork_is_safe()  # another thread alive (a Ray client left by a test): a forkserver
    outs = {}
    for preload in (True, False):
        job = {"plugins": ["decant_test_plugins"], "executor": {"batch_size": 10},
               "pipeline": [{"test_setup_pid": {"preload": preload}}, {"test_drop_sevens": {}}]}
        run_job(job, inputs=src, out=str(tmp_path / str(preload)), workers=2)
        outs[preload] = read_documents(str(tmp_path / str(preload))).sort_by([("id", "ascending")])
    pre, own = outs[True], outs[False]
    assert os.getpid() not in set(pre.column("test_batch_pid").to_pylist())  # batches ran in workers
    if forked:
        assert set(pre.column("test_setup_pid").to_pylist()) == {os.getpid()}  # the driver, once
    else:
        assert pre.column("test_setup_pid").to_pylist() == pre.column("test_batch_pid").to_pylist()
    assert own.column("test_setup_pid").to_pylist() == own.column("test_batch_pid").to_pylist()
    assert pre.select(["id", "text"]).equals(own.select(["id", "text"]))
