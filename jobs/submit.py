"""`decant submit | status | logs | stop`: a job as a Ray Job on a cluster, through the Ray Jobs API.

`decant submit JOB --address http://HEAD:8265` ships the code the job needs as the job's working
directory (jobs.ship: the repository's git-tracked files, or its package folders outside a git
checkout, and the job file; refused past a size limit) and runs `python -m jobs.cli run JOB ...
--executor ray` as the entrypoint on the head node; that driver connects to the cluster and spreads
shards over its workers. A job file inside the shipped folder keeps its path; one outside it is
shipped as `.decant-job-<hash>.yaml` at the top. Input and output paths must be visible to every
node: an fsspec URL (s3://, gs://, ...) or a shared filesystem; local paths are passed as absolute
paths (a cluster on this machine, or a shared mount at the same place).

A cluster with token authentication (what `ray start --head` turns on when a token exists) says so
at `/api/authentication_mode`; the token is then sent from `RAY_AUTH_TOKEN`, the file named by
`RAY_AUTH_TOKEN_PATH` or `~/.ray/auth_token`, and only then. Every failure a person can act on
(no cluster, no or a wrong token, an unknown job id, too much to ship) is one line `error: ...`
and exit code 2.

These functions are mounted as commands by jobs/cli.py.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import typer

from engine.errors import JobError
from jobs.paths import REPO_ROOT, WORKING_DIR_EXCLUDES
from jobs.ship import DEFAULT_LIMIT_MB, Shipment, list_files, stage

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
ADDRESS_ENV = "RAY_API_SERVER_ADDRESS"
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
TOKEN_HELP = (f"set {TOKEN_ENV} to the cluster's token or write it to ~/.ray/auth_token "
              "(`ray get-auth-token` on the head node prints it)")


# ------------------------------------------------------------------------------------ errors

def fail(message: str) -> NoReturn:
    """A person's mistake or a cluster that cannot serve: one line on stderr, exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(2)


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


@contextlib.contextmanager
def jobs_api(address: str, token_source: str | None = None) -> Iterator[None]:
    """Turns the Jobs API client's exceptions into one-line errors."""
    import requests
    from ray.exceptions import AuthenticationError
    try:
        yield
    except typer.Exit:
        raise
    except AuthenticationError as e:
        if token_source is None:
            fail(f"the Ray cluster at {address} requires a token: {TOKEN_HELP}")
        fail(f"the Ray cluster at {address} refused the token from {token_source} ({_first_line(e)}): {TOKEN_HELP}")
    except (ConnectionError, requests.RequestException) as e:
        fail(f"no Ray Jobs API answers at {address} ({_first_line(e)}): start a cluster with `ray start --head` "
             "or give --address http://HEAD:8265")
    except JobError as e:
        fail(str(e))
    except (RuntimeError, ValueError) as e:
        fail(f"the Ray Jobs API at {address} said: {_first_line(e)}")


# ------------------------------------------------------------------------------------ connecting

def auth_token() -> tuple[str, str] | None:
    """(token, where it came from) as Ray looks for one: the environment, then the token file."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token, TOKEN_ENV
    path = Path(os.environ.get(TOKEN_PATH_ENV) or Path.home() / ".ray" / "auth_token").expanduser()
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return (token, str(path)) if token else None


def normalize_address(address: str) -> str:
    address = address.strip().rstrip("/")
    return address if "://" in address else f"http://{address}"


def authentication_mode(address: str) -> str:
    """What the cluster's dashboard says of its authentication ("token" or "disabled"; "disabled"
    for a Ray too old to say). Asking needs no token."""
    import requests
    try:
        r = requests.get(f"{address}/api/authentication_mode", timeout=15)
    except requests.RequestException as e:
        fail(f"no Ray Jobs API answers at {address} ({type(e).__name__}): start a cluster with "
             "`ray start --head` or give --address http://HEAD:8265")
    if r.status_code != 200:
        return "disabled"
    try:
        return str(r.json().get("authentication_mode", "disabled"))
    except ValueError:
        return "disabled"


class Cluster:
    """The Jobs API of one cluster, with the token when the cluster wants one."""

    def __init__(self, address: str) -> None:
        from ray.job_submission import JobSubmissionClient
        self.address = normalize_address(address)
        self.token_source: str | None = None
        headers: dict[str, str] = {}
        if authentication_mode(self.address) == "token":
            found = auth_token()
            if found is None:
                fail(f"the Ray cluster at {self.address} requires a token: {TOKEN_HELP}")
            token, self.token_source = found
            headers["Authorization"] = f"Bearer {token}"
        with self.errors():
            self.client = JobSubmissionClient(self.address, headers=headers)

    def errors(self):
        return jobs_api(self.address, self.token_source)


# ------------------------------------------------------------------------------------ what is shipped

def _path_arg(p: str) -> str:
    """An input/output path as the cluster should see it (see the module docstring)."""
    if "://" in p:
        return p
    ap = Path(p).expanduser()
    if ap.is_absolute():
        return str(ap)
    return str(ap.resolve())


def job_file_place(job: str, root: Path) -> tuple[str, Path]:
    """Where a job file goes in the shipped folder: its own path inside `root`, else a name made
    from its content at the top."""
    jp = Path(job).expanduser().resolve()
    if not jp.is_file():
        raise JobError(f"job file {job} does not exist")
    try:
        return jp.relative_to(root).as_posix(), jp
    except ValueError:
        return f".decant-job-{hashlib.sha256(jp.read_bytes()).hexdigest()[:12]}.yaml", jp


def build_entrypoint(job_arg: str | None, inputs: list[str] | None, output: str | None,
                     sets: list[str] | None, workers: int | None) -> str:
    """The command the cluster runs, with the job file named by its place in the shipped folder."""
    parts: list[str] = [shlex.quote(job_arg)] if job_arg else []
    for i in inputs or []:
        parts += ["-i", shlex.quote(_path_arg(i))]
    if output:
        parts += ["-o", shlex.quote(_path_arg(output))]
    for s in sets or []:
        parts += ["--set", shlex.quote(s)]
    if workers:
        parts += ["--workers", str(int(workers))]
    return "python -m jobs.cli run " + " ".join(parts + ["--executor", "ray", "--quiet"])


def shipment(job: str | None, working_dir: str | None = None, extra_excludes: list[str] | None = None
             ) -> tuple[Shipment, str | None]:
    """The files to ship for a job and the job file's place among them."""
    root = Path(working_dir or REPO_ROOT).expanduser().resolve()
    ship = list_files(root, list(WORKING_DIR_EXCLUDES) + list(extra_excludes or []))
    job_arg = None
    if job:
        job_arg, path = job_file_place(job, root)
        ship.add(job_arg, path)
    return ship, job_arg


def runtime_env(working_dir: Path | str) -> dict[str, Any]:
    return {"working_dir": str(working_dir), "env_vars": {"PYTHONUNBUFFERED": "1"}}


# ------------------------------------------------------------------------------------ following a job

def wait_for(cluster: Cluster, job_id: str, stream: bool = True, timeout: float | None = None,
             out=None) -> str:
    """Follow a job until it ends (printing its logs as they come); returns the final status."""
    client = cluster.client
    out = out or sys.stdout
    deadline = None if timeout is None else time.monotonic() + timeout
    if stream:
        async def tail() -> None:
            async for chunk in client.tail_job_logs(job_id):
                out.write(chunk)
                out.flush()
        import asyncio  # here: every `decant` command would pay its import (~30 ms)

        try:
            asyncio.run(asyncio.wait_for(tail(), timeout))
        except TimeoutError:
            pass
        except Exception as e:  # noqa: BLE001 - the log stream broke; fall back to polling
            print(f"[decant] log stream ended: {type(e).__name__}: {_first_line(e)}", file=sys.stderr)
    while True:
        with cluster.errors():
            st = client.get_job_status(job_id)
        status = str(getattr(st, "value", st))
        if status in TERMINAL:
            return status
        if deadline is not None and time.monotonic() > deadline:
            return status
        time.sleep(1.0)


@contextlib.contextmanager
def interrupt_note(job_id: str, address: str) -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        print(f"interrupted: job {job_id} goes on; follow it with `decant logs {job_id} --address {address} -f`, "
              f"stop it with `decant stop {job_id} --address {address}`", file=sys.stderr)
        raise typer.Exit(130) from None


#: How long a cluster that has just started may take before its head accepts jobs.
AGENT_WAIT_S = 120.0


def submit_when_ready(cluster: Cluster, **kw: Any) -> str:
    """submit_job, waiting while the head's job agent is not up yet (a cluster that has just
    started refuses jobs for a while; nothing was submitted then, so trying again is safe)."""
    deadline = time.monotonic() + AGENT_WAIT_S
    told = False
    while True:
        try:
            return cluster.client.submit_job(**kw)
        except RuntimeError as e:
            if "No available agent" not in str(e) or time.monotonic() > deadline:
                raise
            if not told:
                print("[decant] the cluster's job agent is not ready yet; waiting", file=sys.stderr)
                told = True
            time.sleep(2.0)


# ------------------------------------------------------------------------------------ commands

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
    working_dir: str | None = typer.Option(None, "--working-dir",
                                           help="code to ship: its git-tracked files (default: this repo)"),
    exclude: list[str] | None = typer.Option(None, "--exclude", help="leave out these paths (glob patterns)"),  # noqa: B008
    max_ship_mb: float = typer.Option(DEFAULT_LIMIT_MB, "--max-ship-mb", min=0,
                                      help="refuse to ship more code than this (MB)"),
) -> None:
    """Run a job on a Ray cluster as a Ray Job (waits and streams its logs unless --no-wait)."""
    try:
        ship, job_arg = shipment(job, working_dir, exclude)
        print(f"[decant] {ship.describe()}", file=sys.stderr)
        ship.check_limit(max_ship_mb)
    except JobError as e:
        fail(str(e))
    entrypoint = build_entrypoint(job_arg, input, output, set_, workers)
    cluster = Cluster(address)
    env = runtime_env(stage(ship))
    with cluster.errors():
        job_id = submit_when_ready(cluster, entrypoint=entrypoint, runtime_env=env, submission_id=submission_id,
                                   entrypoint_num_cpus=0, metadata={"decant_job": job or "jobs/default.yaml"})
    print(job_id)
    print(f"[decant] submitted {job_id} to {cluster.address}: {entrypoint[-300:]}", file=sys.stderr)
    if no_wait:
        print(f"[decant] follow with: decant logs {job_id} --address {cluster.address} --follow", file=sys.stderr)
        return
    with interrupt_note(job_id, cluster.address):
        status = wait_for(cluster, job_id)
    print(f"[decant] job {job_id}: {status}", file=sys.stderr)
    if status != "SUCCEEDED":
        raise typer.Exit(1)


def status(
    job_id: str = typer.Argument(..., help="the id `decant submit` printed"),
    address: str = typer.Option(DEFAULT_ADDRESS, "--address", envvar=ADDRESS_ENV),
) -> None:
    """Print a Ray Job's status (and its message when it ended)."""
    cluster = Cluster(address)
    with cluster.errors():
        info = cluster.client.get_job_info(job_id)
    print(getattr(info.status, "value", info.status))
    if info.message:
        print(info.message, file=sys.stderr)


def logs(
    job_id: str = typer.Argument(...),
    address: str = typer.Option(DEFAULT_ADDRESS, "--address", envvar=ADDRESS_ENV),
    follow: bool = typer.Option(False, "--follow", "-f", help="stream until the job ends"),
) -> None:
    """Print a Ray Job's logs (the driver's output)."""
    cluster = Cluster(address)
    with cluster.errors():
        text = None if follow else cluster.client.get_job_logs(job_id)
    if text is not None:
        sys.stdout.write(text)
        return
    with cluster.errors():
        cluster.client.get_job_status(job_id)  # an unknown id: one line, before the stream starts
    with interrupt_note(job_id, cluster.address):
        wait_for(cluster, job_id)


def stop(
    job_id: str = typer.Argument(...),
    address: str = typer.Option(DEFAULT_ADDRESS, "--address", envvar=ADDRESS_ENV),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="wait until the job has stopped"),
) -> None:
    """Stop a running Ray Job (its output folder keeps the finished shards: re-submit to resume)."""
    cluster = Cluster(address)
    with cluster.errors():
        stopped = cluster.client.stop_job(job_id)
        st = getattr(cluster.client.get_job_status(job_id), "value", "")
    if wait:
        st = wait_for(cluster, job_id, stream=False, timeout=60)
    print(f"{job_id}: {'stop requested' if stopped else 'not running'}; status {st}")
