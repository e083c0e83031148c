"""The local executor's process pool: its workers do not outlive a killed driver."""
from __future__ import annotations

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
