"""Every real HTML page in shared/data, with its charset and language, and their main texts.

The pages are the status-200 text/html responses of shared/data/warc/*.warc.gz and the 181 article
pages of scrapinghub's article-extraction benchmark (wrapped as responses with minimal real-looking
headers); the benchmark's gold article texts come with them.
"""
from __future__ import annotations

import functools
import glob
import gzip
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from benchmarks.corpora.cache import cache_dir
from benchmarks.corpora.shared_data import shared_data
from benchmarks.corpora.text_pools import lingua_sentences
from operators.readers.charset import charset_from_content_type, charset_from_meta, decode

#: Version of the cached main texts of the pages (independent of how corpus copies are varied).
PAGE_TEXTS_VERSION = 3


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


#: Charsets (as the readers name them) that imply a language.
_CHARSET_LANG = {"gb18030": "zh", "big5hkscs": "zh", "euc_jp": "ja", "cp932": "ja", "iso2022_jp": "ja",
                 "cp1251": "ru", "koi8_r": "ru", "cp949": "ko"}
_LANG_RE = re.compile(rb"<html[^>]*?\blang\s*=\s*[\"']?([a-zA-Z]{2,3})", re.IGNORECASE)
_DROP_HEADERS = {"content-length", "transfer-encoding", "content-encoding"}


def _charset(content_type: str, body: bytes) -> str:
    """The page's declared charset as the readers read it: HTTP header, then <meta>, else UTF-8."""
    return charset_from_content_type(content_type) or charset_from_meta(body[:4096]) or "utf-8"


def _page_lang(body: bytes, charset: str) -> str:
    """<html lang> when lingua has sentences for it, else the language its charset implies, else en."""
    m = _LANG_RE.search(body[:4096])
    if m:
        lang = m.group(1).decode("ascii").lower()[:2]
        if lang == "en" or lingua_sentences(lang):
            return lang
    return _CHARSET_LANG.get(charset, "en")


def extraction_benchmark_dir() -> Path:
    """scrapinghub's article-extraction benchmark: html/<sha>.html.gz and ground-truth.json."""
    return shared_data() / "extraction" / "scrapinghub-aeb"


@functools.cache
def ground_truth() -> dict[str, dict]:
    """sha -> {"url", "articleBody"} of the extraction benchmark's pages ({} when it is missing)."""
    path = extraction_benchmark_dir() / "ground-truth.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


@functools.cache
def gold_texts() -> dict[str, str]:
    """url -> the extraction benchmark's gold article text."""
    return {v["url"]: v["articleBody"] for v in ground_truth().values() if v.get("url")}


def _warc_pages(path: str) -> list[Page]:
    from warcio.archiveiterator import ArchiveIterator

    pages = []
    with open(path, "rb") as fh:
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
                                  os.path.basename(path)))
        except Exception:  # noqa: BLE001 - a damaged tail ends that file, the pages read so far count
            pass
    return pages


@functools.cache
def real_pages() -> tuple[Page, ...]:
    """Every real HTML page: the WARC responses, then the extraction benchmark's pages."""
    pages: list[Page] = []
    for f in sorted(glob.glob(str(shared_data() / "warc" / "*.warc.gz"))):
        pages.extend(_warc_pages(f))
    truth = ground_truth()
    for f in sorted((extraction_benchmark_dir() / "html").glob("*.html.gz")):
        body = gzip.decompress(f.read_bytes())
        sha = f.name.split(".")[0]
        url = truth.get(sha, {}).get("url") or f"https://example.org/article/{sha[:16]}"
        cs = _charset("", body)
        headers = [("Content-Type", f"text/html; charset={cs}"), ("Server", "nginx")]
        pages.append(Page(url, "2019-11-20T00:00:00Z", "200 OK", headers, body, cs, _page_lang(body, cs),
                          "scrapinghub-aeb"))
    return tuple(pages)


def page_texts() -> list[tuple[str, str, str, str]]:
    """(url, date, lang, main text) of every real page with at least 200 characters of it: the gold
    text where the extraction benchmark has it, trafilatura otherwise; computed once per
    PAGE_TEXTS_VERSION and cached."""
    path = cache_dir() / f"page-texts-v{PAGE_TEXTS_VERSION}-{len(real_pages())}.json"
    if path.exists():
        return [tuple(x) for x in json.loads(path.read_text())]
    import trafilatura

    gold = gold_texts()
    out = []
    for p in real_pages():
        text = gold.get(p.url) if p.origin == "scrapinghub-aeb" else None
        if text is None:
            html, _ = decode(p.body, f"text/html; charset={p.charset}")
            try:
                text = trafilatura.extract(html, url=p.url, include_comments=False, fast=True) if html else None
            except Exception:  # noqa: BLE001 - a page trafilatura cannot handle is just left out
                text = None
        if text and len(text) >= 200:
            out.append((p.url, p.date, p.lang, text))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, ensure_ascii=False))
    os.replace(tmp, path)
    return out
