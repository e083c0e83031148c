"""A job: input, ordered operators with their parameters, output and executor, validated up front.

Validation happens before any shard is read: an unknown operator, a bad parameter or an operator
whose input column nothing produces is an error naming its place in the job file
(e.g. `pipeline[2].quality.rules`).
"""
from __future__ import annotations

import copy
import importlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.documents import BASE_COLUMNS, DROP_REASON
from engine.operator import GlobalOperator, Operator, get_operator

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JOB = REPO_ROOT / "jobs" / "default.yaml"
SAMPLES = REPO_ROOT / "samples"


class JobError(ValueError):
    """A job file that cannot run, with the place of the problem in its message."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSpec(_Strict):
    paths: list[str] = Field(default_factory=list)
    format: Literal["auto", "warc", "wet", "jsonl", "parquet"] = "auto"
    #: Parameters passed to the reader (e.g. max_bytes, text_field).
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("paths", mode="before")
    @classmethod
    def _one_path(cls, v):
        return [v] if isinstance(v, str) else v


class OutputSpec(_Strict):
    path: str = "out"
    format: Literal["parquet", "jsonl"] = "parquet"
    #: Roll to a new file when the current one passes this many bytes (before compression).
    max_file_bytes: int = Field(default=256 * 2**20, gt=0)
    #: Store the text of rejected documents in the rejects (Dolma keeps decisions inspectable).
    rejects_text: bool = False


class ExecutorSpec(_Strict):
    kind: Literal["local", "ray"] = "local"
    workers: int = Field(default=2, ge=1)
    address: str | None = None
    batch_size: int = Field(default=256, ge=1)
    #: Shard calls one Ray actor may hold queued before the driver waits (backpressure); inside a
    #: shard, batches stream through the chain so memory is bounded by batch_size.
    max_in_flight: int = Field(default=2, ge=1)
    #: Times a failed shard is retried (worker killed, node lost) before the job fails.
    max_retries: int = Field(default=3, ge=0)


class JobSpec(_Strict):
    name: str = "decant"
    #: Modules to import before the pipeline is built (in the driver and every worker), so that
    #: operators registered outside the `operators` package can be named in the pipeline.
    plugins: list[str] = Field(default_factory=list)
    input: InputSpec = Field(default_factory=InputSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    pipeline: list[dict[str, dict[str, Any] | None]] = Field(default_factory=list)
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)

    def steps(self) -> list[tuple[str, dict[str, Any]]]:
        return [(next(iter(s)), dict(next(iter(s.values())) or {})) for s in self.pipeline]


def _loc(err: dict) -> str:
    parts = []
    for p in err["loc"]:
        parts.append(f"[{p}]" if isinstance(p, int) else f".{p}" if parts else str(p))
    return "".join(parts)


def parse_job(data: dict[str, Any]) -> JobSpec:
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as e:
        msgs = [f"{_loc(err)}: {err['msg']}" for err in e.errors()]
        raise JobError("invalid job file:\n  " + "\n  ".join(msgs)) from None
    for i, step in enumerate(spec.pipeline):
        if len(step) != 1:
            raise JobError(f"pipeline[{i}]: each step is one mapping `name: {{params}}`, got keys {list(step)}")
    return spec


def load_job(path: str | Path | None) -> dict[str, Any]:
    p = Path(path) if path else DEFAULT_JOB
    if not p.exists():
        raise JobError(f"job file {p} does not exist")
    with open(p) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise JobError(f"job file {p}: top level must be a mapping")
    return data


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
        if "=" not in item:
            raise JobError(f"--set {item!r}: expected key.path=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node: Any = data
        if parts[0] == "pipeline" and len(parts) >= 3:
            steps = data.setdefault("pipeline", [])
            if parts[1].isdigit():
                idx = int(parts[1])
                parts = parts[2:]
            else:
                idxs = [i for i, s in enumerate(steps) if parts[1] in s]
                if not idxs:
                    raise JobError(f"--set {key}: no pipeline step named {parts[1]!r}")
                idx = idxs[0]
                parts = parts[2:]
            step = steps[idx]
            name = next(iter(step))
            if parts and parts[0] == name:
                parts = parts[1:]
            if step[name] is None:
                step[name] = {}
            node = step[name]
        for p in parts[:-1]:
            if not isinstance(node, dict):
                raise JobError(f"--set {key}: {p!r} is not a mapping")
            node = node.setdefault(p, {})
        node[parts[-1]] = _coerce(value)
    return data


class Graph:
    """A validated job: operator instances in order, split into stages at global operators.

    Stage k runs, per shard: [the previous global operator's apply], then the per-document
    operators, then [this stage's global operator's map]. The last stage ends in the writer.
    """

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.operators: list[Operator] = []
        for i, mod in enumerate(spec.plugins):
            try:
                importlib.import_module(mod)
            except ImportError as e:
                raise JobError(f"plugins[{i}]: cannot import {mod!r}: {e}") from None
        available = set(BASE_COLUMNS) | {DROP_REASON, "_key"}
        for i, (name, params) in enumerate(spec.steps()):
            where = f"pipeline[{i}].{name}"
            try:
                cls = get_operator(name)
            except KeyError:
                from engine.operator import OPERATORS, _ensure_loaded
                _ensure_loaded()
                raise JobError(f"{where}: unknown operator {name!r}; known: {', '.join(sorted(OPERATORS))}") from None
            try:
                op = cls(**params)
            except ValidationError as e:
                msgs = [f"{where}.{_loc(err)}: {err['msg']}" for err in e.errors()]
                raise JobError("invalid parameters:\n  " + "\n  ".join(msgs)) from None
            except (TypeError, ValueError) as e:
                raise JobError(f"{where}: {e}") from None
            missing = [c for c in cls.inputs if c not in available]
            if missing:
                raise JobError(f"{where}: needs column(s) {missing} that no earlier step produces")
            available |= set(op.output_columns())
            self.operators.append(op)
        names = [o.name for o in self.operators]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise JobError(f"pipeline: operator(s) {sorted(dupes)} appear twice; stats and rejects are per name")
        self.stages: list[Stage] = []
        current: list[Operator] = []
        prev_global: GlobalOperator | None = None
        for op in self.operators:
            if isinstance(op, GlobalOperator):
                self.stages.append(Stage(len(self.stages), prev_global, current, op))
                prev_global, current = op, []
            else:
                current.append(op)
        self.stages.append(Stage(len(self.stages), prev_global, current, None))

    @property
    def operator_names(self) -> list[str]:
        return ["reader"] + [o.name for o in self.operators]


class Stage:
    def __init__(self, index: int, apply_op: GlobalOperator | None, ops: list[Operator],
                 map_op: GlobalOperator | None) -> None:
        self.index = index
        self.apply_op = apply_op
        self.ops = ops
        self.map_op = map_op

    @property
    def is_last(self) -> bool:
        return self.map_op is None

    def __repr__(self) -> str:
        parts = ([f"apply:{self.apply_op.name}"] if self.apply_op else []) + [o.name for o in self.ops]
        parts += [f"map:{self.map_op.name}"] if self.map_op else ["write"]
        return f"Stage{self.index}({' -> '.join(parts)})"


def build(data: dict[str, Any]) -> Graph:
    return Graph(parse_job(data))
