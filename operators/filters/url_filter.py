"""URL block lists: domains (with every parent domain) and keywords (whole URL tokens).

Lists are text files named in the job (`domain_lists`, `keyword_lists`, `allow_lists`; local paths
or fsspec URLs), one entry per line, `#` starts a comment, blank lines ignored, case-insensitive.
A domain line may be a bare domain, "*.domain", ".domain", a URL, or a hosts-file line
("0.0.0.0 domain"). `allow_domains` adds allowed domains inline.

Matching:
- domain: the URL's host (lowercased, port/credentials/trailing dot removed; internationalised
  names match in unicode or punycode form) and each of its parent domains: sub.example.com is blocked by an entry example.com (never by "com" unless the
  list says "com"). Reason "blocked_domain".
- keyword: the URL (lowercased) is cut into tokens at every non-alphanumeric character; a
  keyword (itself tokenised the same way, possibly several tokens) matches a run of whole
  tokens, so "sex" blocks ".../sex-shop" but not "sussex.ac.uk". Reason "blocked_keyword".
- an allowed domain (or a parent of the host in the allow list) passes both checks.
- rows without a URL pass.
Signals: `url_filter_domain` (the list entry that matched), `url_filter_keyword` (the keyword).
Domain check first, then keyword.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa

from engine.documents import URL, set_column
from engine.io import exists, open_input
from engine.operator import Filter, Params, Resources, register

_TOKEN_SPLIT = re.compile(r"[^0-9a-z]+")
_IP_RE = re.compile(r"^(?:\d{1,3}\.){3}\d{1,3}$|^[0-9a-f:]+$")


def read_list(path: str) -> list[str]:
    with open_input(path, "rb") as f:
        data = f.read().decode("utf-8", errors="replace")
    out = []
    for line in data.splitlines():
        line = line.split("#", 1)[0].strip().lower()
        if line:
            out.append(line)
    return out


def clean_domain(entry: str) -> str:
    parts = entry.split()
    if len(parts) >= 2 and _IP_RE.match(parts[0]):     # hosts-file format
        entry = parts[1]
    else:
        entry = parts[0]
    if "://" in entry:
        entry = host_of(entry) or ""
    entry = entry.lstrip("*").strip(".")
    return entry.split("/", 1)[0]


def host_of(url: str) -> str | None:
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    if not host and "://" not in url:
        try:
            host = urlsplit("//" + url.strip()).hostname
        except ValueError:
            return None
    return host.rstrip(".").lower() if host else None


def idna_forms(domain: str) -> list[str]:
    """The domain as given and, for an internationalised name, its punycode (or unicode) twin."""
    out = [domain]
    try:
        if domain.isascii():
            if "xn--" in domain:
                out.append(domain.encode("ascii").decode("idna").lower())
        else:
            out.append(domain.encode("idna").decode("ascii").lower())
    except UnicodeError:
        pass
    return out


def parents(host: str) -> list[str]:
    """host and each parent domain: a.b.example.com, b.example.com, example.com, com."""
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def tokens(s: str) -> list[str]:
    return [t for t in _TOKEN_SPLIT.split(s.lower()) if t]


class URLFilterParams(Params):
    domain_lists: list[str] = []
    keyword_lists: list[str] = []
    allow_lists: list[str] = []
    allow_domains: list[str] = []


@register
class URLFilter(Filter):
    name = "url_filter"
    inputs = (URL,)
    outputs = ("url_filter_domain", "url_filter_keyword")
    resources = Resources(cpus=1.0, memory_mb=512)
    Params = URLFilterParams

    def __init__(self, **params) -> None:
        super().__init__(**params)
        p = self.params
        for path in p.domain_lists + p.keyword_lists + p.allow_lists:
            if not exists(path):
                raise FileNotFoundError(f"url_filter: list file {path!r} not found")
        self._blocked: set[str] = set()
        self._allowed: set[str] = set()
        self._single: set[str] = set()
        self._multi: list[str] = []

    def setup(self) -> None:
        p = self.params
        self._blocked = {f for path in p.domain_lists for e in read_list(path) if (d := clean_domain(e))
                         for f in idna_forms(d)}
        allowed = [clean_domain(e) for path in p.allow_lists for e in read_list(path)]
        allowed += [clean_domain(e.lower()) for e in p.allow_domains if e.strip()]
        self._allowed = {f for d in allowed if d for f in idna_forms(d)}
        single, multi = set(), set()
        for path in p.keyword_lists:
            for e in read_list(path):
                toks = tokens(e)
                if len(toks) == 1:
                    single.add(toks[0])
                elif toks:
                    multi.add(" " + " ".join(toks) + " ")
        self._single, self._multi = single, sorted(multi)

    def __getstate__(self):
        # workers call setup(): do not ship the (possibly large) sets in the pickle
        state = self.__dict__.copy()
        state.update(_blocked=set(), _allowed=set(), _single=set(), _multi=[], _ready=False)
        return state

    def match(self, url: str | None) -> tuple[str | None, str | None]:
        """(blocking domain entry, blocking keyword) for one URL; (None, None) when it passes."""
        if not url:
            return None, None
        host = host_of(url)
        if host:
            chain = parents(host)
            if self._allowed and any(d in self._allowed for d in chain):
                return None, None
            if self._blocked:
                for d in chain:
                    if d in self._blocked:
                        return d, None
        if self._single or self._multi:
            toks = tokens(url)
            for t in toks:
                if t in self._single:
                    return None, t
            if self._multi:
                joined = " " + " ".join(toks) + " "
                for k in self._multi:
                    if k in joined:
                        return None, k.strip()
        return None, None

    def compute(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        urls = batch.column(URL).to_pylist() if URL in batch.schema.names else [None] * batch.num_rows
        dom, kw = [], []
        for u in urls:
            d, k = self.match(u)
            dom.append(d)
            kw.append(k)
        batch = set_column(batch, "url_filter_domain", pa.array(dom, pa.string()))
        return set_column(batch, "url_filter_keyword", pa.array(kw, pa.string()))

    def decide(self, batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
        dom = np.array(batch.column("url_filter_domain").is_valid().to_numpy(zero_copy_only=False))
        kw = np.array(batch.column("url_filter_keyword").is_valid().to_numpy(zero_copy_only=False))
        keep = ~(dom | kw)
        reasons = np.where(dom, "blocked_domain", np.where(kw, "blocked_keyword", None)).astype(object)
        return keep, reasons
