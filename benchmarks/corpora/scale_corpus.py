"""A crawl-sized corpus for `decant bench scale`: N documents of real sentences in Parquet shards,
with injected near-duplicates and repeated lines, every injection recorded.

Material: English = WikiText-2 sentences + lingua en + UD English; every other language = its UD
treebank sentences + its lingua sentences (27 UD and 75 lingua languages). Half of the documents
are English, the rest spread over the other languages (weight ~ sqrt of the pool size). A document
is 3-5 lines ("paragraphs") of 2-4 sentences of one language drawn at random, so its lines are
distinct combinations (line dedup finds no accidental repeats, to a few collisions in the small pools).

Injected, at known rates:
- repeated lines: a few sentences per language are set aside as site-wide lines (footer-like) and
  REPEATED_SHARE of the documents get 1-3 of them at the top or the bottom. line_dedup keeps only
  the first occurrence in the corpus (key order = shard order, then row order: the order written);
- near-duplicates: DUP_RATE of the documents are copies of an earlier original of their shard (at
  most one copy per original, the source at most WINDOW documents back) with their own
  repeated lines and word edits (substitute / delete / insert a word of the same language): kind
  exact (none: line_dedup removes every line), joined (its lines joined into one paragraph, as a
  re-crawl with other markup gives, and 2 edits in it: J ~0.95), edit1, edit2, edit4 (that many
  edits in every line, so that no line is its source's: J ~0.8, ~0.7, ~0.5).

Truth (truth/shard-<n>.parquet: id, lang, kind, source_id, edits, repeated_lines, jaccard): `jaccard`
is the exact 5-word-shingle Jaccard (minhash's own normalisation) of the copy and its source *as
minhash_dedup sees them*: without the lines line_dedup removes (repeated lines after their first
occurrence, and a copy's lines that normalise as its source's line does).

Generated shard by shard (2 processes, a random stream per shard) with numpy draws; a process holds
one shard's rows and its WINDOW last originals, whatever N. Shard 0 decides which repeated lines
are first occurrences; later shards take every repeated line as seen before, and the build counts
the lines for which that is not so (`repeated_lines_first_seen_after_shard_0` in counts.json: a
copy or source holding such a line has its truth Jaccard off by that line).
"""
from __future__ import annotations

import json
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.corpora.cache import cached
from benchmarks.corpora.shared_data import shared_data
from benchmarks.corpora.text_pools import english_sentences, lingua_languages, lingua_sentences

EN_SHARE = 0.5
DUP_RATE = 0.06
#: kind -> word edits (per line; `joined`: in the document's one line)
KINDS = {"exact": 0, "joined": 2, "edit1": 1, "edit2": 2, "edit4": 4}
KIND_WEIGHTS = [0.10, 0.30, 0.35, 0.15, 0.10]
REPEATED_SHARE = 0.3
WINDOW = 20_000
NGRAM = 5
SHARD_DOCS = 50_000
ROW_GROUP = 10_000
#: Bump when the builder changes what it writes (part of the cache key).
SCALE_CORPUS_VERSION = 2
TRUTH_SCHEMA = pa.schema([("id", pa.string()), ("lang", pa.string()), ("kind", pa.string()),
                          ("source_id", pa.string()), ("edits", pa.int8()), ("repeated_lines", pa.int8()),
                          ("jaccard", pa.float32())])


def _ud(lang: str) -> list[str]:
    p = shared_data() / "text" / "ud" / f"{lang}.txt"
    return [s.strip() for s in p.read_text(encoding="utf-8").splitlines() if s.strip()] if p.exists() else []


def sentence_pools(seed: int = 0) -> dict[str, tuple[list[str], list[str]]]:
    """lang -> (content sentences, repeated lines), each list shuffled; the repeated lines (about 1%
    of the pool, 5 to 40) are never used as content."""
    langs = set(lingua_languages()) | {p.stem for p in (shared_data() / "text" / "ud").glob("*.txt")}
    out = {}
    for lang in sorted(langs):
        sents = list(english_sentences()) if lang == "en" else list(lingua_sentences(lang))
        # WikiText-2 marks rare words <unk>: dropped, as the perplexity models' training text does
        sents = sorted({" ".join(x.replace("<unk>", " ").split()) for x in sents + _ud(lang)} - {""})
        if len(sents) < 200:
            continue
        np.random.default_rng([seed, len(out)]).shuffle(sents)
        k = int(min(40, max(5, len(sents) // 100)))
        out[lang] = (sents[k:], sents[:k])
    return out


def shingles(text: str) -> np.ndarray:
    """Distinct 64-bit hashes of the 5-word shingles minhash_dedup takes from `text` (its own
    normalisation; a text of fewer words is one shingle)."""
    from operators.dedup.minhash import normalize
    w = np.array([hash(x) for x in normalize(text).split()], dtype=np.int64).view(np.uint64)
    if len(w) < NGRAM:
        return np.unique(np.bitwise_xor.reduce(w, keepdims=True)) if len(w) else w
    h = np.zeros(len(w) - NGRAM + 1, np.uint64)
    with np.errstate(over="ignore"):
        for k in range(NGRAM):
            h = h * np.uint64(0x100000001B3) + w[k:len(w) - NGRAM + 1 + k]
    return np.unique(h)


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    inter = len(np.intersect1d(sa, sb, assume_unique=True))
    return inter / max(1, len(sa) + len(sb) - inter)


def _edit_line(line: str, edits: int, rng: np.random.Generator, vocab: list[str]) -> str:
    """`edits` word edits, each changing the line's normalised form where it can."""
    from operators.text_norm import normalize_line
    words = line.split(" ")
    for _ in range(edits):
        op = rng.random()
        j = int(rng.integers(len(words)))
        new = vocab[int(rng.integers(len(vocab)))]
        if op < 0.5:
            for _ in range(5):  # a substitute that normalises differently
                if normalize_line(new) != normalize_line(words[j]):
                    break
                new = vocab[int(rng.integers(len(vocab)))]
            words[j] = new
        elif op < 0.75 and len(words) > 1:
            del words[j]
        else:
            words.insert(j, new)
    return " ".join(words)


class _Builder:
    """Writes one shard; holds its WINDOW last originals (their visible lines) for copies."""

    def __init__(self, folder: Path, shard_docs: int, seed: int, shard: int, pools: dict) -> None:
        self.folder, self.shard_docs = folder, shard_docs
        self.rng = np.random.default_rng([seed, shard])
        self.pools = pools
        self.langs = sorted(self.pools)
        others = [lang for lang in self.langs if lang != "en"]
        w = np.array([math.sqrt(len(self.pools[lang][0])) for lang in others])
        self.lang_p = np.array([EN_SHARE if lang == "en" else 0.0 for lang in self.langs])
        self.lang_p[[self.langs.index(lang) for lang in others]] = (1 - EN_SHARE) * w / w.sum()
        self.recent: OrderedDict[int, tuple[str, list[str], list[str]]] = OrderedDict()  # i -> (lang, lines, first reps)
        self.used_sources: set[int] = set()
        # shard 0 tracks the first occurrences; later shards take every repeated line as seen
        # before (checked after the build: `repeated_lines_first_seen_after_shard_0`)
        self.seen_repeated: set[str] = set() if shard == 0 else {x for _, r in pools.values() for x in r}
        self.used_repeated: set[str] = set()
        self.counts = {"documents": 0, "originals": 0, **{k: 0 for k in KINDS}, "with_repeated_lines": 0,
                       "repeated_line_instances": 0}

    def _repeated(self, lang: str, n: int) -> tuple[list[str], list[str]]:
        """(n repeated lines of the language, those of them seen here first in the corpus)."""
        reps = self.pools[lang][1]
        start = int(self.rng.integers(len(reps)))
        lines = [reps[(start + k) % len(reps)] for k in range(min(n, len(reps)))]
        first = [x for x in lines if x not in self.seen_repeated]
        self.seen_repeated.update(first)
        self.used_repeated.update(lines)
        return lines, first

    def _original(self, lang: str, per: list[int], u: list[float]) -> list[str]:
        """Lines of `per[k]` sentences each, sentence picks from the uniform draws `u`."""
        sents = self.pools[lang][0]
        n = len(sents)
        out, k = [], 0
        for p in per:
            out.append(" ".join([sents[int(x * n)] for x in u[k:k + p]]))
            k += p
        return out

    def _source(self, i: int, r: int, back: list[float]) -> int | None:
        """An earlier original of the shard, at most WINDOW back, that has no copy yet, or None."""
        for u in back:
            j = i - 1 - int(u * min(WINDOW, r))
            if j in self.recent and j not in self.used_sources:
                return j
        return None

    def shard(self, s: int, n: int) -> None:
        from operators.text_norm import normalize_line
        ids, urls, texts, truth = [], [], [], {k: [] for k in TRUTH_SCHEMA.names}
        is_dup = (self.rng.random(n) < DUP_RATE).tolist()
        kinds = self.rng.choice(len(KINDS), size=n, p=KIND_WEIGHTS).tolist()
        nreps = np.where(self.rng.random(n) < REPEATED_SHARE, self.rng.integers(1, 4, size=n), 0).tolist()
        tops = (self.rng.random(n) < 0.5).tolist()
        langs = self.rng.choice(len(self.langs), size=n, p=self.lang_p).tolist()
        sites = self.rng.integers(20_000, size=n).tolist()
        backs = self.rng.random((n, 4)).tolist()
        nlines = self.rng.integers(3, 6, size=n)
        line_at = np.concatenate([[0], np.cumsum(nlines)])
        per = self.rng.integers(2, 5, size=int(line_at[-1]))
        sent_at = np.concatenate([[0], np.cumsum(per)]).tolist()
        line_at, per = line_at.tolist(), per.tolist()
        u = self.rng.random(sent_at[-1]).tolist()
        for r in range(n):
            i = s * self.shard_docs + r
            src = self._source(i, r, backs[r]) if is_dup[r] and r else None
            nrep = nreps[r]
            if src is None:
                lang = self.langs[langs[r]]
                a, b = line_at[r], line_at[r + 1]
                lines = self._original(lang, per[a:b], u[sent_at[a]:sent_at[b]])
                kind, edits, jac = "original", 0, None
            else:
                lang, src_lines, src_first = self.recent[src]
                self.used_sources.add(src)
                kind = list(KINDS)[int(kinds[r])]
                edits = KINDS[kind]
                vocab = self.pools[lang][0][int(self.rng.integers(len(self.pools[lang][0])))].split(" ")
                if kind == "joined":
                    lines = [_edit_line(" ".join(src_lines), edits, self.rng, vocab)]
                else:
                    lines = [_edit_line(x, edits, self.rng, vocab) if edits else x for x in src_lines]
            reps, first = self._repeated(lang, nrep) if nrep else ([], [])
            body = (reps + lines) if tops[r] else (lines + reps)
            if src is not None:  # what minhash sees of the copy: lines that are not its source's
                src_norm = {normalize_line(x) for x in src_lines}
                visible = [x for x in lines if normalize_line(x) not in src_norm] + first
                jac = jaccard("\n".join(visible), "\n".join(src_lines + src_first))
                self.counts[kind] += 1
            else:
                self.counts["originals"] += 1
                self.recent[i] = (lang, lines, first)
                while len(self.recent) > WINDOW:
                    self.recent.popitem(last=False)
            self.counts["with_repeated_lines"] += bool(reps)
            self.counts["repeated_line_instances"] += len(reps)
            doc_id = f"d{i:09d}"
            ids.append(doc_id)
            urls.append(f"https://site{sites[r]:05d}.example/{lang}/{i}")
            texts.append("\n".join(body))
            for k, v in (("id", doc_id), ("lang", lang), ("kind", kind), ("source_id", None if src is None else
                         f"d{src:09d}"), ("edits", edits), ("repeated_lines", len(reps)), ("jaccard", jac)):
                truth[k].append(v)
        self.counts["documents"] += n
        table = pa.table({"id": ids, "url": urls, "text": texts})
        pq.write_table(table, self.folder / f"shard-{s:05d}.parquet", row_group_size=ROW_GROUP, compression="zstd")
        (self.folder / "truth").mkdir(exist_ok=True)
        pq.write_table(pa.table(truth, schema=TRUTH_SCHEMA), self.folder / "truth" / f"shard-{s:05d}.parquet")


_POOLS: dict = {}


def _build_shard(args: tuple) -> tuple[dict, set[str]]:
    folder, shard_docs, seed, s, n = args
    b = _Builder(folder, shard_docs, seed, s, _POOLS[seed])
    b.shard(s, n)
    return b.counts, b.used_repeated


def _build(folder: Path, docs: int, shard_docs: int, seed: int, version: int = SCALE_CORPUS_VERSION,
           processes: int = 2) -> None:
    """Shards in `processes` forked processes (each shard has its own random stream: the same
    corpus whatever the process count)."""
    import multiprocessing as mp
    _POOLS[seed] = sentence_pools(seed)
    nshards = max(1, math.ceil(docs / shard_docs))
    items = [(folder, shard_docs, seed, s, min(shard_docs, docs - s * shard_docs)) for s in range(nshards)]
    if processes > 1 and nshards > 1:
        with mp.get_context("fork").Pool(processes) as pool:
            results = pool.map(_build_shard, items, chunksize=1)
    else:
        results = [_build_shard(x) for x in items]
    counts: dict = {}
    for c, _ in results:
        for k, v in c.items():
            counts[k] = counts.get(k, 0) + v
    in_first = results[0][1]
    counts["repeated_lines_first_seen_after_shard_0"] = len(set().union(*(u for _, u in results[1:])) - in_first)
    counts.update({"shards": nshards, "shard_docs": shard_docs, "dup_rate": DUP_RATE, "kind_weights":
                   dict(zip(KINDS, KIND_WEIGHTS)), "repeated_share": REPEATED_SHARE, "en_share": EN_SHARE})
    (folder / "counts.json").write_text(json.dumps(counts, indent=1))


def shard_docs_for(docs: int) -> int:
    """SHARD_DOCS, or a quarter of a small corpus (so that a tiny run still has several shards)."""
    return min(SHARD_DOCS, max(250, math.ceil(docs / 4)))


def scale_corpus(docs: int, seed: int = 0) -> tuple[list[str], Path]:
    """(document shard paths, folder holding truth/ and counts.json) of a corpus of `docs`
    documents; built once per size and cached (benchmarks.corpora.cache)."""
    folder = cached("scale", _build, docs=docs, shard_docs=shard_docs_for(docs), seed=seed,
                    version=SCALE_CORPUS_VERSION)
    return sorted(str(p) for p in folder.glob("shard-*.parquet")), folder


def read_truth(folder: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted((folder / "truth").glob("shard-*.parquet"))])
