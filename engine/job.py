"""The job file: its schema, safe loading, and `--set` overrides.

A job file is data: loaded with `yaml.safe_load` (no tags that build objects), validated by
pydantic with unknown keys refused, and every problem reported as a `JobError` naming its place
(`output.format: ...`, `pipeline[2].quality.rules: ...`).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from engine.errors import JobError


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _as_list(v):
    return [v] if isinstance(v, str) else v


#: A list of paths that a job file may also give as one string.
PathList = Annotated[list[str], BeforeValidator(_as_list)]


#: Default `input.split_bytes`: ranges big enough that a unit's fixed cost (its files, manifest
#: record, map output) is small beside its reading and processing, small enough that a few
#: hundred MB keep two or more workers busy.
SPLIT_BYTES = 8 * 2**20


class InputSpec(StrictModel):
    paths: PathList = Field(default_factory=list)
    #: A registered reader's name, or "auto" (sniffed from each file's content).
    format: str = "auto"
    #: Parameters passed to the reader (e.g. max_bytes, text_field).
    options: dict[str, Any] = Field(default_factory=dict)
    #: Files larger than this are read as ranges of about this size, each a unit of work of its
    #: own (where the reader can split the file), so one big file keeps every worker busy; 0 or
    #: null: every file is one unit. The output is the same either way.
    split_bytes: int | None = Field(default=SPLIT_BYTES, ge=0)


class OutputSpec(StrictModel):
    path: str = "out"
    #: A registered writer's name (parquet, jsonl).
    format: str = "parquet"
    #: Columns whose values make the documents/ sub-folders, in order; [] writes one folder.
    partition_by: list[str] = Field(default_factory=list)
    #: Roll to a new file when the current one passes this many bytes (before compression).
    max_file_bytes: int = Field(default=256 * 2**20, gt=0)
    #: Store the text of rejected documents in the rejects (Dolma keeps decisions inspectable).
    rejects_text: bool = False


class ExecutorSpec(StrictModel):
    kind: Literal["local", "ray"] = "local"
    workers: int = Field(default=2, ge=1)
    address: str | None = None
    #: Documents per batch (a reader also ends a batch at its byte limit: WARC's max_batch_bytes).
    #: Per-batch costs (an Arrow kernel call, a model call per language) fall with bigger batches:
    #: 1024 gave the same output as 256 for ~6% less CPU on the WET job (`decant bench e2e`).
    batch_size: int = Field(default=1024, ge=1)
    #: Shard calls one Ray actor may hold queued before the driver waits (backpressure); inside a
    #: shard, batches stream through the chain so memory is bounded by batch_size.
    max_in_flight: int = Field(default=2, ge=1)
    #: Times a failed shard is retried (worker killed, node lost, storage failure) before the job fails.
    max_retries: int = Field(default=3, ge=0)


class DedupSpec(StrictModel):
    #: Earlier decant outputs whose index (OUT/index/) this job's global dedup steps compare
    #: against: what an earlier output kept always wins, and nothing in it is rewritten.
    against: PathList = Field(default_factory=list)


class JobSpec(StrictModel):
    name: str = "decant"
    #: Modules to import before the pipeline is built (in the driver and every worker), so that
    #: operators, readers or writers registered outside the bundled packages can be named.
    plugins: list[str] = Field(default_factory=list)
    input: InputSpec = Field(default_factory=InputSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    pipeline: list[dict[str, dict[str, Any] | None]] = Field(default_factory=list)
    dedup: DedupSpec = Field(default_factory=DedupSpec)
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)

    def steps(self) -> list[tuple[str, dict[str, Any]]]:
        return [(next(iter(s)), dict(next(iter(s.values())) or {})) for s in self.pipeline]


def error_place(loc: tuple) -> str:
    """A pydantic error location as a job-file path: `pipeline[2].quality.rules`."""
    parts: list[str] = []
    for p in loc:
        parts.append(f"[{p}]" if isinstance(p, int) else f".{p}" if parts else str(p))
    return "".join(parts)


def validation_messages(e: ValidationError, prefix: str = "") -> list[str]:
    """One `place: message` line per error; `prefix` (e.g. `pipeline[2].quality.`) leads each place."""
    return [f"{(prefix + error_place(err['loc'])).rstrip('.')}: {err['msg']}" for err in e.errors()]


def parse_job(data: dict[str, Any]) -> JobSpec:
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as e:
        raise JobError("invalid job file: " + "; ".join(validation_messages(e))) from None
    for i, step in enumerate(spec.pipeline):
        if len(step) != 1:
            raise JobError(f"pipeline[{i}]: each step is one mapping `name: {{params}}`, got keys {list(step)}")
    return spec


def load_job(path: str | Path) -> dict[str, Any]:
    """A job file's data, safely: a malformed file or a tag that would build an object is an error."""
    p = Path(path)
    if not p.is_file():
        raise JobError(f"job file {p} does not exist")
    try:
        with open(p, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.constructor.ConstructorError as e:
        raise JobError(f"job file {p}: {_yaml_place(e)}unsupported YAML tag ({e.problem}); "
                       "job files are plain data") from None
    except yaml.YAMLError as e:
        raise JobError(f"job file {p}: {_yaml_place(e)}malformed YAML: "
                       f"{getattr(e, 'problem', None) or e}") from None
    except UnicodeDecodeError as e:
        raise JobError(f"job file {p}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise JobError(f"job file {p}: top level must be a mapping, got {type(data).__name__}")
    return data


def _yaml_place(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""


def _coerce(value: str) -> Any:
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def apply_sets(data: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """Apply `--set a.b.c=value` overrides. Pipeline steps are addressed by name
    (`pipeline.langid.threshold=0.6`) or index (`pipeline.1.langid.threshold=0.6`)."""
    data = copy.deepcopy(data)
    for item in sets:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not p for p in key.split(".")):
            raise JobError(f"--set {item!r}: expected key.path=value")
        _set(data, key, key.split("."), _coerce(value))
    return data


def _set(data: dict[str, Any], key: str, parts: list[str], value: Any) -> None:
    node: Any = data
    if parts[0] == "pipeline":
        if len(parts) < 3:
            raise JobError(f"--set {key}: name a parameter of a step, e.g. pipeline.langid.threshold=0.6")
        steps = data.get("pipeline") or []
        if not isinstance(steps, list):
            raise JobError(f"--set {key}: pipeline is not a list")
        if parts[1].isdigit():
            idx = int(parts[1])
            if idx >= len(steps):
                raise JobError(f"--set {key}: the pipeline has {len(steps)} steps (0 to {len(steps) - 1})")
        else:
            idxs = [i for i, s in enumerate(steps) if isinstance(s, dict) and parts[1] in s]
            if not idxs:
                raise JobError(f"--set {key}: no pipeline step named {parts[1]!r}")
            idx = idxs[0]
        step = steps[idx]
        if not isinstance(step, dict) or len(step) != 1:
            raise JobError(f"--set {key}: pipeline[{idx}] is not a `name: {{params}}` step")
        name = next(iter(step))
        parts = parts[2:]
        if parts and parts[0] == name:
            parts = parts[1:]
        if not parts:
            raise JobError(f"--set {key}: name a parameter of step {name!r}")
        if step[name] is None:
            step[name] = {}
        node = step[name]
        if not isinstance(node, dict):
            raise JobError(f"--set {key}: the parameters of step {name!r} are not a mapping")
    walked: list[str] = []
    for p in parts[:-1]:
        walked.append(p)
        child = node.setdefault(p, {})
        if not isinstance(child, dict):
            raise JobError(f"--set {key}: {'.'.join(walked)} is a value ({child!r}), not a mapping")
        node = child
    node[parts[-1]] = value
