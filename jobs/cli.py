"""The `decant` command line: run, dedup, submit/status/logs/stop, lm, bench, report."""
from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="decant: clean web crawls into language-identified, quality-bucketed, deduplicated text.")
console = Console(stderr=True)


# options that `run` and `dedup` share, declared once
InputOption = Annotated[Optional[list[str]], typer.Option(
    "-i", "--input", help="input paths or globs (local or fsspec URL); several may follow one -i")]
OutputOption = Annotated[Optional[str], typer.Option("-o", "--output", help="output folder (local or fsspec URL)")]
WorkersOption = Annotated[Optional[int], typer.Option("--workers", min=1, help="worker processes or actors")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")]
AgainstOption = Annotated[Optional[list[str]], typer.Option(
    "--against", help="an earlier decant output to dedup against (what it kept wins); may repeat")]


@app.command()
def run(
    job: Optional[str] = typer.Argument(None, help="job file (YAML); default: jobs/default.yaml"),
    input: InputOption = None,
    output: OutputOption = None,
    executor: Optional[str] = typer.Option(None, "--executor", help="local or ray"),
    workers: WorkersOption = None,
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (ray executor)"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="override a job value: key.path=value"),
    keep_work: bool = typer.Option(False, "--keep-work", help="keep intermediate stage files"),
    against: AgainstOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run a job; re-running into the same output resumes (finished shards are skipped)."""
    from engine.job import apply_sets, load_job
    from jobs.paths import DEFAULT_JOB

    def start():
        data = apply_sets(load_job(job or DEFAULT_JOB), set_ or [])
        if against:
            data.setdefault("dedup", {})["against"] = list(against)
        return data, dict(inputs=input or None, out=output, executor=executor, workers=workers, address=address,
                          keep_work=keep_work)
    _run_and_report(start, quiet, resume=f"decant run {job or ''} ... -o {output or 'OUT'}")


@app.command()
def dedup(
    input: InputOption = None,
    output: OutputOption = None,
    threshold: float = typer.Option(0.8, "--threshold"),
    ngram: int = typer.Option(5, "--ngram"),
    num_perm: int = typer.Option(112, "--num-perm"),
    bands: Optional[int] = typer.Option(None, "--bands"),
    rows: Optional[int] = typer.Option(None, "--rows"),
    workers: WorkersOption = None,
    against: AgainstOption = None,
    quiet: QuietOption = False,
) -> None:
    """Global MinHash-LSH near-duplicate removal over JSONL(.gz) or Parquet documents with id and text."""
    from jobs.dedup_cmd import dedup_job

    def start():
        if not input or not output:
            raise typer.BadParameter("give the documents with -i and the output folder with -o")
        spec = dedup_job(input, output, threshold, ngram, num_perm, bands, rows, workers, against=against or [])
        return spec, dict(executor="local", workers=workers)
    _run_and_report(start, quiet, resume="the same decant dedup command")


def _run_and_report(start, quiet: bool, resume: str) -> None:
    """Run a job with a progress bar and print its summary; job errors are one line (exit 2), an
    interrupt says how to resume (exit 130), broken accounting exits 1."""
    from engine.errors import JobError
    from jobs.runjob import run_job
    try:
        data, kw = start()
        stats = _run_with_progress(run_job, data, quiet=quiet, **kw)
    except JobError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/yellow]: finished shards are kept; run {resume} again to resume")
        raise typer.Exit(130) from None
    print_summary(stats)
    if not stats["total"]["accounting_ok"]:
        console.print("[red]accounting does not add up; see stats.json[/red]")
        raise typer.Exit(1)


def _run_with_progress(run_job, data: dict[str, Any], quiet: bool = False, **kw) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if quiet:
        return run_job(data, **kw)
    # no refresh thread (the display is redrawn as units finish): with no other thread alive the
    # local executor forks its workers from this process, which a forkserver would otherwise start
    # (a new interpreter importing the job's modules) and the workers would not share the models
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[docs]:,} docs read"), TimeElapsedColumn(), console=console,
                        auto_refresh=False)
    state: dict[str, Any] = {"docs": 0}

    def on_plan(plan, graph):
        from engine.io import Manifest
        units = f"{len(plan.units)} units of {len(plan.inputs)} shards" if len(plan.units) != len(plan.inputs) \
            else f"{len(plan.inputs)} shards"  # a big file split into ranges: a unit each
        state["task"] = progress.add_task(f"{units} x {len(graph.stages)} stage(s)",
                                          total=len(plan.units) * len(graph.stages), docs=0)
        done = len([u for u in Manifest(plan.work.manifest).units() if "/shard-" in u])
        progress.update(state["task"], completed=done, refresh=True)

    def on_done(rec):
        state["docs"] += rec.reader.documents
        progress.update(state["task"], advance=1, docs=state["docs"], refresh=True)

    with progress:
        return run_job(data, on_plan=on_plan, on_done=on_done, **kw)


def print_summary(stats: dict[str, Any]) -> None:
    """The kept/dropped table of a stats.json (the one summary table: `decant report` prints it too)."""
    out = Console()
    if not out.is_terminal:
        out = Console(width=140)  # logs and CI: keep the table on one line per operator
    t = Table(title="decant: kept and dropped per operator")
    for c in ("operator", "docs in", "docs out", "dropped", "top reasons", "seconds"):
        t.add_column(c, justify="left" if c in ("operator", "top reasons") else "right")
    for name, s in stats["operators"].items():
        reasons = sorted(s["dropped"].items(), key=lambda kv: -kv[1])[:3]
        t.add_row(name, f"{s['docs_in']:,}", f"{s['docs_out']:,}", f"{sum(s['dropped'].values()):,}",
                  ", ".join(f"{k} {v:,}" for k, v in reasons), f"{s['seconds']:.2f}")
    out.print(t)
    tot = stats["total"]
    out.print(f"documents read {tot['documents_read']:,} = kept {tot['documents_kept']:,} + dropped "
              f"{tot['documents_dropped']:,}  ({'ok' if tot['accounting_ok'] else 'MISMATCH'}); "
              f"shard errors {tot['shard_errors']}; wall {stats['job']['wall_seconds']:.1f}s")
    for e in stats["reader"]["errors"][:10]:
        out.print(f"[yellow]shard error:[/yellow] {e}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(
    ctx: typer.Context,
    name: Optional[str] = typer.Argument(None, help="benchmark name, or 'all' for the quick set"),
    json_path: Optional[str] = typer.Option(None, "--json", help="where to write the JSON result"),
    full: bool = typer.Option(False, "--full", help="full-size inputs instead of the quick ones"),
) -> None:
    """List benchmarks, run one, or run the quick set (`all`); options after the name go to the benchmark
    (e.g. `decant bench scale --docs 200000`)."""
    from benchmarks import harness
    benches = harness.available()
    if not name:
        t = Table(title="decant benchmarks")
        t.add_column("name")
        t.add_column("quick set")
        t.add_column("what")
        for n, mod in benches.items():
            t.add_row(n, "yes" if getattr(mod, "QUICK", False) else "", getattr(mod, "DESCRIPTION", ""))
        Console().print(t)
        return
    if name == "all":
        harness.run_all(quick=not full, json_path=json_path)
        return
    harness.run(name, quick=not full, json_path=json_path, args=ctx.args)


@app.command()
def report(out: str = typer.Argument(..., help="a finished output folder"),
           html: Optional[str] = typer.Option(None, "--html", help="where to write the page (default OUT/report/index.html)")) -> None:
    """Write an HTML report (with PNG plots) of a finished output and print its summary."""
    from jobs.report import write_report
    path = write_report(out, html)
    Console().print(f"report written to {path}")


def _mount_optional() -> None:
    """Sub-commands whose modules pull in heavier code are mounted here, imported lazily inside."""
    try:
        from jobs import lm
        app.add_typer(lm.app, name="lm", help="Train KenLM models and compute perplexity cut-offs.")
    except ImportError:
        pass
    try:
        from jobs import submit
        for cmd in ("submit", "status", "logs", "stop"):
            app.command(name=cmd)(getattr(submit, cmd))
    except ImportError:
        pass
    from jobs import classifier_cmd
    app.add_typer(classifier_cmd.classifier_app, name="classifier",
                  help="Train fastText quality classifiers (the `classifier` operator's models).")
    app.add_typer(classifier_cmd.importance_app, name="importance",
                  help="Train hashed n-gram importance models (the `importance` operator's models).")


_mount_optional()


MULTI_VALUE_OPTIONS = ("-i", "--input", "--against", "--positive", "--negative", "--target", "--source")
#: `--set k=v k2=v2`: further values are taken while they look like key=value (a job file does not)
MULTI_SET_OPTIONS = ("--set",)


def expand_multi_value(argv: list[str]) -> list[str]:
    """`-i a b c` -> `-i a -i b -i c` (and `--set a=1 b=2` alike): the documented `-i PATH_OR_GLOB ...` takes several values
    after one flag (as shell globs expand), which click options do not do by themselves."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        out.append(arg)
        i += 1
        if arg in MULTI_VALUE_OPTIONS or arg in MULTI_SET_OPTIONS:
            first = True
            while i < len(argv) and (first or not argv[i].startswith("-")
                                     and (arg not in MULTI_SET_OPTIONS or "=" in argv[i])):
                if not first:
                    out.append(arg)
                out.append(argv[i])
                first = False
                i += 1
    return out


def main() -> None:
    import warnings
    warnings.simplefilter("default", DeprecationWarning)  # old job-file names say what replaces them
    app(args=expand_multi_value(sys.argv[1:]), prog_name="decant")


def entry() -> None:
    """The `decant` console script: `main()`, then out without the interpreter's teardown. A
    finished command has closed and renamed every file it wrote; what teardown would do is free
    memory object by object and module by module (~0.2 s after a `decant dedup` of 40k documents,
    8% of its wall), which the OS does at once. The atexit handlers (Ray's shutdown,
    multiprocessing's, logging's) still run first; with another thread alive (it could be writing),
    or on an exception other than SystemExit, the exit is the usual one."""
    import atexit
    import os
    import threading
    try:
        main()
        code: int | str | None = 0
    except SystemExit as e:
        code = e.code
    if threading.active_count() > 1:
        sys.exit(code)
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
