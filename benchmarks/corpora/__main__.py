"""python -m benchmarks.corpora: build the quick corpora (or find them cached) and describe them."""
from __future__ import annotations

import time

from benchmarks.corpora.shards import corpus_bytes
from benchmarks.corpora.warc_corpus import warc_corpus
from benchmarks.corpora.wet_corpus import wet_corpus

for build in (warc_corpus, wet_corpus):
    t0 = time.perf_counter()
    paths = build()
    print(build.__name__, len(paths), "shards", f"{corpus_bytes(paths) / 1e6:.1f} MB",
          f"{time.perf_counter() - t0:.1f}s", paths[0])
