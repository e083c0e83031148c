"""Heuristic quality rules: Gopher repetition, Gopher quality, C4 and FineWeb, with their signals.

One module per rule family (`gopher_repetition`, `gopher_quality`, `c4`, `fineweb`), each a
`RuleFamily` (see `family`) that declares its settings, its signals (`quality_*` columns) and its
drop reasons once; `settings` holds the operator's parameters (one settings model per family, and
the per-language table over them); `operator` holds the `quality` filter that runs the families.
Everything is computed for a whole batch with Arrow kernels and numpy (`text_batch`): no Python
loop runs per document or per word.

Parameters are nested per family, under the family's name; inside a family, a threshold is named
`min_<signal>` or `max_<signal>` after the signal it bounds (without the `c4_` / `fineweb_` column
prefix), and a switch for a line test is `filter_<what>` / `remove_<what>`:

    - quality:
        rules: [gopher, c4, fineweb]
        gopher_repetition: {max_dup_line_frac: 0.3, max_top_ngram_char_frac: {2: 0.2, 3: 0.18, 4: 0.16}}
        gopher_quality: {min_word_count: 50, stop_words_languages: [en]}
        c4: {filter_no_terminal_punct: false, min_sentences: 5}
        fineweb: {max_short_line_ratio: 0.67}

The old flat names (`c4_filter_no_terminal_punct`, `min_words`, `fineweb_new_line_ratio`, ...) still
work, each with a DeprecationWarning naming the new one; an unknown name is an error naming its place
(`pipeline[4].quality.c4.min_sentencez`). `per_language` overrides any of these for one language's
rows, with the same names: `per_language: {de: {gopher_quality: {stop_words: [der, die, und]}}}`
(names not given keep the job's value; n-gram sizes, which decide the columns, cannot change).

Languages: the rules were written for English. Each language is judged with its own settings from the
bundled table (`languages`: stop words, word-length bounds, short-line length, rules it cannot be
judged by), under what the job sets. Languages written without spaces get their words from ICU's
dictionary word breaker (`segmentation`: zh, ja, th, lo, km, my, yue, wuu); for rows of another
language in `no_space_languages` (bo by default) the word-based rules are not applied, and every rule
not applied to a row is counted in stats.json (`operators.quality.counts`, `skipped.<reason>.<lang>`).
Without a `language` column every rule applies to every row with the job's settings. `languages`, when
set, limits the whole filter to those languages (other rows pass, their text untouched by C4). Signals
are computed for every row regardless, and decisions are taken from the signal columns alone.
"""
from operators.filters.quality.operator import Quality
from operators.filters.quality.settings import FAMILIES, QualityParams

__all__ = ["FAMILIES", "Quality", "QualityParams"]
