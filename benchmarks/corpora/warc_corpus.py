"""Common-Crawl-like WARC shards of the real pages, repeated and varied.

Each page becomes request / response / metadata records (one gzip member per record, warcinfo
first). Every copy gets its own WARC-Record-ID and URL; most copies after the first get a few
paragraphs of real, distinct sentences (lingua sentences in the page's language, else WikiText)
inserted after existing paragraphs, where an extractor keeps them as main text, so that line and
near-duplicate dedup do not remove every copy; some copies get one sentence only (near-duplicate
clusters). Page bytes keep their original charset (gb2312, cp1251, EUC-JP ...); inserted text is
encoded in it, with character references where it cannot be.
"""
from __future__ import annotations

import io
import random
import re
from pathlib import Path

from benchmarks.corpora.cache import cached
from benchmarks.corpora.real_pages import Page, real_pages
from benchmarks.corpora.shards import shard_files, shuffled_rounds
from benchmarks.corpora.shared_data import shared_data
from benchmarks.corpora.text_pools import Pools
from benchmarks.corpora.warc_records import copy_url, record_id, warc_shards

SOFTWARE = "decant benchmarks/corpora/warc_corpus.py"
USER_AGENT = "CCBot/2.0 (https://commoncrawl.org/faq/)"


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
        paras = pool.paragraphs(rng, (3, 8), (2, 5))

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


def _write_page(w, url: str, page: Page, body: bytes, ids: tuple, rng: random.Random) -> None:
    """request, response and metadata records of one fetch of `url`."""
    from warcio.statusandheaders import StatusAndHeaders

    host, _, path = re.sub(r"^\w+://", "", url).partition("/")
    req_headers = StatusAndHeaders(f"GET /{path} HTTP/1.1",
                                   [("Host", host), ("User-Agent", USER_AGENT), ("Accept", "text/html")],
                                   is_http_request=True)
    req = w.create_warc_record(url, "request", payload=io.BytesIO(b""), http_headers=req_headers,
                               warc_headers_dict={"WARC-Record-ID": record_id(*ids, "req"), "WARC-Date": page.date})
    http = StatusAndHeaders(page.status_line, list(page.headers) + [("Content-Length", str(len(body)))],
                            protocol="HTTP/1.1")
    resp_id = record_id(*ids, "resp")
    resp = w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http,
                                warc_headers_dict={"WARC-Record-ID": resp_id, "WARC-Date": page.date,
                                                   "WARC-Concurrent-To": req.rec_headers.get_header("WARC-Record-ID")})
    meta = w.create_warc_record(url, "metadata",
                                payload=io.BytesIO(f"fetchTimeMs: {rng.randint(50, 900)}\r\n".encode()),
                                warc_content_type="application/warc-fields",
                                warc_headers_dict={"WARC-Record-ID": record_id(*ids, "meta"),
                                                   "WARC-Date": page.date, "WARC-Refers-To": resp_id})
    for r in (req, resp, meta):
        w.write_record(r)


def _build(folder: Path, pages: int, shards: int, seed: int, near_dup_rate: float) -> None:
    base = real_pages()
    if not base:
        raise RuntimeError(f"no real pages found under {shared_data()}")
    rng = random.Random(seed)
    pools = Pools(seed)
    draws = shuffled_rounds(len(base), pages, rng)
    for s, n, w in warc_shards(folder, pages, shards, ".warc.gz", SOFTWARE):
        i, copy = next(draws)
        page = base[i]
        url = copy_url(page.url, copy)
        body = vary_html(page, copy, pools, rng, near_dup_rate)
        _write_page(w, url, page, body, (seed, s, n), rng)


def warc_corpus(pages: int = 2000, shards: int = 4, seed: int = 0, near_dup_rate: float = 0.15) -> list[str]:
    """Paths of `shards` gzipped WARC files holding `pages` real HTML responses in all (cached)."""
    folder = cached("warc", _build, pages=pages, shards=shards, seed=seed, near_dup_rate=near_dup_rate)
    return shard_files(folder, ".warc.gz")
