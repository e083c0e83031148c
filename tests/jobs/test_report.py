"""`decant report`: a real job on real sample data, the HTML page and its PNG plots, checked in a
headless Chromium (Debian package `chromium`) that every image loads and the page is not blank."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from benchmarks.corpus import docs_from_text, write_wet
from engine.operator import OPERATORS, _ensure_loaded
from jobs.report import write_report
from jobs.runjob import run_job

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _registered() -> set[str]:
    _ensure_loaded()
    return set(OPERATORS)


def _near_duplicates(texts: list[str], copies: int) -> list[str]:
    """Long-lined documents and copies with one word changed per line: line dedup keeps them (every
    line differs), MinHash sees Jaccard ~0.95 and clusters them."""
    out = []
    for t in texts:
        words = t.replace("\n", " ").split(" ")
        half = len(words) // 2
        lines = [words[:half], words[half:]]
        out.append("\n".join(" ".join(ln) for ln in lines))
        for k in range(copies):
            changed = []
            for ln in lines:
                ln = list(ln)
                ln[len(ln) // 2] = f"variant{k}"
                changed.append(" ".join(ln))
            out.append("\n".join(changed))
    return out


def _pipeline(ops: set[str]) -> list[dict]:
    steps = [{"extract": {}}, {"langid": {}}]
    for name in ("line_dedup", "quality"):
        if name in ops:
            steps.append({name: {}})
    models = Path(__file__).resolve().parents[1] / "models"
    if "perplexity" in ops and (models / "cutoffs.json").exists():
        steps.append({"perplexity": {}})
    if "minhash_dedup" in ops:
        steps.append({"minhash_dedup": {}})
    return steps


@pytest.fixture(scope="module")
def full_output(tmp_path_factory, shared_data):
    tmp = tmp_path_factory.mktemp("report")
    texts = docs_from_text(30, 2500, seed=11, languages=["en", "de", "fr", "es", "it"])
    dups = _near_duplicates(docs_from_text(4, 3000, seed=12, languages=["en"]), copies=2)
    wet = write_wet(tmp / "lingua.warc.wet.gz", texts + dups)
    inputs = [str(shared_data / "warc" / "cc-main-2020-34-sample.warc.gz"),
              str(shared_data / "warc" / "web-2024-sample-0000.warc.gz"),
              str(shared_data / "ccnet-reference" / "cc_en_head-0091.jsonl.gz"), wet]
    pipeline = _pipeline(_registered())
    out = tmp / "out"
    stats = run_job({"name": "report-test", "pipeline": pipeline}, inputs=inputs, out=str(out), workers=1)
    assert stats["total"]["accounting_ok"]
    return out, [next(iter(s)) for s in pipeline], stats


def _img_sources(page: Path) -> list[str]:
    return re.findall(r"<img[^>]*\bsrc='([^']+)'", page.read_text())


def _check_png(path: Path) -> None:
    assert path.is_file(), f"{path} referenced by the page does not exist"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
        assert w >= 300 and h >= 150
        colors = im.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colors is None or len(colors) > 5, f"{path} is (nearly) one colour"


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)


def test_report_of_full_job_renders_in_browser(full_output, tmp_path, capsys):
    out, steps, stats = full_output
    page = Path(write_report(str(out)))
    assert page == out / "report" / "index.html"
    printed = capsys.readouterr().out
    assert "Documents per language" in printed and "Throughput per operator" in printed

    srcs = _img_sources(page)
    for s in srcs:
        _check_png(page.parent / s)
    expected = {"languages.png", "throughput.png"}
    if stats["total"]["documents_dropped"]:
        expected.add("drops.png")
    if "perplexity" in steps:
        expected.add("perplexity.png")
    if "minhash_dedup" in steps:
        assert (out / "duplicates.parquet").exists()
        expected.add("duplicates.png")
    assert expected <= set(srcs), f"missing plots: {expected - set(srcs)}"
    html = page.read_text()
    # the page's tables agree with stats.json
    assert f"<td>documents read</td><td>{stats['total']['documents_read']:,}</td>" in html
    for op in stats["operators"]:
        assert f"<td>{op}</td>" in html

    if BROWSER is None:
        pytest.fail("headless browser not found: install the Debian package `chromium` (apt-get install chromium)")
    url = page.resolve().as_uri()
    dom = _chromium(["--virtual-time-budget=10000", "--dump-dom", url], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stdout[:2000]
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(0)))
    assert attrs.get("data-images-total") == str(len(srcs)), attrs
    assert attrs.get("data-images-ok") == "yes", f"images not loaded in the browser: {attrs}"

    shot = tmp_path / "shot.png"
    res = _chromium([f"--screenshot={shot}", "--window-size=1200,2000", url], tmp_path / "profile-shot")
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    with Image.open(shot) as im:
        rgb = im.convert("RGB")
        assert rgb.size == (1200, 2000)
        colors = rgb.getcolors(maxcolors=1 << 20)
        assert colors is not None and len(colors) > 50, "screenshot is blank"
        white = max(c for c, _ in colors)
        assert white < 0.97 * rgb.size[0] * rgb.size[1], "screenshot is almost entirely one colour"


def test_report_of_job_without_langid_or_dedup(tmp_path, shared_data):
    out = tmp_path / "out"
    stats = run_job({"pipeline": [{"extract": {"min_chars": 200}}], "output": {"format": "jsonl"}},
                    inputs=[str(shared_data / "warc" / "cc-main-2020-34-sample.warc.gz")], out=str(out), workers=1)
    html_path = tmp_path / "elsewhere" / "page.html"
    page = Path(write_report(str(out), str(html_path), quiet=True))
    assert page == html_path and page.exists()
    html = page.read_text()
    srcs = _img_sources(page)
    for s in srcs:
        _check_png(page.parent / s)
    assert "languages.png" not in srcs and "perplexity.png" not in srcs and "duplicates.png" not in srcs
    assert "throughput.png" in srcs
    assert list((out / "documents").rglob("*.jsonl.gz"))
    assert f"<td>documents kept</td><td>{stats['total']['documents_kept']:,}</td>" in html
    assert "a job without langid" in html
    assert "a job without the perplexity step" in html
    assert "a job without MinHash dedup" in html
    if stats["total"]["documents_dropped"]:
        assert "drops.png" in srcs

    # without stats.json the drops come from rejects/ and the page still renders
    os.remove(out / "stats.json")
    page2 = Path(write_report(str(out), quiet=True))
    html2 = page2.read_text()
    assert "no stats.json" in html2
    for s in _img_sources(page2):
        _check_png(page2.parent / s)
    if stats["total"]["documents_dropped"]:
        assert "counted from rejects/" in html2
        for op, s in stats["operators"].items():
            for reason, n in s["dropped"].items():
                assert f"<td>{op}</td><td>{reason}</td><td>{n:,}</td>" in html2


def test_report_of_empty_folder(tmp_path):
    page = Path(write_report(str(tmp_path), quiet=True))
    html = page.read_text()
    assert "no stats.json" in html and "no documents in this output" in html
    assert _img_sources(page) == []
    with pytest.raises(FileNotFoundError):
        write_report(str(tmp_path / "missing"), quiet=True)


def test_report_cli(full_output, tmp_path):
    from typer.testing import CliRunner

    from jobs.cli import app

    out, _, _ = full_output
    html_path = tmp_path / "cli" / "index.html"
    res = CliRunner().invoke(app, ["report", str(out), "--html", str(html_path)])
    assert res.exit_code == 0, res.output
    assert html_path.exists() and "report written to" in res.output
    assert json.loads((out / "stats.json").read_text())["total"]["accounting_ok"]
