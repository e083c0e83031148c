"""The benchmark harness (every benchmark module is listed under its operator's name, former names
still run, a real small run writes its JSON) and the corpus builders the benchmarks run on."""
from __future__ import annotations

import json
import numbers
import re
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
    assert {"e2e", "extract", "minhash", "minhash_dedup", "line_dedup"} <= set(found)
    assert "corpora" not in found and "harness" not in found
    for name, mod in found.items():
        assert isinstance(getattr(mod, "DESCRIPTION", None), str) and mod.DESCRIPTION, name
        assert isinstance(getattr(mod, "QUICK", None), bool), name
        assert callable(mod.run), name
    assert found["e2e"].QUICK is True


def _listed(output: str) -> list[str]:
    """Names in the first column of the body of `decant bench`'s table (its header row uses ┃)."""
    return [m.group(1) for m in re.finditer(r"^│ ([a-z_0-9]+) +│", output, re.MULTILINE)]


def test_cli_lists_benchmarks_by_operator_name():
    res = CliRunner().invoke(app, ["bench"], terminal_width=200)
    assert res.exit_code == 0, res.output
    listed = _listed(res.output)
    assert sorted(listed) == sorted(_modules())
    assert "extraction" not in listed and "dedup" not in listed  # former names run, but are not listed


def test_former_names_resolve_to_the_renamed_benchmarks():
    assert harness.resolve("extraction") == "extract"
    assert harness.resolve("dedup") == "minhash_dedup"
    assert harness.resolve("minhash") == "minhash"
    assert harness.resolve("minhash_dedup") == "minhash_dedup"


def test_unknown_benchmark_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="unknown benchmark 'nope'; available: .*e2e"):
        harness.run("nope", quick=True, json_path=str(tmp_path / "x.json"))
    assert not (tmp_path / "x.json").exists()


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


def test_warc_corpus_writes_readable_varied_cached_shards(tmp_path, monkeypatch, shared_data):
    from benchmarks.corpora.real_pages import real_pages
    from benchmarks.corpora.warc_corpus import warc_corpus
    from jobs.runjob import run_job
    from operators.writers import read_documents

    monkeypatch.setenv("DECANT_BENCH_CACHE", str(tmp_path / "cache"))
    pages = len(real_pages()) + 40  # every real page once, then 40 varied copies
    paths = warc_corpus(pages=pages, shards=3)
    assert len(paths) == 3 and all(p.endswith(".warc.gz") for p in paths)
    mtimes = [Path(p).stat().st_mtime_ns for p in paths]
    assert warc_corpus(pages=pages, shards=3) == paths  # cached: the same files, not rewritten
    assert [Path(p).stat().st_mtime_ns for p in paths] == mtimes
    run_job({"pipeline": []}, inputs=paths, out=str(tmp_path / "out"), workers=1)
    docs = read_documents(str(tmp_path / "out"), ["id", "url"])
    assert docs.num_rows == pages
    ids, urls = docs.column("id").to_pylist(), docs.column("url").to_pylist()
    assert len(set(ids)) == pages  # every copy has its own WARC-Record-ID
    base_urls = {p.url for p in real_pages()}
    copies = [u for u in urls if "decant_copy=" in u]
    assert len(copies) == 40 and len(set(copies)) == 40
    assert set(urls) - set(copies) == base_urls


def test_wet_corpus_and_written_wet_read_back(tmp_path, monkeypatch, shared_data):
    from benchmarks.corpora.documents import docs_from_text
    from benchmarks.corpora.wet_corpus import base_texts, wet_corpus, write_wet
    from jobs.runjob import run_job
    from operators.writers import read_documents

    monkeypatch.setenv("DECANT_BENCH_CACHE", str(tmp_path / "cache"))
    paths = wet_corpus(docs=300, shards=2)
    assert [Path(p).name for p in paths] == ["bench-00000.warc.wet.gz", "bench-00001.warc.wet.gz"]
    run_job({"pipeline": []}, inputs=paths, out=str(tmp_path / "out"), workers=1)
    docs = read_documents(str(tmp_path / "out"), ["id", "url", "text"])
    assert docs.num_rows == 300 and len(set(docs.column("id").to_pylist())) == 300
    base = {text for _, _, _, text in base_texts()}
    assert set(docs.column("text").to_pylist()) <= base  # fewer documents than the base: no copies yet

    texts = docs_from_text(50, 1500, languages=["en", "de"])
    assert len(set(texts)) == 50 and all(1200 < len(t.encode()) < 3000 for t in texts)
    wet = write_wet(tmp_path / "x.warc.wet.gz", texts)
    run_job({"pipeline": []}, inputs=[wet], out=str(tmp_path / "out-wet"), workers=1)
    assert sorted(read_documents(str(tmp_path / "out-wet"), ["text"]).column("text").to_pylist()) == sorted(texts)
