"""Corpus builders shared by the benchmarks (not a benchmark itself: the harness skips `corpus`).

Everything here is built from the real data in shared/data (never edited in place):

- `warc_corpus(pages, shards)`: Common-Crawl-like WARC shards (warcinfo, then request / response /
  metadata per page, one gzip member per record, written with warcio's WARCWriter). The response
  payloads are the real HTML responses of shared/data/warc/*.warc.gz (status 200, text/html) and the
  181 real article pages of the scrapinghub extraction benchmark, repeated and varied: every copy gets
  its own WARC-Record-ID and URL, and most copies get a few paragraphs of real, distinct sentences
  (lingua sentences in the page's language, else WikiText) inserted after existing paragraphs (`</p>`,
  so that the extractor sees them as main text; before `</body>` when there are none) so that line and
  near-duplicate dedup do not remove every copy; some copies are left near-identical on purpose
  (duplicate clusters). Page bytes keep their original charset (gb2312, cp1251, EUC-JP ...); inserted
  text is encoded in it, with character references where it cannot be.
- `wet_corpus(docs, shards)`: WET shards (warcinfo + `conversion` records, text/plain) from the main
  text of those pages (the benchmark's gold article text, trafilatura for the WARC pages, computed once
  and cached), lingua sentences grouped into documents per language, and WikiText-2 articles,
  repeated and varied the same way.
- `docs_from_text(n, size_bytes)`: n distinct real-text documents of about size_bytes each, and
  `write_wet(path, texts)` / `jsonl_corpus(...)` / `batch_of(texts)` for benchmarks and tests that start
  from documents.

Built corpora are cached under `cache_dir()` (DECANT_BENCH_CACHE, default <tmp>/decant-bench-cache) in
a folder named by the builder, its parameters and CORPUS_VERSION; a build writes into a temporary
folder and renames it into place, so concurrent or interrupted builds never leave half a corpus.
"""
from __future__ import annotations

import functools
import glob
import gzip
import hashlib
import io
import json
import os
import random
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

#: Bump when the builders change what they write: old cache entries are then ignored.
CORPUS_VERSION = 3
#: Version of the cached main texts of the real pages (independent of how copies are varied).
PAGE_TEXTS_VERSION = 2
_NS = uuid.UUID("6f1c1a52-53f3-4d0e-9a4b-2f7f0e7d9c11")


# ------------------------------------------------------------------ locations


def shared_data() -> Path:
    env = os.environ.get("DECANT_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def cache_dir() -> Path:
    d = Path(os.environ.get("DECANT_BENCH_CACHE") or Path(tempfile.gettempdir()) / "decant-bench-cache")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _key(kind: str, **params) -> str:
    blob = json.dumps({"v": CORPUS_VERSION, "kind": kind, **params}, sort_keys=True)
    return f"{kind}-" + "-".join(f"{k}{v}" for k, v in sorted(params.items()) if isinstance(v, (int, str))) \
        + "-" + hashlib.sha1(blob.encode()).hexdigest()[:10]


def _cached(kind: str, build, **params) -> Path:
    """Folder holding the corpus for (kind, params); built once, atomically."""
    final = cache_dir() / _key(kind, **params)
    if (final / "DONE").exists():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=cache_dir()))
    try:
        build(tmp, **params)
        (tmp / "DONE").write_text(json.dumps(params, sort_keys=True))
        try:
            os.rename(tmp, final)
        except OSError:  # someone else finished first (or a stale folder without DONE)
            if not (final / "DONE").exists():
                shutil.rmtree(final, ignore_errors=True)
                os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def shard_files(folder: Path, suffix: str) -> list[str]:
    return sorted(str(p) for p in folder.glob(f"*{suffix}"))


def corpus_bytes(paths: list[str]) -> int:
    return sum(os.path.getsize(p) for p in paths)


# ------------------------------------------------------------------ real text pools


@functools.cache
def lingua_sentences(lang: str) -> tuple[str, ...]:
    p = shared_data() / "text" / "lingua" / f"{lang}.txt"
    if not p.exists():
        return ()
    return tuple(s.strip() for s in p.read_text(encoding="utf-8", errors="replace").splitlines() if s.strip())


@functools.cache
def lingua_languages() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in (shared_data() / "text" / "lingua").glob("*.txt")))


_WT_FIX = [(" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), (" ,", ","), (" .", "."), (" ;", ";"), (" :", ":"),
           (" 's", "'s"), ("( ", "("), (" )", ")"), (" n't", "n't")]


def _detok(line: str) -> str:
    for a, b in _WT_FIX:
        line = line.replace(a, b)
    return line.strip()


@functools.cache
def wikitext_articles() -> tuple[tuple[str, str], ...]:
    """(title, text) of every WikiText-2 article in test + valid; paragraphs joined by newlines."""
    out: list[tuple[str, str]] = []
    for name in ("test.txt", "valid.txt"):
        p = shared_data() / "text" / "wikitext-2" / name
        if not p.exists():
            continue
        title, paras = None, []
        for raw in p.read_text(encoding="utf-8").splitlines():
            s = raw.strip()
            m = re.fullmatch(r"= ([^=].*?) =", s)
            if m:
                if title and paras:
                    out.append((title, "\n".join(paras)))
                title, paras = _detok(m.group(1)), []
            elif s and not s.startswith("="):
                paras.append(_detok(s))
        if title and paras:
            out.append((title, "\n".join(paras)))
    return tuple(out)


@functools.cache
def english_sentences() -> tuple[str, ...]:
    """Real English sentences: WikiText-2 paragraphs split at sentence ends, then lingua en."""
    sents: list[str] = []
    for _, text in wikitext_articles():
        for para in text.split("\n"):
            sents.extend(s.strip() for s in re.split(r"(?<=[.!?]) (?=[A-Z\"])", para) if len(s.strip()) > 20)
    return tuple(sents) + lingua_sentences("en")


class SentencePool:
    """Hands out real sentences of one language in a fixed pseudo-random order, so that consecutive
    draws are distinct until the pool is exhausted (then it wraps around)."""

    def __init__(self, lang: str, seed: int) -> None:
        sents = english_sentences() if lang == "en" else lingua_sentences(lang)
        if not sents:
            sents = english_sentences()
        self.sents = list(sents)
        random.Random(f"{seed}:{lang}").shuffle(self.sents)
        self.i = 0

    def take(self, k: int) -> list[str]:
        out = []
        for _ in range(k):
            out.append(self.sents[self.i % len(self.sents)])
            self.i += 1
        return out


class Pools:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.pools: dict[str, SentencePool] = {}

    def get(self, lang: str) -> SentencePool:
        if lang not in self.pools:
            self.pools[lang] = SentencePool(lang, self.seed)
        return self.pools[lang]


# ------------------------------------------------------------------ real pages


@dataclass
class Page:
    url: str
    date: str
    status_line: str
    headers: list[tuple[str, str]]
    body: bytes
    charset: str
    lang: str
    origin: str


_CHARSET_LANG = {"gb2312": "zh", "gbk": "zh", "gb18030": "zh", "big5": "zh", "euc-jp": "ja", "shift_jis": "ja",
                 "sjis": "ja", "iso-2022-jp": "ja", "cp1251": "ru", "windows-1251": "ru", "koi8-r": "ru",
                 "euc-kr": "ko"}
_LANG_RE = re.compile(rb"<html[^>]*?\blang\s*=\s*[\"']?([a-zA-Z]{2,3})", re.IGNORECASE)
_META_CS = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([\w-]+)", re.IGNORECASE)
_DROP_HEADERS = {"content-length", "transfer-encoding", "content-encoding"}


def _charset(content_type: str, body: bytes) -> str:
    m = re.search(r"charset\s*=\s*[\"']?([\w-]+)", content_type or "", re.IGNORECASE)
    if m:
        return m.group(1).lower()
    m = _META_CS.search(body[:4096])
    return m.group(1).decode("ascii", "replace").lower() if m else "utf-8"


def _page_lang(body: bytes, charset: str) -> str:
    m = _LANG_RE.search(body[:4096])
    if m:
        lang = m.group(1).decode("ascii").lower()[:2]
        if lang == "en" or lingua_sentences(lang):
            return lang
    return _CHARSET_LANG.get(charset, "en")


@functools.cache
def real_pages() -> tuple[Page, ...]:
    """Every real HTML page in shared/data: status-200 text/html WARC responses and the extraction
    benchmark's article pages (wrapped as responses with minimal real-looking headers)."""
    from warcio.archiveiterator import ArchiveIterator

    pages: list[Page] = []
    for f in sorted(glob.glob(str(shared_data() / "warc" / "*.warc.gz"))):
        with open(f, "rb") as fh:
            try:
                for rec in ArchiveIterator(fh):
                    if rec.rec_type != "response" or rec.http_headers is None:
                        continue
                    ct = rec.http_headers.get_header("Content-Type") or ""
                    if rec.http_headers.get_statuscode() != "200" or "html" not in ct.lower():
                        continue
                    body = rec.content_stream().read()
                    if len(body) < 512:
                        continue
                    cs = _charset(ct, body)
                    headers = [(k, v) for k, v in rec.http_headers.headers if k.lower() not in _DROP_HEADERS]
                    pages.append(Page(rec.rec_headers.get_header("WARC-Target-URI"),
                                      rec.rec_headers.get_header("WARC-Date") or "2020-08-01T00:00:00Z",
                                      rec.http_headers.statusline, headers, body, cs, _page_lang(body, cs),
                                      os.path.basename(f)))
            except Exception:  # noqa: BLE001 - a damaged tail ends that file, the pages read so far count
                pass
    aeb = shared_data() / "extraction" / "scrapinghub-aeb"
    truth = json.loads((aeb / "ground-truth.json").read_text()) if (aeb / "ground-truth.json").exists() else {}
    for f in sorted((aeb / "html").glob("*.html.gz")):
        body = gzip.decompress(f.read_bytes())
        sha = f.name.split(".")[0]
        url = truth.get(sha, {}).get("url") or f"https://example.org/article/{sha[:16]}"
        cs = _charset("", body)
        headers = [("Content-Type", f"text/html; charset={cs}"), ("Server", "nginx")]
        pages.append(Page(url, "2019-11-20T00:00:00Z", "200 OK", headers, body, cs, _page_lang(body, cs),
                          "scrapinghub-aeb"))
    return tuple(pages)


@functools.cache
def gold_texts() -> dict[str, str]:
    """url -> the extraction benchmark's gold article text."""
    aeb = shared_data() / "extraction" / "scrapinghub-aeb" / "ground-truth.json"
    if not aeb.exists():
        return {}
    return {v["url"]: v["articleBody"] for v in json.loads(aeb.read_text()).values() if v.get("url")}


def _paragraphs(pool: SentencePool, rng: random.Random, npar: tuple[int, int], nsent: tuple[int, int]) -> list[str]:
    return [" ".join(pool.take(rng.randint(*nsent))) for _ in range(rng.randint(*npar))]


def _html_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vary_html(page: Page, copy: int, pools: Pools, rng: random.Random, near_dup_rate: float) -> bytes:
    """The page's real HTML; copies after the first get real paragraphs inserted after some of its
    paragraphs (near duplicates get a single sentence)."""
    if copy == 0:
        return page.body
    pool = pools.get(page.lang)
    if rng.random() < near_dup_rate:
        paras = pool.take(1)
    else:
        paras = _paragraphs(pool, rng, (3, 8), (2, 5))
    def enc(text: str) -> bytes:
        html = f"\n<p>{_html_escape(text)}</p>"
        try:
            return html.encode(page.charset, errors="xmlcharrefreplace")
        except LookupError:
            return html.encode("utf-8")

    body = page.body
    low = body.lower()
    # after existing paragraphs (inside the main text, where an extractor keeps them), else before </body>
    ends = [m.end() for m in re.finditer(rb"</p\s*>", low)]
    if ends:
        at = sorted(rng.sample(ends, min(len(paras), len(ends))))
        at += [at[-1]] * (len(paras) - len(at))
    else:
        i = low.rfind(b"</body>")
        at = [i if i >= 0 else len(body)] * len(paras)
    out, prev = [], 0
    for pos, text in zip(at, paras):
        out.append(body[prev:pos])
        out.append(enc(text))
        prev = pos
    out.append(body[prev:])
    return b"".join(out)


def _copy_url(url: str, copy: int) -> str:
    if copy == 0:
        return url
    sep = "&" if "?" in url else "?"
    if "#" in url:
        url = url.split("#", 1)[0]
    return f"{url}{sep}decant_copy={copy}"


def _record_id(*parts) -> str:
    return f"<urn:uuid:{uuid.uuid5(_NS, ':'.join(map(str, parts)))}>"


def _warcinfo(writer, filename: str, software: str) -> None:
    info = {"software": software, "format": "WARC File Format 1.0", "isPartOf": "decant-bench",
            "description": "decant benchmark corpus built from real pages in shared/data"}
    writer.write_record(writer.create_warcinfo_record(filename, info))


# ------------------------------------------------------------------ WARC


def _build_warc(folder: Path, pages: int, shards: int, seed: int, near_dup_rate: float) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    base = real_pages()
    if not base:
        raise RuntimeError(f"no real pages found under {shared_data()}")
    rng = random.Random(seed)
    pools = Pools(seed)
    order = list(range(len(base)))
    per_shard = [pages // shards + (1 if s < pages % shards else 0) for s in range(shards)]
    n = 0
    for s, count in enumerate(per_shard):
        name = f"bench-{s:05d}.warc.gz"
        with open(folder / name, "wb") as fh:
            w = WARCWriter(fh, gzip=True)
            _warcinfo(w, name, "decant benchmarks/corpus.py")
            for _ in range(count):
                if n % len(base) == 0:
                    rng.shuffle(order)
                page = base[order[n % len(base)]]
                copy = n // len(base)
                url = _copy_url(page.url, copy)
                body = vary_html(page, copy, pools, rng, near_dup_rate)
                rest = re.sub(r"^\w+://", "", url)
                host, _, path = rest.partition("/")
                path = "/" + path
                ua = "CCBot/2.0 (https://commoncrawl.org/faq/)"
                req_headers = StatusAndHeaders(f"GET {path} HTTP/1.1",
                                               [("Host", host), ("User-Agent", ua), ("Accept", "text/html")],
                                               is_http_request=True)
                req = w.create_warc_record(url, "request", payload=io.BytesIO(b""), http_headers=req_headers,
                                           warc_headers_dict={"WARC-Record-ID": _record_id(seed, s, n, "req"),
                                                              "WARC-Date": page.date})
                headers = list(page.headers) + [("Content-Length", str(len(body)))]
                http = StatusAndHeaders(page.status_line, headers, protocol="HTTP/1.1")
                resp_id = _record_id(seed, s, n, "resp")
                req_id = req.rec_headers.get_header("WARC-Record-ID")
                resp = w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http,
                                            warc_headers_dict={"WARC-Record-ID": resp_id, "WARC-Date": page.date,
                                                               "WARC-Concurrent-To": req_id})
                meta = w.create_warc_record(url, "metadata",
                                            payload=io.BytesIO(f"fetchTimeMs: {rng.randint(50, 900)}\r\n".encode()),
                                            warc_content_type="application/warc-fields",
                                            warc_headers_dict={"WARC-Record-ID": _record_id(seed, s, n, "meta"),
                                                               "WARC-Date": page.date, "WARC-Refers-To": resp_id})
                for r in (req, resp, meta):
                    w.write_record(r)
                n += 1


def warc_corpus(pages: int = 2000, shards: int = 4, seed: int = 0, near_dup_rate: float = 0.15) -> list[str]:
    """Paths of `shards` gzipped WARC files holding `pages` real HTML responses in all (cached)."""
    folder = _cached("warc", _build_warc, pages=pages, shards=shards, seed=seed, near_dup_rate=near_dup_rate)
    return shard_files(folder, ".warc.gz")


# ------------------------------------------------------------------ WET


def _extract_page_texts() -> list[tuple[str, str, str, str]]:
    """(url, date, lang, main text) of every real page: gold text where the benchmark has it,
    trafilatura otherwise; computed once per PAGE_TEXTS_VERSION and cached."""
    path = cache_dir() / f"page-texts-v{PAGE_TEXTS_VERSION}-{len(real_pages())}.json"
    if path.exists():
        return [tuple(x) for x in json.loads(path.read_text())]
    import trafilatura

    gold = gold_texts()
    out = []
    for p in real_pages():
        text = gold.get(p.url) if p.origin == "scrapinghub-aeb" else None
        if text is None:
            try:
                html = p.body.decode(p.charset, errors="replace")
            except LookupError:
                html = p.body.decode("utf-8", errors="replace")
            try:
                text = trafilatura.extract(html, url=p.url, include_comments=False, fast=True)
            except Exception:  # noqa: BLE001 - a page trafilatura cannot handle is just left out
                text = None
        if text and len(text) >= 200:
            out.append((p.url, p.date, p.lang, text))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, ensure_ascii=False))
    os.replace(tmp, path)
    return out


@functools.cache
def base_texts() -> tuple[tuple[str, str, str, str], ...]:
    """(url, date, lang, text) of every real base document for WET / JSONL corpora."""
    docs = list(_extract_page_texts())
    rng = random.Random(7)
    for lang in lingua_languages():
        sents = list(lingua_sentences(lang))
        i = 0
        while i < len(sents):
            k = rng.randint(8, 25)
            chunk = sents[i:i + k]
            i += k
            if len(chunk) >= 5:
                # a few sentences per line, as paragraphs of a page
                lines, j = [], 0
                while j < len(chunk):
                    m = rng.randint(1, 3)
                    lines.append(" ".join(chunk[j:j + m]))
                    j += m
                docs.append((f"https://{lang}.news.example/{i // k:05d}", "2019-06-01T00:00:00Z", lang,
                             "\n".join(lines)))
    for t, (title, text) in enumerate(wikitext_articles()):
        slug = re.sub(r"\W+", "_", title)[:60]
        docs.append((f"https://en.wikipedia.org/wiki/{slug}", "2016-09-01T00:00:00Z", "en", f"{title}\n{text}"))
    return tuple(docs)


def vary_text(text: str, lang: str, copy: int, pools: Pools, rng: random.Random, near_dup_rate: float) -> str:
    if copy == 0:
        return text
    lines = text.split("\n")
    pool = pools.get(lang)
    if rng.random() < near_dup_rate:
        lines.insert(rng.randrange(len(lines) + 1), pool.take(1)[0])
        return "\n".join(lines)
    # keep most lines, drop a few, add several real paragraphs
    kept = [ln for ln in lines if rng.random() > 0.2] or lines[:1]
    for para in _paragraphs(pool, rng, (2, 6), (1, 4)):
        kept.insert(rng.randrange(len(kept) + 1), para)
    return "\n".join(kept)


def _build_wet(folder: Path, docs: int, shards: int, seed: int, near_dup_rate: float) -> None:
    from warcio.warcwriter import WARCWriter

    base = base_texts()
    rng = random.Random(seed)
    pools = Pools(seed + 1)
    order = list(range(len(base)))
    per_shard = [docs // shards + (1 if s < docs % shards else 0) for s in range(shards)]
    n = 0
    for s, count in enumerate(per_shard):
        name = f"bench-{s:05d}.warc.wet.gz"
        with open(folder / name, "wb") as fh:
            w = WARCWriter(fh, gzip=True)
            _warcinfo(w, name, "decant benchmarks/corpus.py (WET)")
            for _ in range(count):
                if n % len(base) == 0:
                    rng.shuffle(order)
                url, date, lang, text = base[order[n % len(base)]]
                copy = n // len(base)
                body = vary_text(text, lang, copy, pools, rng, near_dup_rate).encode("utf-8")
                rec = w.create_warc_record(
                    _copy_url(url, copy), "conversion", payload=io.BytesIO(body), warc_content_type="text/plain",
                    length=len(body),
                    warc_headers_dict={"WARC-Record-ID": _record_id(seed, "wet", s, n), "WARC-Date": date,
                                       "WARC-Refers-To": _record_id(seed, "warc", s, n)})
                w.write_record(rec)
                n += 1


def write_wet(path: str | os.PathLike, texts: list[str], urls: list[str] | None = None,
              date: str = "2019-06-01T00:00:00Z") -> str:
    """Write texts as one gzipped WET file (warcinfo + one conversion record per text) at path."""
    from warcio.warcwriter import WARCWriter

    path = str(path)
    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=True)
        _warcinfo(w, os.path.basename(path), "decant benchmarks/corpus.py (WET)")
        for i, text in enumerate(texts):
            body = text.encode("utf-8")
            url = urls[i] if urls else f"https://bench.example/{os.path.basename(path)}/{i}"
            w.write_record(w.create_warc_record(
                url, "conversion", payload=io.BytesIO(body), warc_content_type="text/plain", length=len(body),
                warc_headers_dict={"WARC-Record-ID": _record_id(path, i), "WARC-Date": date}))
    return path


def wet_corpus(docs: int = 6000, shards: int = 4, seed: int = 0, near_dup_rate: float = 0.15) -> list[str]:
    """Paths of `shards` gzipped WET files holding `docs` real-text conversion records (cached)."""
    folder = _cached("wet", _build_wet, docs=docs, shards=shards, seed=seed, near_dup_rate=near_dup_rate)
    return shard_files(folder, ".warc.wet.gz")


# ------------------------------------------------------------------ documents


def docs_from_text(n: int, size_bytes: int = 2000, seed: int = 0, languages: list[str] | None = None) -> list[str]:
    """n distinct documents of real sentences, each about size_bytes (UTF-8) long, in paragraphs.

    Languages rotate over `languages` (default: English only); sentences are drawn without repeats
    until a language's pool is exhausted, so documents are distinct, not copies.
    """
    langs = languages or ["en"]
    pools = Pools(seed)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        pool = pools.get(langs[i % len(langs)])
        paras, size, cur = [], 0, []
        while size < size_bytes:
            s = pool.take(1)[0]
            cur.append(s)
            size += len(s.encode()) + 1
            if len(cur) >= rng.randint(2, 4):
                paras.append(" ".join(cur))
                cur = []
        if cur:
            paras.append(" ".join(cur))
        out.append("\n".join(paras))
    return out


def batch_of(texts: list[str], ids: list[str] | None = None):
    """A document batch (engine schema) holding texts, with ids doc-000000... unless given."""
    from engine.documents import make_batch

    ids = ids or [f"doc-{i:06d}" for i in range(len(texts))]
    return make_batch({"id": ids, "url": [f"https://bench.example/{i}" for i in ids], "text": texts})


def _build_jsonl(folder: Path, docs: int, shards: int, size_bytes: int, seed: int, dup_rate: float) -> None:
    texts = docs_from_text(docs, size_bytes, seed=seed, languages=["en"])
    rng = random.Random(seed)
    per_shard = [docs // shards + (1 if s < docs % shards else 0) for s in range(shards)]
    i = 0
    for s, count in enumerate(per_shard):
        with gzip.open(folder / f"bench-{s:05d}.jsonl.gz", "wt", encoding="utf-8") as fh:
            for _ in range(count):
                text = texts[i]
                if i and rng.random() < dup_rate:  # a near duplicate of an earlier document
                    words = texts[rng.randrange(i)].split(" ")
                    j = rng.randrange(len(words))
                    words[j] = words[j] + "s"
                    text = " ".join(words)
                fh.write(json.dumps({"id": f"doc-{i:07d}", "text": text, "url": f"https://bench.example/{i}"},
                                    ensure_ascii=False) + "\n")
                i += 1


def jsonl_corpus(docs: int = 10000, shards: int = 4, size_bytes: int = 2000, seed: int = 0,
                 dup_rate: float = 0.1) -> list[str]:
    """Paths of JSONL.gz shards with id/url/text of real-sentence documents, a share of them near
    duplicates (one word changed) of earlier ones (cached)."""
    folder = _cached("jsonl", _build_jsonl, docs=docs, shards=shards, size_bytes=size_bytes, seed=seed,
                     dup_rate=dup_rate)
    return shard_files(folder, ".jsonl.gz")


if __name__ == "__main__":  # python -m benchmarks.corpus: build the quick corpora and describe them
    import time

    for fn, kw in ((warc_corpus, {}), (wet_corpus, {})):
        t0 = time.perf_counter()
        paths = fn(**kw)
        print(fn.__name__, len(paths), "shards", f"{corpus_bytes(paths) / 1e6:.1f} MB",
              f"{time.perf_counter() - t0:.1f}s", paths[0])


def edit_words(words: list[str], frac: float, rng, vocab: list[str], min_edits: int = 0) -> list[str]:
    """A near-duplicate: about `frac` of the words replaced, deleted or inserted (at least `min_edits`)."""
    w = list(words)
    for _ in range(max(min_edits, int(len(words) * frac))):
        j = rng.randrange(len(w))
        op = rng.random()
        if op < 0.4:
            w[j] = rng.choice(vocab)
        elif op < 0.7 and len(w) > 1:
            del w[j]
        else:
            w.insert(j, rng.choice(vocab))
    return w
