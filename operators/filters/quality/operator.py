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
are computed and judged with their own families (built from `settings_for(language)`); the rest
with the job's. Without a `language` column the whole batch is one group and nothing is copied.
A rule not applied to a row (its language is written without spaces and not segmented, has no
stop-word list, or its entry's `skip` names the rule) is counted in stats.json
`operators.quality.counts` as `skipped.<reason>.<language>`: never a silent pass.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.documents import TEXT, set_column
from engine.operator import Filter, Resources, Result, register
from operators.filters.quality.family import RuleFamily
from operators.filters.quality.settings import FAMILIES, QualityParams
from operators.filters.quality.text_batch import TextBatch, as_numpy


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
        #: language -> that language's families (languages of the bundled table and of `per_language`).
        self.language_families = {lang: self.build_families(lang) for lang in self.params.table_languages()}
        #: language -> drop reasons not applied to its rows.
        self.language_skips = {lang: self.params.skipped_rules(lang) for lang in self.language_families}

    def build_families(self, language: str | None) -> list[RuleFamily]:
        settings = self.params.settings_for(language)
        return [f(settings[f.name]) for f in FAMILIES if f.name in self.params.rules]

    def output_columns(self) -> tuple[str, ...]:
        return tuple(f"quality_{s.name}" for f in self.families for s in f.signals())

    def text_batch(self, batch: pa.RecordBatch) -> TextBatch:
        return TextBatch(batch, self.params.no_space_languages, self.params.languages,
                         segmented_languages=self.params.segmented_languages)

    def groups(self, text: TextBatch) -> list[tuple[np.ndarray | None, list[RuleFamily], set[str]]]:
        """(rows, families, skipped reasons) per settings group; rows None when one group holds the
        whole batch."""
        if not self.language_families or text.language is None:
            return [(None, self.families, set())]
        enc = pc.dictionary_encode(text.language)
        codes = as_numpy(enc.indices).astype(np.int64)
        out = []
        rest = np.ones(text.n, dtype=bool)
        for code, lang in enumerate(enc.dictionary.to_pylist()):
            families = self.language_families.get(lang)
            if families is None:
                continue
            mask = codes == code
            out.append((np.flatnonzero(mask), families, self.language_skips[lang]))
            rest &= ~mask
        if not out:
            return [(None, self.families, set())]
        if rest.any():
            out.append((np.flatnonzero(rest), self.families, set()))
        return out

    # ------------------------------------------------------------------ compute
    @staticmethod
    def signals(text: TextBatch, families: list[RuleFamily]) -> tuple[dict[str, np.ndarray], pa.Array | None]:
        """The signal columns of `families` on `text`, and the rewritten text (None if unchanged)."""
        columns: dict[str, np.ndarray] = {}
        rewritten = None
        for family in families:
            out = family.compute(text)
            declared = family.signals()
            if set(out.signals) != {s.name for s in declared}:
                raise RuntimeError(f"quality: {family.name} computed {sorted(out.signals)}, "
                                   f"declares {sorted(s.name for s in declared)}")
            for s in declared:
                columns[s.name] = np.asarray(out.signals[s.name], dtype=s.dtype)
            if out.text is not None:
                text = text.with_text(out.text)
                rewritten = out.text
        return columns, rewritten

    def compute(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        text = self.text_batch(batch)
        groups = self.groups(text)
        if groups[0][0] is None:
            columns, rewritten = self.signals(text, groups[0][1])
        else:
            parts = [(rows, *self.signals(text.take(rows), families)) for rows, families, _ in groups]
            order = np.concatenate([rows for rows, _, _ in parts])
            inverse = np.empty_like(order)
            inverse[order] = np.arange(len(order))
            columns = {name: np.concatenate([cols[name] for _, cols, _ in parts])[inverse] for name in parts[0][1]}
            rewritten = None
            if any(new is not None for _, _, new in parts):
                pieces = [new if new is not None else text.text.take(pa.array(rows)) for rows, _, new in parts]
                rewritten = pa.concat_arrays(pieces).take(pa.array(inverse))
        if rewritten is not None:
            batch = set_column(batch, TEXT, rewritten)
        for name, values in columns.items():
            batch = set_column(batch, f"quality_{name}", values)
        return batch

    # ------------------------------------------------------------------ decide
    def failures(self, batch: pa.RecordBatch) -> tuple[list[tuple[str, np.ndarray]], dict[str, np.ndarray]]:
        """(reason, failing rows) in the fixed order, from the signal columns of `batch`, and per
        reason the rows it was not applied to."""
        text = self.text_batch(batch)
        out: list[tuple[str, np.ndarray]] | None = None
        skipped: dict[str, np.ndarray] = {}
        for rows, families, skip in self.groups(text):
            member = np.ones(text.n, dtype=bool)
            if rows is not None:
                member = np.zeros(text.n, dtype=bool)
                member[rows] = True
            group = []
            for f in families:
                for b in f.bounds():
                    applies = np.zeros(text.n, dtype=bool) if b.reason in skip else b.applies(text)
                    values = as_numpy(batch.column(f"quality_{b.signal}")).astype(np.float64)
                    group.append((b.reason, b.fails(values, text) & applies & member))
                    not_applied = member & ~applies
                    if not_applied.any():
                        skipped[b.reason] = skipped.get(b.reason, np.zeros(text.n, dtype=bool)) | not_applied
            out = group if out is None else [(r, a | c) for (r, a), (_, c) in zip(out, group)]
        return out or [], skipped

    def skip_counts(self, batch: pa.RecordBatch, skipped: dict[str, np.ndarray]) -> dict[str, int]:
        """`skipped.<reason>.<language>`: judged rows a rule was not applied to, by language."""
        text = self.text_batch(batch)
        langs = (np.asarray(pc.fill_null(text.language, "none").to_pylist(), dtype=object) if text.language is not None
                 else np.full(batch.num_rows, "none", dtype=object))
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
        scope = self.text_batch(batch).scope
        reasons = np.full(batch.num_rows, None, dtype=object)
        keep = np.ones(batch.num_rows, dtype=bool)
        failures, skipped = self.failures(batch)
        for reason, mask in reversed(failures):
            m = mask & scope
            reasons[m] = reason
            keep &= ~m
        return keep, reasons, self.skip_counts(batch, skipped)

    def process(self, batch: pa.RecordBatch) -> Result:
        batch = self.compute(batch)
        keep, reasons, counts = self.judge(batch)
        return Result(batch, keep, reasons, counts=counts or None)
