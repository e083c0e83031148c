"""Which module registers each operator of this package, so that a job imports only the operators
it names (engine.registry reads this; tests/operators/test_registry_index.py checks it against
importing every module). An operator left out still works: its name makes the registry import the
whole package."""

#: Imported whenever the package is discovered: readers and writers are looked through as a whole.
EAGER = (
    "operators.readers.jsonl",
    "operators.readers.parquet",
    "operators.readers.warc",
    "operators.readers.wet",
    "operators.writers",
)

#: Operator name -> the module that registers it.
OPERATORS = {
    "classifier": "operators.classifier",
    "exact_dedup": "operators.dedup.exact_dedup",
    "extract": "operators.extract",
    "importance": "operators.importance",
    "langid": "operators.langid",
    "line_dedup": "operators.dedup.line_dedup",
    "minhash_dedup": "operators.dedup.minhash_dedup",
    "perplexity": "operators.perplexity",
    "pii": "operators.filters.pii",
    "quality": "operators.filters.quality.operator",
    "url_filter": "operators.filters.url_filter",
}
