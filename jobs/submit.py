"""`decant submit | status | logs | stop`: a job as a Ray Job on a cluster, through the Ray Jobs API.

`decant submit JOB --address http://HEAD:8265` ships the repository as the job's working
directory (runtime_env working_dir = the repo root, without .git, out/, bench-results/ and other
big or irrelevant folders) and runs `python -m jobs.cli run JOB ... --executor ray` as the
entrypoint on the head node; that driver connects to the cluster and spreads shards over its
workers. A job file inside the repository is passed by its path relative to the repo; one outside
it is carried inside the entrypoint and written next to the code on the cluster before the run.
Input and output paths must be visible to every node: an fsspec URL (s3://, gs://, ...) or a
shared filesystem; local paths that exist here are passed as absolute paths (a cluster on this
machine, or a shared mount at the same place).

These functions are mounted as commands by jobs/cli.py.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import typer

from jobs.paths import REPO_ROOT, WORKING_DIR_EXCLUDES

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
ADDRESS_ENV = "RAY_API_SERVER_ADDRESS"
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}



def _client(address: str):
    from ray.job_submission import JobSubmissionClient
    if "://" not in address:
        address = f"http://{address}"
    return JobSubmissionClient(address)


def _path_arg(p: str) -> str:
    """An input/output path as the cluster should see it (see the module docstring)."""
    if "://" in p:
        return p
    ap = Path(p).expanduser()
    if ap.is_absolute():
        return str(ap)
    return str(ap.resolve())


def build_entrypoint(job: str | None, inputs: list[str] | None, output: str | None, sets: list[str] | None,
                     workers: int | None, extra_excludes: list[str] | None = None) -> tuple[str, list[str]]:
    """The entrypoint command and the working_dir excludes for a job."""
    parts: list[str] = []
    prefix = ""
    excludes = list(WORKING_DIR_EXCLUDES) + list(extra_excludes or [])
    if job:
        jp = Path(job).expanduser().resolve()
        if not jp.is_file():
            raise typer.BadParameter(f"job file {job} does not exist")
        try:
            rel = jp.relative_to(REPO_ROOT)
            job_arg = rel.as_posix()
        except ValueError:
            data = jp.read_bytes()
            name = f".decant-job-{hashlib.sha256(data).hexdigest()[:12]}.yaml"
            b64 = base64.b64encode(data).decode()
            prefix = ("python -c \"import base64,sys; open(sys.argv[1],'wb').write(base64.b64decode(sys.argv[2]))\" "
                      f"{shlex.quote(name)} {shlex.quote(b64)} && ")
            job_arg = name
        parts.append(shlex.quote(job_arg))
    for i in inputs or []:
        parts += ["-i", shlex.quote(_path_arg(i))]
    if output:
        parts += ["-o", shlex.quote(_path_arg(output))]
    for s in sets or []:
        parts += ["--set", shlex.quote(s)]
    if workers:
        parts += ["--workers", str(int(workers))]
    cmd = prefix + "python -m jobs.cli run " + " ".join(parts + ["--executor", "ray", "--quiet"])
    return cmd.replace("  ", " "), excludes


def runtime_env(excludes: list[str], working_dir: str | None = None) -> dict[str, Any]:
    return {"working_dir": str(working_dir or REPO_ROOT), "excludes": excludes,
            "env_vars": {"PYTHONUNBUFFERED": "1"}}


def wait_for(address: str, job_id: str, stream: bool = True, timeout: float | None = None,
             out=None) -> str:
    """Follow a job until it ends (printing its logs as they come); returns the final status."""
    client = _client(address)
    out = out or sys.stdout
    deadline = None if timeout is None else time.monotonic() + timeout
    if stream:
        async def tail() -> None:
            async for chunk in client.tail_job_logs(job_id):
                out.write(chunk)
                out.flush()
        try:
            asyncio.run(asyncio.wait_for(tail(), timeout))
        except TimeoutError:
            pass
        except Exception as e:  # noqa: BLE001 - the log stream broke; fall back to polling
            print(f"[decant] log stream ended: {type(e).__name__}: {e}", file=sys.stderr)
    while True:
        st = client.get_job_status(job_id)
        status = str(getattr(st, "value", st))
        if status in TERMINAL:
            return status
        if deadline is not None and time.monotonic() > deadline:
            return status
        time.sleep(1.0)


def submit(
    job: str | None = typer.Argument(None, help="job file (YAML); default: jobs/default.yaml"),
    address: str = typer.Option(DEFAULT_ADDRESS, "--address", envvar=ADDRESS_ENV,
                                help="Ray dashboard / Jobs API address, http://HEAD:8265"),
    input: list[str] | None = typer.Option(None, "-i", "--input", help="input paths or globs every node can read"),  # noqa: B008
    output: str | None = typer.Option(None, "-o", "--output", help="output folder every node can write"),
    set_: list[str] | None = typer.Option(None, "--set", help="override a job value: key.path=value"),  # noqa: B008
    workers: int | None = typer.Option(None, "--workers", min=1, help="Ray actors (default: the job's)"),
    no_wait: bool = typer.Option(False, "--no-wait", help="print the job id and return at once"),
    submission_id: str | None = typer.Option(None, "--job-id", help="use this job id"),
    working_dir: str | None = typer.Option(None, "--working-dir", help="code to ship (default: this repo)"),
    exclude: list[str] | None = typer.Option(None, "--exclude", help="more working_dir excludes"),  # noqa: B008
) -> None:
    """Run a job on a Ray cluster as a Ray Job (waits and streams its logs unless --no-wait)."""
    entrypoint, excludes = build_entrypoint(job, input, output, set_, workers, exclude)
    client = _client(address)
    job_id = client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env(excludes, working_dir),
                               submission_id=submission_id, entrypoint_num_cpus=0,
                               metadata={"decant_job": job or "jobs/default.yaml"})
    print(job_id)
    print(f"[decant] submitted {job_id} to {address}: {entrypoint[-300:]}", file=sys.stderr)
    if no_wait:
        print(f"[decant] follow with: decant logs {job_id} --address {address} --follow", file=sys.stderr)
        return
    status = wait_for(address, job_id)
    print(f"[decant] job {job_id}: {status}", file=sys.stderr)
    if status != "SUCCEEDED":
        raise typer.Exit(1)


def status(
    job_id: str = typer.Argument(..., help="the id `decant submit` printed"),
    address: str = typer.Option(DEFAULT_ADDRESS, "--address", envvar=ADDRESS_ENV),
) -> None:
    """Print a Ray Job's status (and its message when it ended)."""
    info = _client(address).get_job_info(job_id)
    st = getattr(info.status, "value", info.status)
    print(st)
    if info.message:
        print(info.message, file=sys.stderr)


def logs(
    job_id: str = typer.Argument(...),
    address: str = typer.Option(DEFAULT_ADDRESS, "--address", envvar=ADDRESS_ENV),
    follow: bool = typer.Option(False, "--follow", "-f", help="stream until the job ends"),
) -> None:
    """Print a Ray Job's logs (the driver's output)."""
    if follow:
        wait_for(address, job_id)
    else:
        sys.stdout.write(_client(address).get_job_logs(job_id))


def stop(
    job_id: str = typer.Argument(...),
    address: str = typer.Option(DEFAULT_ADDRESS, "--address", envvar=ADDRESS_ENV),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="wait until the job has stopped"),
) -> None:
    """Stop a running Ray Job (its output folder keeps the finished shards: re-submit to resume)."""
    client = _client(address)
    stopped = client.stop_job(job_id)
    if wait:
        st = wait_for(address, job_id, stream=False, timeout=60)
    else:
        st = getattr(client.get_job_status(job_id), "value", "")
    print(f"{job_id}: {'stop requested' if stopped else 'not running'}; status {st}")
