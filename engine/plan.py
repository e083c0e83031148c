"""The plan of a job run, and where everything of it lives under OUT/_work.

A `JobPlan` is all a worker needs to run any unit of the job (small and picklable: the spec, the
expanded input list, its units of work, the output, the packages to import). `WorkLayout` is the
one place that spells the paths of the work folder; nothing else builds them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

from engine import io as eio
from engine.discovery import find_inputs
from engine.errors import JobError
from engine.job import JobSpec
from engine.partition_count import auto_steps, recorded_counts, resolve_spec
from engine.splitting import WorkUnit, file_sizes, split_inputs, whole_files

WORK = "_work"


def _label(unit: WorkUnit | int) -> str:
    """A unit's name part: its label, or for a plain index the name a whole file has always had."""
    return unit.label if isinstance(unit, WorkUnit) else f"{unit:06d}"


@dataclasses.dataclass(frozen=True)
class WorkLayout:
    """OUT/_work: the marker of the job, the manifest, stage outputs, global folders, staging."""

    out: str

    @property
    def root(self) -> str:
        return f"{self.out.rstrip('/')}/{WORK}"

    @property
    def job_marker(self) -> str:
        return f"{self.root}/job.json"

    @property
    def manifest(self) -> str:
        return f"{self.root}/manifest"

    @property
    def units_file(self) -> str:
        """The job's units of work (engine.splitting), fixed when the output is created."""
        return f"{self.root}/units.json"

    @property
    def staging_root(self) -> str:
        return f"{self.root}/staging"

    def stage_output(self, stage: int, unit: WorkUnit | int) -> str:
        """Folder of a unit's stage output: one or more Parquet parts (a new part starts where the
        batches' schema changes, e.g. a column all-null in one batch and typed in the next)."""
        return f"{self.stage_dir(stage)}/shard-{_label(unit)}"

    def stage_dir(self, stage: int) -> str:
        return f"{self.root}/stage-{stage}"

    def global_dir(self, stage: int, operator: str) -> "GlobalLayout":
        """The folder of a global operator at a stage's barrier: map output, apply tables, its own files."""
        return GlobalLayout(f"{self.root}/global-{stage}-{operator}")

    def staging(self, stage: int, unit: WorkUnit | int, attempt: str) -> str:
        """A folder of one attempt at a unit: an earlier attempt may still be running (the pool
        worker of a killed driver finishes its unit) and must not see its files touched."""
        return f"{self.staging_root}/stage-{stage}/shard-{_label(unit)}/attempt-{attempt}"

    @staticmethod
    def unit(stage: int, unit: WorkUnit | int) -> str:
        """The manifest name of a unit of a stage (`stage-0/shard-000003`, a range `...-0001`)."""
        return f"stage-{stage}/shard-{_label(unit)}"

    @staticmethod
    def reduce_unit(stage: int, operator: str) -> str:
        """The manifest name of a global operator's reduce at a stage's barrier."""
        return f"stage-{stage}/reduce-{operator}"


@dataclasses.dataclass(frozen=True)
class GlobalLayout:
    """Inside a global operator's folder: one map file per unit, one apply table per shard."""

    root: str

    @property
    def map_dir(self) -> str:
        return f"{self.root}/map"

    def map_file(self, unit: int) -> str:
        """A unit's map output: every partition in it, as row groups (engine.shuffle.MapWriter)."""
        return f"{self.map_dir}/unit-{unit:06d}.parquet"

    def legacy_map_dir(self, partition: int) -> str:
        """Where a partition's files were before one file per unit (one per shard and partition):
        still read, so that a job started before resumes."""
        return f"{self.map_dir}/part-{partition:05d}"

    @property
    def apply_dir(self) -> str:
        return f"{self.root}/apply"

    def apply_file(self, shard: int) -> str:
        return f"{self.apply_dir}/shard-{shard:06d}.parquet"

    @property
    def apply_all_file(self) -> str:
        """What every shard without a table of its own gets (e.g. cut-offs computed at the barrier)."""
        return f"{self.apply_dir}/all.parquet"


@dataclasses.dataclass
class JobPlan:
    spec: JobSpec
    inputs: list[str]
    out: str
    fingerprint: str = ""
    #: Packages whose modules register operators, readers and writers (imported by every worker).
    packages: list[str] = dataclasses.field(default_factory=list)
    #: Input entries not read (path -> why): links that lead nowhere, FIFOs, empty files, outputs.
    skipped_inputs: dict[str, str] = dataclasses.field(default_factory=dict)
    #: The units of work every stage runs (one per file, or ranges of big files); set by
    #: `prepare_output` from OUT/_work so that a resume runs the units the output began with.
    units: list[WorkUnit] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.units:
            self.units = whole_files(self.inputs)

    @property
    def work(self) -> WorkLayout:
        return WorkLayout(self.out)


def make_plan(spec: JobSpec, inputs: list[str] | None = None, out: str | None = None,
              packages: list[str] = ()) -> JobPlan:
    """The plan of a run; its spec has every `partitions: auto` resolved (engine.partition_count),
    so the driver and every worker build the same graph from it."""
    paths = inputs if inputs else spec.input.paths
    if not paths:
        raise JobError("input.paths: no input given (job file or -i)")
    out = (out or spec.output.path).rstrip("/")
    for i, prev in enumerate(spec.dedup.against):
        if not eio.exists(f"{prev.rstrip('/')}/stats.json"):
            raise JobError(f"dedup.against[{i}]: {prev} is not a finished decant output (no stats.json)")
        if prev.rstrip("/") == out:
            raise JobError(f"dedup.against[{i}]: {prev} is this job's own output")
    try:
        found = find_inputs(paths, exclude=[out, *spec.dedup.against])
    except FileNotFoundError as e:
        raise JobError(f"input.paths: {e.args[0] if e.args else e}") from None
    if auto_steps(spec):
        spec = resolve_spec(spec, lambda: sum(file_sizes(found.files)), recorded_counts(_started_job(out)))
    return JobPlan(spec=spec, inputs=found.files, out=out, fingerprint=fingerprint(spec, found.files),
                   packages=list(packages), skipped_inputs=found.skipped)


def _started_job(out: str) -> dict | None:
    """The resolved spec an existing output was started with (its job.json), so that a resume keeps
    its partition counts whatever the input sizes say now; None for a new output."""
    marker = WorkLayout(out).job_marker
    return eio.read_json(marker).get("job") if eio.exists(marker) else None


def fingerprint(spec: JobSpec, files: list[str]) -> str:
    """What makes two runs the same job: inputs and configuration (not the executor or output path)."""
    content = spec.model_dump(exclude={"executor"})
    content["input"]["paths"] = files
    # how big files are cut into units changes no result: a resume keeps the output's own units
    content["input"].pop("split_bytes", None)
    content["output"].pop("path", None)
    if not content["output"].get("partition_by"):
        content["output"].pop("partition_by", None)  # outputs made before the option still resume
    if not content["dedup"]["against"]:
        content.pop("dedup")
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prepare_output(plan: JobPlan) -> None:
    """Create OUT, or check that an existing OUT holds this same job (resume), never another.
    Either way `plan.units` becomes the output's units of work: split now for a new output (the
    file written before the job's marker), read back on a resume (whatever `split_bytes` says now:
    the split changes no result, only how the work is cut)."""
    marker = plan.work.job_marker
    if eio.exists(marker):
        prev = eio.read_json(marker)
        if prev.get("fingerprint") != plan.fingerprint:
            raise JobError(
                f"output {plan.out} holds another job (different inputs or configuration); "
                "choose a new output folder or delete it")
        plan.units = load_units(plan)
        return
    plan.units = split_inputs(plan.spec, plan.inputs)
    eio.write_json_atomic({"units": [u.to_dict() for u in plan.units]}, plan.work.units_file)
    eio.write_json_atomic({"fingerprint": plan.fingerprint, "inputs": plan.inputs,
                           "job": plan.spec.model_dump()}, marker)


def load_units(plan: JobPlan) -> list[WorkUnit]:
    """The units an existing output was started with (one per file when it predates units.json)."""
    if not eio.exists(plan.work.units_file):
        return whole_files(plan.inputs)
    units = [WorkUnit.from_dict(d) for d in eio.read_json(plan.work.units_file)["units"]]
    if {u.file for u in units} != set(range(len(plan.inputs))):
        raise JobError(f"output {plan.out}: {plan.work.units_file} does not match the job's inputs; "
                       "choose a new output folder or delete it")
    return units
