"""What can be checked of docker/ without a Docker engine or Kubernetes: the files parse, have the
expected kinds and fields, and point at things that exist in the repository."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from support import REPO

DOCKER = REPO / "docker"


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = dockerfile.read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile():
    ins = _instructions(DOCKER / "Dockerfile")
    assert ins[0] == ("FROM", "python:3.11-slim")
    runs = " && ".join(a for k, a in ins if k == "RUN")
    assert "bash scripts/install.sh" in runs
    copies = [shlex.split(a) for k, a in ins if k == "COPY"]
    sources = {c[0].rstrip("/") for c in copies}
    assert {"models", "scripts", "engine", "operators", "jobs", "pyproject.toml"} <= sources
    # what the image copies exists in the repository
    for c in copies:
        for src in c[:-1]:
            assert (REPO / src).exists(), f"COPY {src}: not in the repository"
    assert ["models/", "models/"] in [c for c in copies if c[0].startswith("models")]
    # the install script is copied before it runs
    first_install = next(i for i, (k, a) in enumerate(ins) if k == "RUN" and "scripts/install.sh" in a)
    first_scripts = next(i for i, (k, a) in enumerate(ins) if k == "COPY" and a.startswith("scripts/"))
    assert first_scripts < first_install
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    assert ".git" in ignore and "out" in ignore


def test_install_script_exists():
    script = REPO / "scripts" / "install.sh"
    assert script.is_file()
    text = script.read_text()
    assert "pip install" in text and "build_kenlm.sh" in text


def test_compose():
    doc = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = doc["services"]
    assert set(services) == {"ray-head", "ray-worker-1", "ray-worker-2"}
    images = {s["image"] for s in services.values()}
    assert len(images) == 1, images
    assert "decant" in images.pop()
    head = services["ray-head"]
    assert head["build"]["dockerfile"] == "docker/Dockerfile"
    assert (DOCKER / head["build"]["context"] / head["build"]["dockerfile"]).resolve() == (DOCKER / "Dockerfile").resolve()
    assert "ray start --head" in head["command"] and "--block" in head["command"]
    assert any(p.endswith(":8265") for p in head["ports"])
    assert all(p.startswith("127.0.0.1:") for p in head["ports"]), "publish on loopback only"
    for name in ("ray-worker-1", "ray-worker-2"):
        w = services[name]
        assert "--address=ray-head:6379" in w["command"] and "--block" in w["command"]
        assert "ray-head" in w["depends_on"]
    for s in services.values():
        assert any(v.endswith(":/data") for v in s["volumes"]), "every node sees the output volume"
        assert s["environment"]["RAY_AUTH_MODE"] == "token"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _cluster_spec_checks(spec: dict) -> None:
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"
    images = {c["image"] for c in head["template"]["spec"]["containers"]}
    groups = spec["workerGroupSpecs"]
    assert groups and all(g["replicas"] >= 1 for g in groups)
    for g in groups:
        images |= {c["image"] for c in g["template"]["spec"]["containers"]}
    assert images == {"decant:latest"}
    for pod in [head["template"]] + [g["template"] for g in groups]:
        mounts = [m["mountPath"] for c in pod["spec"]["containers"] for m in c.get("volumeMounts", [])]
        assert "/data" in mounts
        claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v]
        assert claims == ["decant-data"]


def test_kuberay_raycluster():
    docs = _docs(DOCKER / "kuberay" / "raycluster.yaml")
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"RayCluster", "PersistentVolumeClaim"}
    rc = kinds["RayCluster"]
    assert rc["apiVersion"] == "ray.io/v1"
    _cluster_spec_checks(rc["spec"])
    assert kinds["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_kuberay_rayjob_runs_the_default_job():
    (job,) = _docs(DOCKER / "kuberay" / "rayjob.yaml")
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[:2] == ["decant", "run"]
    assert argv[argv.index("--executor") + 1] == "ray"
    assert argv[argv.index("-o") + 1] == "/data/out"
    job_file = argv[2]
    assert job_file == "jobs/default.yaml" and (REPO / job_file).is_file()
    # the job file is a valid decant job
    from engine.job import load_job
    from jobs.runjob import validate_job
    validate_job(load_job(REPO / job_file))
    assert spec["shutdownAfterJobFinishes"] is True
    _cluster_spec_checks(spec["rayClusterSpec"])
