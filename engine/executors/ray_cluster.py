"""Connecting to Ray: a private local instance bound to 127.0.0.1, a cluster by address, or the
cluster of the Ray Job this driver runs in; and the plan's paths as every node must see them.

A local instance is started with its node address on loopback (GCS, raylet, object manager and
workers listen there, never on every interface) and no dashboard; `DECANT_RAY_NODE_IP` chooses
another address for a user who wants a reachable local cluster.
"""
from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable
from typing import Any

import ray

from engine.plan import JobPlan

LOCAL_NODE_IP = "127.0.0.1"


def connect(address: str | None, ship_code: bool | None, runtime_env: dict[str, Any] | None,
            ship_runtime_env: Callable[[], dict[str, Any]]) -> bool:
    """ray.init for this job; True when the connection is ours to shut down."""
    kw: dict[str, Any] = {"log_to_driver": False, "ignore_reinit_error": True}
    inside_job = bool(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")) or (
        bool(os.environ.get("RAY_ADDRESS")) and address is None)
    if address is None and not inside_job:
        # a private Ray instance on this machine ("local": never attach to another cluster that
        # happens to run here); the editable install makes the code importable
        kw.update(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False,
                  _node_ip_address=os.environ.get("DECANT_RAY_NODE_IP", LOCAL_NODE_IP))
    else:
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
