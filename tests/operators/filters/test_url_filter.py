"""url_filter: domain and keyword block lists on the real URLs of the CCNet reference documents."""
from __future__ import annotations

import pickle

import pytest

from engine.documents import make_batch
from engine.registry import get_operator
from operators.filters.url_filter import URLFilter, host_of, parents
from support import ccnet_reference

LISTS = "tests/data/url_filter"


@pytest.fixture(scope="module")
def urls(shared_data):
    return [d["metadata"]["url"] for d in ccnet_reference(shared_data)]


def make(repo, **kw):
    kw = {k: [str(repo / LISTS / v) for v in vs] if k.endswith("_lists") else vs for k, vs in kw.items()}
    op = pickle.loads(pickle.dumps(URLFilter(**kw)))
    op.ensure_setup()
    return op


def test_registered_and_missing_file(repo):
    assert get_operator("url_filter") is URLFilter
    with pytest.raises(FileNotFoundError):
        URLFilter(domain_lists=[str(repo / LISTS / "nope.txt")])
    with pytest.raises(Exception):
        URLFilter(domains=["x"])


def test_helpers():
    assert host_of("http://User:pw@Sub.Example.COM.:8080/x") == "sub.example.com"
    assert host_of("example.org/path") == "example.org"
    assert host_of("http://[::1") is None
    assert parents("a.b.c") == ["a.b.c", "b.c", "c"]


def test_real_urls(repo, urls):
    op = make(repo, domain_lists=["domains.txt"], keyword_lists=["keywords.txt"],
              allow_lists=["allow.txt"], allow_domains=["Artseast.Blogspot.com"])
    res = op.process(make_batch({"url": urls + [None, ""]}))
    got = {u: (None if k else r) for u, k, r in zip(urls, res.keep, res.reasons)}
    blocked = {u: r for u, r in got.items() if r}
    assert blocked == {
        "http://100kinvesting.com/2016/11/28/first-teleconference-calls-invoice-factoring/": "blocked_keyword",
        "http://911blogger.com/news/2006-11-02/pentagon-video-doubletree-be-released-within-week": "blocked_domain",
        "http://akindleinhongkong.blogspot.com/2012/02/walking-tour-stanley.html": "blocked_domain",
        "http://archives2.getty.edu:8082/xtf/view?docId=ead/2002.M.13/2002.M.13.xml": "blocked_domain",
        "http://blog.captainthin.net/?tag=kjv-only": "blocked_keyword",
        "http://bookmarktoday.info/page/97/": "blocked_domain",
    }
    assert res.keep[-2:].tolist() == [True, True]
    # word boundaries: "capoeira" is inside the token "ajitucapoeira"
    assert got["http://ajitucapoeira.com/history.php"] is None
    # allowed blogspot blogs pass although *.blogspot.com is blocked
    assert got["http://artseast.blogspot.com/2019/10/gillian-smith.html"] is None
    assert got["http://cempaka-tourist.blogspot.com/2012/01/"] is None
    b = res.batch
    i = urls.index("http://akindleinhongkong.blogspot.com/2012/02/walking-tour-stanley.html")
    assert b.column("url_filter_domain").to_pylist()[i] == "blogspot.com"
    i = urls.index("http://100kinvesting.com/2016/11/28/first-teleconference-calls-invoice-factoring/")
    assert b.column("url_filter_keyword").to_pylist()[i] == "invoice factoring"


def test_keywords_idn_and_empty_lists(repo, tmp_path):
    (tmp_path / "d.txt").write_text("bücher.example\nxn--mnchen-3ya.de\n", encoding="utf-8")
    (tmp_path / "k.txt").write_text("sex\nfree casino\n", encoding="utf-8")
    op = pickle.loads(pickle.dumps(URLFilter(domain_lists=[str(tmp_path / "d.txt")],
                                             keyword_lists=[str(tmp_path / "k.txt")])))
    op.ensure_setup()
    urls = ["http://www.sussex.ac.uk/news", "http://shop.example/sex-toys", "http://a.example/Free_Casino",
            "http://a.example/free/casinos", "http://xn--bcher-kva.example/", "http://münchen.de/x",
            "not a url at all"]
    res = op.process(make_batch({"url": urls}))
    assert [None if k else r for k, r in zip(res.keep, res.reasons)] == [
        None, "blocked_keyword", "blocked_keyword", None, "blocked_domain", "blocked_domain", None]
    nothing = URLFilter()
    nothing.ensure_setup()
    assert nothing.process(make_batch({"url": urls})).keep.all()
