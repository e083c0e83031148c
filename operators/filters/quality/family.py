"""What a rule family is: one settings model, the signals it computes, and the bounds it drops on.

A family (Gopher repetition, Gopher quality, C4, FineWeb) is built from its settings, computes its
signals for a whole `TextBatch`, and states its decisions as an ordered list of `Bound`s: "drop with
this reason when this signal is below / above this limit". The quality operator writes the signals as
`quality_<signal>` columns and applies the bounds from those columns alone, so a family's signals and
reasons are each written once, in its own module.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import ClassVar, Literal

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
    """Drop a document with `reason` when its `signal` is `op` `limit` (on the rows `only` selects)."""

    reason: str
    signal: str
    op: Literal["<", ">"]
    limit: float
    #: Rows the bound applies to (None: every row), e.g. only languages written with spaces.
    only: Callable[[TextBatch], np.ndarray] | None = None

    def applies(self, batch: TextBatch) -> np.ndarray:
        """The rows the bound judges."""
        return self.only(batch) if self.only is not None else np.ones(batch.n, dtype=bool)

    def fails(self, values: np.ndarray, batch: TextBatch) -> np.ndarray:
        mask = values < self.limit if self.op == "<" else values > self.limit
        return mask & self.applies(batch)


def with_words(batch: TextBatch) -> np.ndarray:
    """`Bound.only` for the word-based rules: rows whose words are known (a language written with
    spaces, or one that ICU segments)."""
    return batch.has_words


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

    def __init__(self, settings: FamilySettings) -> None:
        self.settings = settings

    def signals(self) -> tuple[Signal, ...]:
        """The signals `compute` returns, in column order."""
        raise NotImplementedError

    def compute(self, batch: TextBatch) -> Computed:
        raise NotImplementedError

    def bounds(self) -> list[Bound]:
        """The drop decisions in the order a reason is chosen (the first failing bound wins)."""
        raise NotImplementedError

    def reasons(self) -> list[str]:
        """The drop reasons this family can give, in order."""
        return list(dict.fromkeys(b.reason for b in self.bounds()))
