"""The `quality` filter: runs the rule families the job names and drops on the first failing rule.

Families run in a fixed order, which is also the order a drop reason is chosen: Gopher repetition,
Gopher quality, C4, FineWeb (FineWeb sees the text after C4's line cleaning). `rules` names
families; `gopher` is both Gopher families. Parameters (the scheme is in the package docstring):

    quality:
      rules: [gopher, c4, fineweb]
      languages: null                     # only judge these languages (other rows pass, text untouched)
      no_space_languages: [zh, ja, ...]   # written without spaces: segmented, or word rules skipped
      segmented_languages: [zh, ja, th, ...]   # words from ICU's word breaker
      language_table: true                # the bundled per-language settings (languages.json)
      gopher_quality: {min_word_count: 50, stop_words_languages: [en]}
      c4: {filter_no_terminal_punct: false}
      per_language:                       # rows of a language get these settings over the job's
        de: {gopher_quality: {stop_words: [der, die, und, ...], stop_words_languages: [de]}}
        th: {skip: [c4_min_sentences]}    # rules not applied to the language (counted)

Rows of a language with settings of its own (the bundled table in `languages`, or `per_language`)
are judged with their own families (built from `settings_for(language)`), the rest with the job's:
each row has a settings variant. Signals are computed in one pass over the whole batch per family
when the variants present differ only in what the family reads per row (stop words, short-line
length, ...) or only in its bounds' limits, which is the case of the bundled table; variants that
differ in more are computed apart, on their rows only. Decisions then compare each signal column
with each row's own limit, all rows at once.
A rule not applied to a row (its language is written without spaces and not segmented, has no
stop-word list, or its entry's `skip` names the rule) is counted in stats.json
`operators.quality.counts` as `skipped.<reason>.<language>`: never a silent pass.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.documents import TEXT, set_column
from engine.operator import Filter, Resources, Result, register
from operators.filters.quality.family import Bound, Computed, RowSettings, RuleFamily
from operators.filters.quality.settings import FAMILIES, QualityParams
from operators.filters.quality.text_batch import TextBatch, as_numpy


@dataclasses.dataclass(frozen=True)
class Variant:
    """The settings one group of rows is judged with: its families, its bounds in order, the reasons
    not applied to it."""

    families: list[RuleFamily]
    skip: frozenset[str]
    bounds: list[Bound] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bounds", [b for f in self.families for b in f.bounds()])


@register
class Quality(Filter):
    name = "quality"
    inputs = (TEXT,)
    resources = Resources(cpus=1.0, memory_mb=1024)
    Params = QualityParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        #: The job's families, in order.
        self.families = self.build_families(None)
        #: Variant 0 is the job's (rows of languages without settings of their own); then one per
        #: language of the bundled table and of `per_language`.
        languages = self.params.table_languages()
        self.variants = [Variant(self.families, frozenset())] + [
            Variant(self.build_families(lang), frozenset(self.params.skipped_rules(lang))) for lang in languages]
        #: language -> its variant.
        self.variant_of = {lang: i + 1 for i, lang in enumerate(languages)}
        self.bounds = self.variants[0].bounds
        for v in self.variants:
            if [(b.reason, b.signal, b.op) for b in v.bounds] != [(b.reason, b.signal, b.op) for b in self.bounds]:
                raise RuntimeError("quality: every language must have the job's bounds, in the same order")
        #: [variant, bound] -> the bound's limit, and whether the variant skips its reason.
        self.limits = np.array([[b.limit for b in v.bounds] for v in self.variants], dtype=np.float64)
        self.skips = np.array([[b.reason in v.skip for b in v.bounds] for v in self.variants], dtype=bool)
        #: language -> [bound] whether the bound's `languages` hold it (for that language's variant).
        self._in_bound_languages: dict[str, np.ndarray] = {}

    def build_families(self, language: str | None) -> list[RuleFamily]:
        settings = self.params.settings_for(language)
        return [f(settings[f.name]) for f in FAMILIES if f.name in self.params.rules]

    def output_columns(self) -> tuple[str, ...]:
        return tuple(f"quality_{s.name}" for f in self.families for s in f.signals())

    def text_batch(self, batch: pa.RecordBatch) -> TextBatch:
        return TextBatch(batch, self.params.no_space_languages, self.params.languages,
                         segmented_languages=self.params.segmented_languages)

    def row_variants(self, text: TextBatch) -> tuple[np.ndarray, np.ndarray | None]:
        """Each row's variant, and [row, bound] whether the bound's `languages` hold the row's language
        (None: every row's; a batch without a language column)."""
        if text.language is None:
            return np.zeros(text.n, dtype=np.int64), None
        enc = pc.dictionary_encode(text.language)
        codes = as_numpy(enc.indices).astype(np.int64)
        langs = enc.dictionary.to_pylist()
        variant = np.array([self.variant_of.get(lang, 0) for lang in langs] or [0], dtype=np.int64)
        held = np.stack([self.bound_languages_hold(lang) for lang in langs] or
                        [np.ones(len(self.bounds), dtype=bool)])
        return variant[codes], held[codes]

    def bound_languages_hold(self, language: str) -> np.ndarray:
        held = self._in_bound_languages.get(language)
        if held is None:
            v = self.variants[self.variant_of.get(language, 0)]
            held = np.array([b.languages is None or language in b.languages for b in v.bounds], dtype=bool)
            self._in_bound_languages[language] = held
        return held

    # ------------------------------------------------------------------ compute
    def compute_family(self, text: TextBatch, index: int, which: np.ndarray) -> Computed:
        """Family `index`'s signals for every row, each with its variant's settings: one pass per
        group of variants that share the family's compute key (one group for the bundled table)."""
        present = np.unique(which)
        families = [self.variants[v].families[index] for v in present.tolist()]
        groups: dict[str, list[int]] = {}
        for k, f in enumerate(families):
            groups.setdefault(f.compute_key(), []).append(k)
        local = np.searchsorted(present, which)
        if len(groups) == 1:
            return families[0].compute(text, RowSettings(tuple(f.settings for f in families), local))
        parts = []
        for ks in groups.values():
            rows = np.flatnonzero(np.isin(local, ks))
            sub = RowSettings(tuple(families[k].settings for k in ks), np.searchsorted(ks, local[rows]))
            parts.append((rows, families[ks[0]].compute(text.take(rows), sub)))
        order = np.concatenate([rows for rows, _ in parts])
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        signals = {name: np.concatenate([np.asarray(out.signals[name]) for _, out in parts])[inverse]
                   for name in parts[0][1].signals}
        rewritten = None
        if any(out.text is not None for _, out in parts):
            pieces = [out.text if out.text is not None else text.text.take(pa.array(rows)) for rows, out in parts]
            rewritten = pa.concat_arrays(pieces).take(pa.array(inverse))
        return Computed(signals, rewritten)

    def compute(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        text = self.text_batch(batch)
        which, _ = self.row_variants(text)
        columns: dict[str, np.ndarray] = {}
        rewritten = None
        for index, family in enumerate(self.families):
            out = self.compute_family(text, index, which)
            declared = family.signals()
            if set(out.signals) != {s.name for s in declared}:
                raise RuntimeError(f"quality: {family.name} computed {sorted(out.signals)}, "
                                   f"declares {sorted(s.name for s in declared)}")
            for s in declared:
                columns[s.name] = np.asarray(out.signals[s.name], dtype=s.dtype)
            if out.text is not None:
                text = text.with_text(out.text)
                rewritten = out.text
        if rewritten is not None:
            batch = set_column(batch, TEXT, rewritten)
        for name, values in columns.items():
            batch = set_column(batch, f"quality_{name}", values)
        return batch

    # ------------------------------------------------------------------ decide
    def failures(self, batch: pa.RecordBatch, text: TextBatch | None = None
                 ) -> tuple[list[tuple[str, np.ndarray]], dict[str, np.ndarray]]:
        """(reason, failing rows) in the fixed order, from the signal columns of `batch` and each row's
        limits, and per reason the rows it was not applied to."""
        text = text or self.text_batch(batch)
        which, held = self.row_variants(text)
        present = np.unique(which)
        only_rows: dict[int, np.ndarray] = {}

        def only(b: Bound) -> np.ndarray:
            if b.only is None:
                return np.ones(text.n, dtype=bool)
            if id(b.only) not in only_rows:
                only_rows[id(b.only)] = b.only(text)
            return only_rows[id(b.only)]

        out: list[tuple[str, np.ndarray]] = []
        skipped: dict[str, np.ndarray] = {}
        for j, bound in enumerate(self.bounds):
            onlys = {id(self.variants[v].bounds[j].only): self.variants[v].bounds[j] for v in present.tolist()}
            if len(onlys) == 1:
                applies = only(next(iter(onlys.values())))
            else:
                applies = np.zeros(text.n, dtype=bool)
                for v in present.tolist():
                    rows = which == v
                    applies[rows] = only(self.variants[v].bounds[j])[rows]
            if held is not None:
                applies = applies & held[:, j]
            applies = applies & ~self.skips[which, j]
            values = as_numpy(batch.column(f"quality_{bound.signal}")).astype(np.float64)
            limit = self.limits[which, j]
            fails = values < limit if bound.op == "<" else values > limit
            out.append((bound.reason, fails & applies))
            if not applies.all():
                skipped[bound.reason] = skipped.get(bound.reason, np.zeros(text.n, dtype=bool)) | ~applies
        return out, skipped

    def skip_counts(self, text: TextBatch, skipped: dict[str, np.ndarray]) -> dict[str, int]:
        """`skipped.<reason>.<language>`: judged rows a rule was not applied to, by language."""
        langs = (np.asarray(pc.fill_null(text.language, "none").to_pylist(), dtype=object) if text.language is not None
                 else np.full(text.n, "none", dtype=object))
        langs[langs == ""] = "none"
        counts: dict[str, int] = {}
        for reason, mask in skipped.items():
            values, n = np.unique(langs[mask & text.scope].astype(str), return_counts=True)
            counts.update({f"skipped.{reason}.{lang}": int(c) for lang, c in zip(values.tolist(), n.tolist())})
        return counts

    def decide(self, batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
        keep, reasons, _ = self.judge(batch)
        return keep, reasons

    def judge(self, batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        text = self.text_batch(batch)
        scope = text.scope
        reasons = np.full(batch.num_rows, None, dtype=object)
        keep = np.ones(batch.num_rows, dtype=bool)
        failures, skipped = self.failures(batch, text)
        for reason, mask in reversed(failures):
            m = mask & scope
            reasons[m] = reason
            keep &= ~m
        return keep, reasons, self.skip_counts(text, skipped)

    def process(self, batch: pa.RecordBatch) -> Result:
        batch = self.compute(batch)
        keep, reasons, counts = self.judge(batch)
        return Result(batch, keep, reasons, counts=counts or None)
