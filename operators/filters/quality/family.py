"""What a rule family is: one settings model, the signals it computes, and the bounds it drops on.

A family (Gopher repetition, Gopher quality, C4, FineWeb) is built from its settings, computes its
signals for a whole `TextBatch`, and states its decisions as an ordered list of `Bound`s: "drop with
this reason when this signal is below / above this limit". The quality operator writes the signals as
`quality_<signal>` columns and applies the bounds from those columns alone, so a family's signals and
reasons are each written once, in its own module.

Rows of one batch may have different settings (one per language). A family says which of its settings
only its bounds read (`bound_settings`) and which its `compute` reads row by row (`row_settings`, from
`RowSettings`): rows whose settings differ only in those are computed together, in one pass over the
batch, so a batch of 60 languages costs about what a batch of one does.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa

from engine.operator import Params
from operators.filters.quality.text_batch import TextBatch


class FamilySettings(Params):
    """Base of a family's settings: unknown names are an error, like every operator parameter."""


@dataclasses.dataclass(frozen=True)
class Signal:
    """A per-document figure a family computes, stored as column `quality_<name>` of `dtype`."""

    name: str
    dtype: type


@dataclasses.dataclass(frozen=True)
class Bound:
    """Drop a document with `reason` when its `signal` is `op` `limit` (on the rows `only` selects,
    of the `languages` named)."""

    reason: str
    signal: str
    op: Literal["<", ">"]
    limit: float
    #: Rows the bound applies to (None: every row), e.g. only languages written with spaces.
    only: Callable[[TextBatch], np.ndarray] | None = None
    #: Languages the bound applies to (None: every language; without a language column: every row).
    languages: tuple[str, ...] | None = None


def with_words(batch: TextBatch) -> np.ndarray:
    """`Bound.only` for the word-based rules: rows whose words are known (a language written with
    spaces, or one that ICU segments)."""
    return batch.has_words


@dataclasses.dataclass(frozen=True)
class RowSettings:
    """The settings of every row of a batch: the distinct ones (`variants`) and each row's (`which`)."""

    variants: tuple[FamilySettings, ...]
    #: int64 per row: its index in `variants`.
    which: np.ndarray

    @classmethod
    def single(cls, settings: FamilySettings, n: int) -> RowSettings:
        return cls((settings,), np.zeros(n, dtype=np.int64))

    def values(self, name: str) -> np.ndarray:
        """Setting `name` of every row."""
        return np.asarray([getattr(v, name) for v in self.variants])[self.which]

    def lists(self, name: str) -> list[Any]:
        """Setting `name` of each variant."""
        return [getattr(v, name) for v in self.variants]


@dataclasses.dataclass
class Computed:
    """A family's signals for a batch (by signal name), and the text it rewrote, if any."""

    signals: dict[str, np.ndarray]
    text: pa.Array | None = None


class RuleFamily:
    """One family of heuristic rules. Subclasses set the class attributes and the three methods."""

    #: The family's name in `rules:` and the key of its settings in the job file.
    name: ClassVar[str] = ""
    Settings: ClassVar[type[FamilySettings]] = FamilySettings
    #: The quality operator's old flat parameter names for this family's settings (old -> new);
    #: still accepted, with a DeprecationWarning.
    renamed: ClassVar[dict[str, str]] = {}
    #: Settings only `bounds` reads: rows that differ in them share one `compute`.
    bound_settings: ClassVar[frozenset[str]] = frozenset()
    #: Settings `compute` reads per row from its `RowSettings`: rows that differ in them share one too.
    row_settings: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, settings: FamilySettings) -> None:
        self.settings = settings

    def compute_key(self) -> str:
        """Equal for families whose `compute` may run on each other's rows in one pass."""
        kept = self.settings.model_dump(exclude=set(self.bound_settings | self.row_settings))
        return json.dumps(kept, sort_keys=True, default=str)

    def row_settings_of(self, batch: TextBatch, rows: RowSettings | None) -> RowSettings:
        return rows if rows is not None else RowSettings.single(self.settings, batch.n)

    def signals(self) -> tuple[Signal, ...]:
        """The signals `compute` returns, in column order."""
        raise NotImplementedError

    def compute(self, batch: TextBatch, rows: RowSettings | None = None) -> Computed:
        """The signals of every row of `batch`; `rows` gives each row's settings among families of
        this one's `compute_key` (None: this family's settings for every row)."""
        raise NotImplementedError

    def bounds(self) -> list[Bound]:
        """The drop decisions in the order a reason is chosen (the first failing bound wins)."""
        raise NotImplementedError

    def reasons(self) -> list[str]:
        """The drop reasons this family can give, in order."""
        return list(dict.fromkeys(b.reason for b in self.bounds()))
