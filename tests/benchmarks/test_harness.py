"""The benchmark harness: every benchmark module is listed, and a real (small) run writes its JSON."""
from __future__ import annotations

import json
import numbers
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks import harness
from jobs.cli import app

BENCH_DIR = Path(harness.__file__).resolve().parent
#: Quick benchmarks that take seconds, in order of preference for the real run below.
FAST = ("minhash", "line_dedup", "langid", "quality")


def _modules() -> set[str]:
    return {p.stem for p in BENCH_DIR.glob("*.py") if p.stem not in harness.SKIP and not p.stem.startswith("_")}


def test_listing_finds_every_benchmark_module():
    found = harness.available()
    assert set(found) == _modules()
    assert "e2e" in found and "corpus" not in found and "harness" not in found
    for name, mod in found.items():
        assert isinstance(getattr(mod, "DESCRIPTION", None), str) and mod.DESCRIPTION, name
        assert isinstance(getattr(mod, "QUICK", None), bool), name
        assert callable(mod.run), name
    assert found["e2e"].QUICK is True


def test_cli_lists_benchmarks():
    res = CliRunner().invoke(app, ["bench"], terminal_width=200)
    assert res.exit_code == 0, res.output
    for name in _modules():
        assert name in res.output


def test_unknown_benchmark_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="unknown benchmark 'nope'; available: .*e2e"):
        harness.run("nope", quick=True, json_path=str(tmp_path / "x.json"))


def test_small_real_run_writes_json_with_machine_and_figures(tmp_path, capsys):
    found = harness.available()
    name = next((n for n in FAST if n in found and found[n].QUICK), None)
    if name is None:
        pytest.fail(f"none of the fast benchmarks {FAST} is available: {sorted(found)}")
    path = tmp_path / "out" / f"{name}.json"
    result = harness.run(name, quick=True, json_path=str(path))
    assert path.exists()
    data = json.loads(path.read_text())
    assert data["benchmark"] == name and data["quick"] is True
    assert data["wall_seconds"] > 0
    m = data["machine"]
    assert m["cpus"] >= 1 and m["python"] and m["memory_gb"] > 0
    assert m["versions"].get("numpy") and m["versions"].get("pyarrow")
    assert "git_commit" in m and "load_average" in m
    figs = data["figures"]
    assert figs, "a benchmark reports headline figures"
    assert any(isinstance(v, numbers.Number) and v > 0 for v in figs.values()), figs
    assert data["figures"] == json.loads(json.dumps(result["figures"], default=str))
    printed = capsys.readouterr().out
    assert f"{name}: figures" in printed


def test_corpus_builders_write_readable_varied_shards(tmp_path, monkeypatch, shared_data):
    from benchmarks import corpus
    from jobs.runjob import run_job
    from operators.writers import read_documents

    monkeypatch.setenv("DECANT_BENCH_CACHE", str(tmp_path / "cache"))
    pages = len(corpus.real_pages()) + 40  # every real page once, then 40 varied copies
    paths = corpus.warc_corpus(pages=pages, shards=3)
    assert len(paths) == 3 and all(p.endswith(".warc.gz") for p in paths)
    assert corpus.warc_corpus(pages=pages, shards=3) == paths  # cached, same files
    stats = run_job({"pipeline": []}, inputs=paths, out=str(tmp_path / "out"), workers=1)
    assert stats["total"]["documents_read"] == pages and stats["total"]["shard_errors"] == 0
    docs = read_documents(str(tmp_path / "out"), ["id", "url"])
    ids, urls = docs.column("id").to_pylist(), docs.column("url").to_pylist()
    assert len(set(ids)) == pages  # every copy has its own WARC-Record-ID
    base_urls = {p.url for p in corpus.real_pages()}
    copies = [u for u in urls if "decant_copy=" in u]
    assert len(copies) == 40 and len(set(copies)) == 40
    assert set(urls) - set(copies) == base_urls

    texts = corpus.docs_from_text(50, 1500, languages=["en", "de"])
    assert len(set(texts)) == 50 and all(1200 < len(t.encode()) < 3000 for t in texts)
    wet = corpus.write_wet(tmp_path / "x.warc.wet.gz", texts)
    stats = run_job({"pipeline": []}, inputs=[wet], out=str(tmp_path / "out-wet"), workers=1)
    assert stats["total"]["documents_read"] == 50
