"""A local Ray instance that decant starts listens on loopback only: every server of every process
it starts (GCS, raylet and object manager, workers, dashboard agent, metrics, runtime-env agent)."""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("ray")
pytest.importorskip("psutil")

from support import REPO

from engine.executors.ray_cluster import (
    LOCAL_NODE_IP,
    NODE_IP_ENV,
    is_loopback,
    local_node_ip,
)

pytestmark = [pytest.mark.ray]

#: Starts the local instance as `decant run --executor ray` does, runs tasks on its workers, then
#: lists every listening socket of this process and its descendants (Ray's processes).
PROBE = """
import json, os, psutil, ray
from engine.executors.ray_cluster import connect

connect(None, None, None, dict)

@ray.remote
def pid():
    return os.getpid()

workers = sorted(set(ray.get([pid.remote() for _ in range(4)])))
me = psutil.Process()
listening = []
for p in [me, *me.children(recursive=True)]:
    try:
        for c in p.net_connections(kind="inet"):
            if c.status == psutil.CONN_LISTEN:
                listening.append([p.name(), p.pid, c.laddr.ip, c.laddr.port])
    except psutil.Error:
        pass
print(json.dumps({"node_ip": ray.util.get_node_ip_address(), "workers": workers, "listening": listening}))
ray.shutdown()
"""


def loopback_address(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


def test_local_instance_listens_on_loopback_only():
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", NODE_IP_ENV)}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=str(REPO), env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["node_ip"] == LOCAL_NODE_IP
    names = {name for name, *_ in seen["listening"]}
    # the core servers were seen, and so was each worker that ran a task: the check covered them
    assert {"gcs_server", "raylet"} <= names, names
    assert set(seen["workers"]) <= {pid for _, pid, _, _ in seen["listening"]}
    wide = [entry for entry in seen["listening"] if not loopback_address(entry[2])]
    assert not wide, f"listening beyond loopback: {wide}"


def test_node_address_is_loopback_unless_the_user_opts_out(monkeypatch):
    monkeypatch.delenv(NODE_IP_ENV, raising=False)
    assert local_node_ip() == LOCAL_NODE_IP and is_loopback(local_node_ip())
    monkeypatch.setenv(NODE_IP_ENV, "192.0.2.7")
    assert local_node_ip() == "192.0.2.7" and not is_loopback(local_node_ip())
    monkeypatch.setenv(NODE_IP_ENV, "  ")
    assert local_node_ip() == LOCAL_NODE_IP
    assert is_loopback("::1") and is_loopback("localhost") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("example.org")
