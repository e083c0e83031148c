"""Connecting to Ray: a private local instance bound to 127.0.0.1, a cluster by address, or the
cluster of the Ray Job this driver runs in; and the plan's paths as every node must see them.

A local instance is started with its node address on loopback and no dashboard: its GCS, raylet,
object manager, workers, dashboard agent, metrics exporters and runtime-env agent then listen on
127.0.0.1 only, never on every interface (Ray binds its servers to loopback exactly when the node
address is loopback, and to all interfaces otherwise). `DECANT_RAY_NODE_IP` chooses another
address for a user who wants a local instance other machines can reach.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
import ipaddress
import os
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any

import ray

from engine.errors import JobError
from engine.plan import JobPlan

LOCAL_NODE_IP = "127.0.0.1"
#: The node address of a local instance decant starts (default: LOCAL_NODE_IP, loopback only).
NODE_IP_ENV = "DECANT_RAY_NODE_IP"


def local_node_ip() -> str:
    """The node address for a local Ray instance: loopback unless the user chose another."""
    return os.environ.get(NODE_IP_ENV, "").strip() or LOCAL_NODE_IP


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def single_machine_mode() -> Iterator[None]:
    """Ray on Linux replaces a loopback node address given to `ray.init` by the machine's reachable
    address (so that other nodes could join), and then binds its servers to all interfaces. Its
    single-machine mode (what `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` selects, read once when Ray is
    imported) keeps loopback; it is switched on only while the local instance starts, so that a
    later connection to a real cluster from this process is not affected."""
    try:
        constants = importlib.import_module("ray._private.ray_constants")
    except ImportError:  # another Ray layout: the address check after ray.init still guards
        yield
        return
    saved = getattr(constants, "ENABLE_RAY_CLUSTER", None)
    if saved is None:
        yield
        return
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = saved


#: Tries at starting a local instance: its raylet gives up when the dashboard agent has not written
#: its ports within a fixed time, which a loaded machine can exceed once.
LOCAL_START_TRIES = 2


def init_local(kw: dict[str, Any]) -> None:
    """ray.init of a new local instance, tried again when its node did not come up; what the
    failed try left running (its GCS, dashboard, ...) is killed first."""
    for attempt in range(1, LOCAL_START_TRIES + 1):
        before = {p.pid for p in session_processes()}
        try:
            ray.init(**kw)
            return
        except Exception as e:  # Ray raises a bare Exception for a node that did not come up
            if "timed out during startup" not in str(e) or attempt == LOCAL_START_TRIES:
                raise
            ray.shutdown()
            kill([p for p in session_processes() if p.pid not in before])


def session_processes() -> list:
    """The processes of the local Ray instances this process started: its descendants that work
    in a Ray session folder named after this process (`session_<time>_<pid>`)."""
    import psutil

    marker = re.compile(rf"session_[0-9_-]+_{os.getpid()}(?![0-9])")
    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if marker.search(" ".join(child.cmdline())):
                found.append(child)
    return found


def kill(procs: list) -> None:
    import psutil

    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(procs, timeout=15)


def start_local(num_cpus: int, **kw: Any) -> None:
    """Start a private Ray instance on this machine on `local_node_ip()`; refuses (JobError) when
    Ray put a loopback-only node on another address."""
    ip = local_node_ip()
    # "local": never attach to another cluster that happens to run here
    kw.update(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address=ip)
    if not is_loopback(ip):
        init_local(kw)
        return
    with single_machine_mode():
        init_local(kw)
    node_ip = ray.util.get_node_ip_address()
    if not is_loopback(node_ip):
        ray.shutdown()
        raise JobError(f"executor: the local Ray instance came up on {node_ip}, reachable from other machines, "
                       f"not on {ip}; set {NODE_IP_ENV}={node_ip} to allow that")


def connect(address: str | None, ship_code: bool | None, runtime_env: dict[str, Any] | None,
            ship_runtime_env: Callable[[], dict[str, Any]]) -> bool:
    """ray.init for this job; True when the connection is ours to shut down."""
    kw: dict[str, Any] = {"log_to_driver": False, "ignore_reinit_error": True}
    inside_job = bool(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")) or (
        bool(os.environ.get("RAY_ADDRESS")) and address is None)
    if address is None and not inside_job:
        # a private Ray instance on this machine; the editable install makes the code importable
        start_local(os.cpu_count() or 1, **kw)
        return True
    if address is not None:
        kw["address"] = address
    ship = ship_code
    if ship is None:
        # inside a submitted Ray Job the job's runtime_env already carries the code;
        # a client or a driver on a cluster node is given the repository explicitly
        ship = address is not None and not inside_job and not importable_on_cluster_node(address)
    if runtime_env is not None:
        kw["runtime_env"] = runtime_env
    elif ship:
        kw["runtime_env"] = ship_runtime_env()
    ray.init(**kw)
    # inside a submitted Ray Job the connection belongs to the job: left to the process exit
    return not inside_job


def _is_local_path(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def absolute_plan(plan: JobPlan) -> JobPlan:
    """The plan with local paths made absolute: Ray workers may run in another directory
    (a cluster's unpacked working_dir), so `out/` must mean the driver's `out/`."""
    out = os.path.abspath(plan.out) if _is_local_path(plan.out) and not plan.out.startswith("file://") else plan.out
    inputs = [os.path.abspath(p) if "://" not in p else p for p in plan.inputs]
    return dataclasses.replace(plan, out=out, inputs=inputs)


def importable_on_cluster_node(address: str) -> bool:
    """True when the driver runs on a node of the cluster it connects to with the project installed
    there (a local cluster on this machine): shipping the repository is then unnecessary."""
    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    if address in ("auto", "local"):
        return True
    return host in ("127.0.0.1", "localhost", "::1", _own_ip())


def _own_ip() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return ""
