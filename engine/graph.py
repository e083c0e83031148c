"""A validated job: operator instances in order, split into stages at global operators.

Validation happens before any shard is read: an unknown operator, reader or writer, a bad
parameter, or an operator whose input column nothing produces is an error naming its place in the
job file (e.g. `pipeline[2].quality.rules`).
"""
from __future__ import annotations

from pydantic import ValidationError

from engine import registry
from engine.documents import BASE_COLUMNS, DROP_REASON, KEY
from engine.errors import JobError
from engine.job import JobSpec, validation_messages
from engine.operator import GlobalOperator, Operator
from engine.partition_count import DEFAULT_PARTITIONS
from engine.unique_ids import NAME as UNIQUE_IDS
from engine.unique_ids import UniqueIds


def import_packages(packages: list[str], plugins: list[str]) -> None:
    """Register what the job may name: the bundled packages, then the job's own plugins."""
    registry.discover(packages)
    for i, mod in enumerate(plugins):
        try:
            registry.discover([mod])
        except ImportError as e:
            raise JobError(f"plugins[{i}]: cannot import {mod!r}: {e}") from None


class Stage:
    """Per shard: the previous barrier's decisions (apply), the per-document operators, then the
    map of the global operators whose barrier ends this stage; the last stage ends in the writer.
    A barrier holds the pipeline's global operator and, at the first barrier, the engine's
    unique-id check, which needs no order with it."""

    def __init__(self, index: int, apply_ops: list[GlobalOperator], ops: list[Operator],
                 map_ops: list[GlobalOperator]) -> None:
        self.index = index
        self.apply_ops = apply_ops
        self.ops = ops
        self.map_ops = map_ops

    @property
    def is_last(self) -> bool:
        return not self.map_ops

    def operators(self) -> list[Operator]:
        return [*self.apply_ops, *self.ops, *self.map_ops]

    def __repr__(self) -> str:
        parts = [f"apply:{o.name}" for o in self.apply_ops] + [o.name for o in self.ops]
        parts += [f"map:{o.name}" for o in self.map_ops] or ["write"]
        return f"Stage{self.index}({' -> '.join(parts)})"


class Graph:
    def __init__(self, spec: JobSpec, packages: list[str] = ()) -> None:
        self.spec = spec
        import_packages(list(packages), spec.plugins)
        self._check_formats()
        self.operators = self._build_operators()
        self.unique_ids = UniqueIds(partitions=self._unique_id_partitions())
        self.stages = self._split()

    def _unique_id_partitions(self) -> int:
        """The engine's id check shuffles as many partitions as the first global step, whose count
        the plan has resolved from the input size (`auto`) or the job gave: a fixed 16 was 16 reduce
        tasks reading 16 row groups per unit for a small job. The count is in the job's recorded
        spec, so a resume uses the same. No global step (or an unresolved auto outside a plan): 16."""
        first = next((o for o in self.operators if isinstance(o, GlobalOperator)), None)
        count = getattr(getattr(first, "params", None), "partitions", None)
        return count if isinstance(count, int) and not isinstance(count, bool) else DEFAULT_PARTITIONS

    def _check_formats(self) -> None:
        fmt = self.spec.input.format
        if fmt != "auto" and fmt not in registry.READERS:
            raise JobError(f"input.format: unknown format {fmt!r}; known: auto, {', '.join(sorted(registry.READERS))}")
        if self.spec.output.format not in registry.WRITERS:
            raise JobError(f"output.format: unknown format {self.spec.output.format!r}; "
                           f"known: {', '.join(sorted(registry.WRITERS))}")

    def input_columns(self) -> set[str]:
        """Columns a shard's batches may start with: the engine's, plus those of the reader(s)."""
        fmt = self.spec.input.format
        readers = registry.READERS.values() if fmt == "auto" else [registry.READERS[fmt]]
        cols = set(BASE_COLUMNS) | {DROP_REASON, KEY}
        for r in readers:
            cols |= {r.content_column, *r.columns}
        return cols

    def _build_operators(self) -> list[Operator]:
        available = self.input_columns()
        ops: list[Operator] = []
        for i, (name, params) in enumerate(self.spec.steps()):
            where = f"pipeline[{i}].{name}"
            try:
                cls = registry.get_operator(name)
            except KeyError as e:
                raise JobError(f"{where}: {e.args[0]}") from None
            try:
                op = cls(**params)
            except ValidationError as e:
                raise JobError("invalid parameters: " + "; ".join(validation_messages(e, f"{where}."))) from None
            except (TypeError, ValueError) as e:
                raise JobError(f"{where}: {e}") from None
            for part in op.expand():
                missing = [c for c in part.inputs if c not in available]
                if missing:
                    raise JobError(f"{where}: needs column(s) {missing} that no earlier step produces")
                available |= set(part.output_columns())
                ops.append(part)
        names = [o.name for o in ops]
        if UNIQUE_IDS in names:
            raise JobError(f"pipeline[{names.index(UNIQUE_IDS)}]: {UNIQUE_IDS!r} is the engine's own step; rename the operator")
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise JobError(f"pipeline: operator(s) {sorted(dupes)} appear twice; stats and rejects are per name")
        return ops

    def _split(self) -> list[Stage]:
        stages: list[Stage] = []
        current: list[Operator] = []
        prev: list[GlobalOperator] = []
        for op in self.operators:
            if isinstance(op, GlobalOperator):
                stages.append(Stage(len(stages), prev, current, [op]))
                prev, current = [op], []
            else:
                current.append(op)
        stages.append(Stage(len(stages), prev, current, []))
        if len(stages) == 1:  # no barrier in the pipeline: the id check gets one of its own
            stages.append(Stage(1, [], [], []))
        stages[0].map_ops.insert(0, self.unique_ids)
        stages[1].apply_ops.insert(0, self.unique_ids)
        return stages

    @property
    def operator_names(self) -> list[str]:
        names = [o.name for o in self.operators]
        first_global = next((i for i, o in enumerate(self.operators) if isinstance(o, GlobalOperator)), len(names))
        return ["reader", *names[:first_global], UNIQUE_IDS, *names[first_global:]]

    def carry_drops(self, stage_index: int) -> list[str]:
        """The readers' payload columns (e.g. html) that no step after this stage reads: left out
        of its carry, so a WARC job's later stages neither write nor read the pages again."""
        later: set[str] = set()
        for stage in self.stages[stage_index + 1:]:
            for op in stage.operators():
                later |= set(op.inputs)
        return sorted(self.transient_columns() - later)

    def transient_columns(self) -> set[str]:
        """Raw payload columns of the readers (e.g. html), never written to documents/."""
        out: set[str] = set()
        for r in registry.READERS.values():
            out |= set(r.transient_columns)
        return out
