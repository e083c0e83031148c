"""Corpora the benchmarks run on, all built from the real data in shared/data (never edited in place).

- `warc_corpus.warc_corpus(pages, shards)`: Common-Crawl-like WARC shards of the real HTML pages,
  repeated and varied (real sentences inserted), with near-duplicate clusters;
- `wet_corpus.wet_corpus(docs, shards)`: WET shards of the main texts of those pages, lingua
  sentences and WikiText-2 articles, repeated and varied the same way; `wet_corpus.write_wet` for
  one WET file of given texts;
- `jsonl_corpus.jsonl_corpus(folder, shards, docs_per_shard)`: JSONL.gz shards of multilingual real
  text with repeated paragraphs (the scaling job's input);
- `documents`: distinct real-text documents, document batches and near-duplicate edits, for
  benchmarks and tests that start from documents.

Their material: `text_pools` (lingua sentences, WikiText-2 articles) and `real_pages` (the real HTML
pages and their main texts). WARC and WET corpora are cached (`cache`); `python -m benchmarks.corpora`
builds the quick ones.
"""
