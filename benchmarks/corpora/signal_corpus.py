"""The real English text the bundled signal models (models/signals/) learn from, and the pages
`decant bench classifier` measures them on, split once so that the benchmark never sees training text.

Curated prose (classifier positives, importance target):
- WikiText-2 test + valid paragraphs (Wikipedia), tokenisation undone and `<unk>` removed as for the
  perplexity models (operators.lm_train.wikitext_sentences);
- UD English-PUD sentences (news and Wikipedia; the last 1,000 lines of text/ud/en.txt), 5 per document;
- the gold article text of the training half of scrapinghub's article-extraction benchmark pages.

Crawl (classifier negatives, importance source):
- the main text trafilatura (decant's `extract`) takes from the English HTML pages of the real WARC
  samples in shared/data/warc (web captures of 2008, 2020 and 2024);
- the boilerplate lines of those pages and of the training-half benchmark pages: the text of
  navigation, header, footer, aside, menu, share, cookie and newsletter blocks that is not part of
  the page's main text, 12 lines per document;
- UD English-EWT sentences (blogs, reviews, e-mail, social media: unedited web text; the first
  15,525 lines of text/ud/en.txt), 5 per document.

Held out: the benchmark pages of about half of its sites (those whose name's sha256 starts with a hex
digit 0-7), whole sites so that no held-out page shares a menu or footer with a training page. Nothing
of them is in the training files; `heldout_pages()` gives their article text and boilerplate.

    python -m benchmarks.corpora.signal_corpus OUT_DIR    writes OUT_DIR/positive.jsonl.gz, negative.jsonl.gz
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import json
import random
import sys
from pathlib import Path
from urllib.parse import urlparse

from benchmarks.corpora.real_pages import ground_truth, real_pages
from benchmarks.corpora.shared_data import shared_data
from operators.signal_training import shuffle_words

UD_EWT_LINES = 15_525  # text/ud/SOURCES.md: UD_English-EWT first, then the 1,000 lines of UD_English-PUD
SENTENCES_PER_DOC = 5
BOILERPLATE_LINES_PER_DOC = 12
#: Blocks whose text is boilerplate: structural elements, and elements whose id or class names one.
BOILERPLATE_BLOCKS = ("//nav | //header | //footer | //aside | //*[@role='navigation' or @role='banner' "
                      "or @role='contentinfo'] | //*[re:test(@id, '{pat}', 'i')] | //*[re:test(@class, '{pat}', 'i')]")
BOILERPLATE_NAMES = (r"menu|navbar|nav-|breadcrumb|footer|sidebar|share|social|cookie|consent|subscribe|newsletter"
                     r"|related")
EXSLT = {"re": "http://exslt.org/regular-expressions"}


def site(url: str) -> str:
    return urlparse(url).netloc.lower().removeprefix("www.")


def is_heldout(url: str) -> bool:
    """Benchmark pages kept out of training: those of the sites whose name's sha256 starts with 0-7
    (by site, not by page, so that no template or menu of a held-out page was seen in training)."""
    return hashlib.sha256(site(url).encode()).hexdigest()[0] < "8"


def groups(lines: list[str], size: int) -> list[str]:
    """Consecutive lines joined into documents of `size` lines (the last one may be shorter)."""
    return ["\n".join(lines[i:i + size]) for i in range(0, len(lines), size)]


@functools.cache
def wikitext_paragraphs() -> tuple[str, ...]:
    """WikiText-2 test + valid paragraphs as plain text, one document each."""
    from operators.lm_train import wikitext_sentences

    out = []
    for name in ("test.txt", "valid.txt"):
        for line in (shared_data() / "text" / "wikitext-2" / name).read_text(encoding="utf-8").splitlines():
            text = " ".join(wikitext_sentences([line]))
            if len(text.split()) >= 20:
                out.append(text)
    return tuple(out)


@functools.cache
def ud_english() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(UD English-PUD documents: news and wiki, UD English-EWT documents: web), 5 sentences each."""
    lines = (shared_data() / "text" / "ud" / "en.txt").read_text(encoding="utf-8").splitlines()
    ewt, pud = lines[:UD_EWT_LINES], lines[UD_EWT_LINES:]
    return tuple(groups(pud, SENTENCES_PER_DOC)), tuple(groups(ewt, SENTENCES_PER_DOC))


def boilerplate_lines(html: str, main_text: str) -> list[str]:
    """Distinct text lines of the page's boilerplate blocks that are not part of its main text."""
    import lxml.html

    try:
        tree = lxml.html.fromstring(html)
    except Exception:  # noqa: BLE001 - an unparsable page has no boilerplate to offer
        return []
    for bad in tree.xpath("//script | //style | //noscript"):
        bad.drop_tree()
    xpath = BOILERPLATE_BLOCKS.format(pat=BOILERPLATE_NAMES)
    seen: set[str] = set()
    out: list[str] = []
    for block in tree.xpath(xpath, namespaces=EXSLT):
        for piece in block.itertext():
            line = " ".join(piece.split())
            if len(line) < 2 or line in seen or line in main_text:
                continue
            seen.add(line)
            out.append(line)
    return out


def _decode(body: bytes, charset: str) -> str:
    from operators.readers.charset import decode

    text, _ = decode(body, charset)
    return text or body.decode("utf-8", "replace")


def _english(texts: list[str]) -> list[bool]:
    """lid.176 says English (decant's langid operator, threshold 0.5)."""
    import pyarrow as pa

    from operators.langid import LangId

    langs, _ = LangId(threshold=0.5).identify(pa.array(texts, pa.string()))
    return [lang == "en" for lang in langs.tolist()]


@functools.cache
def benchmark_pages() -> tuple[dict, ...]:
    """English pages of the article-extraction benchmark: key, url, gold article text, boilerplate lines."""
    truth = ground_truth()
    pages = []
    for p in real_pages():
        if p.origin != "scrapinghub-aeb":
            continue
        key = next((k for k, v in truth.items() if v.get("url") == p.url), None)
        article = (truth.get(key) or {}).get("articleBody") or ""
        if key is None or len(article.split()) < 50:
            continue
        html = _decode(p.body, p.charset)
        pages.append({"key": key, "url": p.url, "article": article, "boilerplate": boilerplate_lines(html, article)})
    keep = _english([" ".join(pg["article"].split()) for pg in pages])
    return tuple(pg for pg, en in zip(pages, keep) if en)


@functools.cache
def crawl_pages() -> tuple[dict, ...]:
    """English HTML pages of the real WARC samples: url, extracted main text, boilerplate lines."""
    import numpy as np

    from engine.documents import make_batch
    from operators.columns import HTML
    from operators.extract import Extract

    pages = [p for p in real_pages() if p.origin != "scrapinghub-aeb"]
    htmls = [_decode(p.body, p.charset) for p in pages]
    op = Extract()
    op.ensure_setup()
    res = op.process(make_batch({HTML: htmls, "url": [p.url for p in pages]}))
    keep = np.ones(len(pages), bool) if res.keep is None else res.keep
    texts = res.batch.column("text").to_pylist()
    rows = [(p.url, t, h) for p, t, h, k in zip(pages, texts, htmls, keep.tolist()) if k and t]
    english = _english([" ".join(t.split()) for _, t, _ in rows])
    return tuple({"url": u, "text": t, "boilerplate": boilerplate_lines(h, t)}
                 for (u, t, h), en in zip(rows, english) if en)


def training_sets() -> dict[str, list[dict]]:
    """{"positive": [...], "negative": [...]}: documents {id, text, source}, nothing held out among them."""
    pud, ewt = ud_english()
    train_pages = [p for p in benchmark_pages() if not is_heldout(p["url"])]
    positive = ([("wikitext-2", t) for t in wikitext_paragraphs()] + [("ud-en-pud", t) for t in pud]
                + [("aeb-article", p["article"]) for p in train_pages])
    negative = [("warc-main-text", p["text"]) for p in crawl_pages()]
    for origin, plist in (("warc-boilerplate", crawl_pages()), ("aeb-boilerplate", train_pages)):
        for p in plist:
            negative.extend((origin, t) for t in groups(p["boilerplate"], BOILERPLATE_LINES_PER_DOC))
    negative += [("ud-en-ewt", t) for t in ewt]
    return {side: [{"id": f"{side}-{i:05d}", "text": t, "source": src} for i, (src, t) in enumerate(docs)]
            for side, docs in (("positive", positive), ("negative", negative))}


def heldout_pages(seed: int = 0) -> list[dict]:
    """Held-out benchmark pages with boilerplate: article text, the same lines with words shuffled,
    and the boilerplate lines (one document each)."""
    rng = random.Random(seed)
    out = []
    for p in benchmark_pages():
        if is_heldout(p["url"]) and len(p["boilerplate"]) >= 5:
            out.append({"key": p["key"], "url": p["url"], "article": p["article"],
                        "shuffled": shuffle_words(p["article"], rng),
                        "boilerplate": "\n".join(p["boilerplate"])})
    return out


def write(out_dir: str | Path) -> dict[str, dict[str, int]]:
    """Write the training sets as JSONL.gz; returns the document count per side and origin."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = {}
    for side, docs in training_sets().items():
        with gzip.open(out_dir / f"{side}.jsonl.gz", "wt", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
                counts.setdefault(side, {}).setdefault(d["source"], 0)
                counts[side][d["source"]] += 1
    return counts


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m benchmarks.corpora.signal_corpus OUT_DIR")
    print(json.dumps(write(sys.argv[1]), indent=1))
