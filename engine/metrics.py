"""Memory and CPU of the processes that run a job, as recorded with each unit of work."""
from __future__ import annotations

import os
import socket
from typing import Any


def _vm_hwm_kb() -> int:
    """Peak RSS of this process's own address space (Linux VmHWM, KiB); 0 where unavailable.

    Preferred to ru_maxrss, which Linux carries over from the parent's memory across fork/exec, so a
    worker spawned by a large driver would report the driver's size."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def worker_memory(role: str = "worker") -> dict[str, Any]:
    """The process's peak resident memory so far (the high-water mark of this worker) and CPU time."""
    try:
        import resource
        ru = resource.getrusage(resource.RUSAGE_SELF)
        peak_kb, cpu = ru.ru_maxrss, ru.ru_utime + ru.ru_stime  # ru_maxrss: KiB on Linux
    except (ImportError, OSError):
        peak_kb, cpu = 0, 0.0
    peak_kb = _vm_hwm_kb() or peak_kb
    return {"pid": os.getpid(), "host": socket.gethostname(), "role": role, "max_rss_mb": round(peak_kb / 1024, 1),
            "cpu_seconds": round(cpu, 3)}


def peak_rss(workers: list[dict[str, Any]]) -> dict[str, Any]:
    """Peak RSS per worker process (MB) over a job's units, the largest of them, and the CPU seconds
    the worker processes used (user + system, cumulative per process: the last unit's value counts)."""
    per: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for w in workers:
        if w and w.get("max_rss_mb"):
            key = f"{w.get('role', 'worker')}:{w.get('host', '')}:{w.get('pid')}"
            per[key] = max(per.get(key, 0.0), float(w["max_rss_mb"]))
            cpu[key] = max(cpu.get(key, 0.0), float(w.get("cpu_seconds") or 0.0))
    pool = {k: v for k, v in per.items() if not k.startswith("driver:")}
    return {"peak_rss_mb": max(pool.values()) if pool else None, "rss_mb_per_process": per,
            "worker_cpu_seconds": round(sum(v for k, v in cpu.items() if not k.startswith("driver:")), 3)}
