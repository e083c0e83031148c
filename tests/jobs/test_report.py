"""`decant report`: pages of outputs whose content the test knows, so every figure on the page is
checked against a number stated here.

- an output tree written through the engine's own writers (documents, rejects, duplicates.parquet)
  with known languages, buckets, perplexities and drop reasons; read from a local folder, a
  `file://` URL and a `memory://` URL;
- partition values the folder names cannot show (integer buckets, nulls, `a/b` beside `a_b`, a
  300-character value whose folder name is cut and hashed): the page shows the exact values;
- a real job (extract, langid, line dedup, quality, perplexity, MinHash) on a sample WARC and on
  documents of real Italian, Portuguese and Swedish text, rendered in a headless Chromium (Debian
  package `chromium`) that must load every image and paint a page that is not blank.
"""
from __future__ import annotations

import gzip
import io
import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import fsspec
import pyarrow as pa
import pytest
from PIL import Image

from engine import io as eio
from engine.documents import make_batch
from engine.output import DocumentWriter, RejectWriter
from jobs.report import write_report
from jobs.runjob import run_job
from support import REPO, drop_sevens_job

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
PARTITION_BY = ["language", "bucket"]


# ------------------------------------------------------------------ writing outputs the test knows

def write_documents(out: Path, rows: list[dict], fmt: str = "parquet", schema: pa.Schema | None = None) -> None:
    """Documents through the engine's document writer, partitioned by language and bucket."""
    writer = DocumentWriter(str(out), 0, fmt, 1 << 30, PARTITION_BY)
    cols = {k: [r.get(k) for r in rows] for k in rows[0]}
    writer.write(make_batch(cols, schema))
    assert writer.publish(str(out))


def write_rejects(out: Path, by_operator: dict[str, list[str]], fmt: str = "jsonl") -> None:
    writer = RejectWriter(str(out), 0, fmt, 1 << 30)
    for op, reasons in by_operator.items():
        ids = [f"{op}-{i}" for i in range(len(reasons))]
        writer.write(op, make_batch({"id": ids, "text": ["rejected text"] * len(ids)}), reasons)
    assert writer.publish(str(out))


#: (language, bucket, perplexity, how many documents)
KNOWN_DOCUMENTS = [
    ("en", "head", [100.0, 200.0, 300.0], 3),
    ("en", "middle", [400.0, 500.0], 2),
    ("en", "tail", [600.0, 700.0, 800.0], 3),
    ("de", "tail", [50.0, 60.0, 70.0, 80.0], 4),
    ("fr", "head", [42.0], 1),
    (None, None, [None, None], 2),
]
KNOWN_REJECTS = {
    "quality": ["gopher_min_words", "c4_curly_bracket", "gopher_min_words", "gopher_min_words"],
    "line_dedup": ["all_lines_duplicate", "all_lines_duplicate"],
    "reader": ["not_an_object"],
}


@pytest.fixture(scope="module")
def known_output(tmp_path_factory) -> Path:
    """15 documents, 7 rejects, two duplicate clusters (of 3 and 2), no stats.json and no job record."""
    out = tmp_path_factory.mktemp("known") / "out"
    rows = [{"id": f"{lang}-{bucket}-{i}", "text": "kept text", "language": lang, "bucket": bucket, "perplexity": p}
            for lang, bucket, ppl, n in KNOWN_DOCUMENTS for i, p in zip(range(n), ppl)]
    schema = pa.schema([("language", pa.string()), ("bucket", pa.string()), ("perplexity", pa.float64())])
    write_documents(out, rows, "parquet", schema)
    write_rejects(out, KNOWN_REJECTS, "jsonl")
    eio.write_parquet_atomic(pa.table({"id": ["a1", "a2", "b1"], "cluster_id": ["a", "a", "b"],
                                       "kept_id": ["a0", "a0", "b0"]}), str(out / "duplicates.parquet"))
    return out


def assert_in_order(page: str, rows: list[str]) -> None:
    """Every row is on the page, in this order."""
    missing = [r for r in rows if r not in page]
    assert not missing, missing
    positions = [page.index(r) for r in rows]
    assert positions == sorted(positions), rows


def known_page_facts(page: str) -> None:
    """What the page of `known_output` must say, wherever the output and the page live."""
    assert "<td>accounting</td><td>no stats.json</td>" in page
    assert "<td>documents kept</td><td>15</td>" in page
    # per language, most documents first; then head, middle, tail, none
    assert ("<th>language</th><th>documents</th><th>bucket head</th><th>bucket middle</th><th>bucket tail</th>"
            "<th>bucket none</th>") in page
    assert_in_order(page, ["<td>en</td><td>8</td><td>3</td><td>2</td><td>3</td><td>0</td>",
                           "<td>de</td><td>4</td><td>0</td><td>0</td><td>4</td><td>0</td>",
                           "<td>unknown</td><td>2</td><td>0</td><td>0</td><td>0</td><td>2</td>",
                           "<td>fr</td><td>1</td><td>1</td><td>0</td><td>0</td><td>0</td>"])
    # perplexity: no job record, so the cut-offs are the data's 30th and 60th percentiles
    assert "<td>en</td><td>8</td><td>450</td><td>310 / 520</td><td>data</td>" in page
    assert "<td>de</td><td>4</td><td>65</td><td>59 / 68</td><td>data</td>" in page
    assert "<td>fr</td><td>1</td><td>42</td><td>-</td><td>-</td>" in page  # one value: no percentiles
    assert "percentiles [30, 60] of these documents" in page
    # drops counted from rejects/, most first
    assert "counted from rejects/" in page
    assert_in_order(page, ["<td>quality</td><td>gopher_min_words</td><td>3</td>",
                           "<td>line_dedup</td><td>all_lines_duplicate</td><td>2</td>",
                           "<td>quality</td><td>c4_curly_bracket</td><td>1</td>",
                           "<td>reader</td><td>not_an_object</td><td>1</td>"])
    # duplicates: clusters {a0, a1, a2} and {b0, b1}
    for row in ("<td>clusters</td><td>2</td>", "<td>documents removed</td><td>3</td>",
                "<td>largest cluster</td><td>3</td>", "<td>median size</td><td>2.5</td>"):
        assert row in page
    assert "no stats.json with timings in this output" in page


KNOWN_PLOTS = ["languages.png", "perplexity.png", "drops.png", "duplicates.png"]


# ------------------------------------------------------------------ checking pages and images

def img_sources(page: str) -> list[str]:
    return re.findall(r"<img[^>]*\bsrc='([^']+)'", page)


def check_png(data: bytes, name: str) -> None:
    with Image.open(io.BytesIO(data)) as im:
        im.verify()
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG", name
        w, h = im.size
        assert w >= 300 and h >= 150, (name, im.size)
        colors = im.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colors is None or len(colors) > 5, f"{name} is (nearly) one colour"


def check_local_page(page: Path) -> str:
    html = page.read_text(encoding="utf-8")
    for src in img_sources(html):
        assert (page.parent / src).is_file(), f"{src} referenced by the page does not exist"
        check_png((page.parent / src).read_bytes(), src)
    return html


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)


def check_in_browser(page: Path, images: int, tmp_path: Path) -> None:
    """Every image loads in a headless Chromium, and a screenshot of the page is not blank."""
    if BROWSER is None:
        pytest.fail("headless browser not found: install the Debian package `chromium` (apt-get install chromium)")
    url = page.resolve().as_uri()
    dom = chromium(["--virtual-time-budget=10000", "--dump-dom", url], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stdout[:2000]
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(0)))
    assert attrs.get("data-images-total") == str(images), attrs
    assert attrs.get("data-images-ok") == "yes", f"images not loaded in the browser: {attrs}"

    shot = tmp_path / "shot.png"
    res = chromium([f"--screenshot={shot}", "--window-size=1200,2000", url], tmp_path / "profile-shot")
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    with Image.open(shot) as im:
        rgb = im.convert("RGB")
        assert rgb.size == (1200, 2000)
        colors = rgb.getcolors(maxcolors=1 << 20)
        assert colors is not None and len(colors) > 50, "screenshot is blank"
        white = max(c for c, _ in colors)
        assert white < 0.97 * rgb.size[0] * rgb.size[1], "screenshot is almost entirely one colour"


# ------------------------------------------------------------------ an output the test wrote

def test_report_of_known_output(known_output, tmp_path):
    page = Path(write_report(str(known_output), str(tmp_path / "page" / "index.html"), quiet=True))
    html = check_local_page(page)
    known_page_facts(html)
    assert img_sources(html) == KNOWN_PLOTS
    check_in_browser(page, len(KNOWN_PLOTS), tmp_path)


@pytest.mark.parametrize("protocol", ["memory", "file"])
def test_report_of_output_on_fsspec_url(known_output, protocol):
    """The output and the page on an fsspec URL: nothing is read or written through local paths."""
    if protocol == "memory":
        fs = fsspec.filesystem("memory")
        root = f"/report-{uuid.uuid4().hex[:8]}"
        fs.put(str(known_output), f"{root}/out", recursive=True)
        assert fs.isfile(f"{root}/out/duplicates.parquet")
        out = f"memory://{root}/out"
    else:
        fs = fsspec.filesystem("file")
        root = str(known_output.parent / f"url-{uuid.uuid4().hex[:8]}")
        shutil.copytree(known_output, f"{root}/out")
        out = f"file://{root}/out"
    try:
        page_url = write_report(out, quiet=True)
        assert page_url == f"{out}/report/index.html"
        with fsspec.open(page_url, "rb") as f:
            html = f.read().decode("utf-8")
        known_page_facts(html)
        assert img_sources(html) == KNOWN_PLOTS
        for src in KNOWN_PLOTS:
            with fsspec.open(f"{out}/report/{src}", "rb") as f:
                check_png(f.read(), src)
    finally:
        fs.rm(root, recursive=True)


# ------------------------------------------------------------------ values folder names cannot show

LONG_VALUE = "q" * 150 + "/" + "z" * 149  # 300 characters: its folder name is cut and hashed


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_report_of_non_string_and_unsafe_partition_values(tmp_path, fmt):
    """Integer and null buckets, `x/y` beside `x_y`, a 300-character language: counted by their exact
    values, which come from the columns in the files, not from the folder names."""
    docs = [("x/y", 0), ("x/y", 0), ("x/y", 1), ("x_y", 1), ("x_y", 1), (LONG_VALUE, 2),
            (None, None), (None, 2), (None, 0), (None, 1)]
    out = tmp_path / "out"
    rows = [{"id": f"d{i}", "text": "t", "language": lang, "bucket": b} for i, (lang, b) in enumerate(docs)]
    write_documents(out, rows, fmt, pa.schema([("language", pa.string()), ("bucket", pa.int64())]))
    folders = [p.name for p in (out / "documents").rglob("*") if p.is_dir()]
    assert not any(LONG_VALUE in name or "x/y" in name for name in folders), folders
    assert len({n for n in folders if n.startswith("language=")}) == 4  # x/y and x_y do not share a folder

    page = Path(write_report(str(out), quiet=True))
    html = check_local_page(page)
    assert ("<th>language</th><th>documents</th><th>bucket 0</th><th>bucket 1</th><th>bucket 2</th>"
            "<th>bucket none</th>") in html
    assert_in_order(html, ["<td>unknown</td><td>4</td><td>1</td><td>1</td><td>1</td><td>1</td>",
                           "<td>x/y</td><td>3</td><td>2</td><td>1</td><td>0</td><td>0</td>",
                           "<td>x_y</td><td>2</td><td>0</td><td>2</td><td>0</td><td>0</td>",
                           f"<td>{LONG_VALUE}</td><td>1</td><td>0</td><td>0</td><td>1</td><td>0</td>"])
    assert "<td>documents kept</td><td>10</td>" in html
    assert img_sources(html) == ["languages.png"]


def test_report_of_empty_folder(tmp_path):
    page = Path(write_report(str(tmp_path), quiet=True))
    html = page.read_text()
    assert "no stats.json" in html and "no documents in this output" in html
    assert img_sources(html) == []
    with pytest.raises(FileNotFoundError):
        write_report(str(tmp_path / "missing"), quiet=True)


# ------------------------------------------------------------------ real jobs

def test_report_of_job_without_langid_or_dedup(tmp_path):
    """A plugin operator that drops the ids ending in 7: 30 documents read, 3 dropped, no languages."""
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i:02d}", "text": f"document number {i}"}) + "\n" for i in range(30)))
    out = tmp_path / "out"
    stats = run_job(drop_sevens_job(output={"format": "jsonl"}), inputs=[str(src)], out=str(out))
    assert stats["total"]["documents_dropped"] == 3
    html_path = tmp_path / "elsewhere" / "page.html"
    page = Path(write_report(str(out), str(html_path), quiet=True))
    assert page == html_path
    html = check_local_page(page)
    assert img_sources(html) == ["drops.png", "throughput.png"]
    for row in ("<td>documents read</td><td>30</td>", "<td>documents kept</td><td>27</td>",
                "<td>documents dropped</td><td>3</td>", "<td>accounting</td><td>ok</td>",
                "<td>test_drop_sevens</td><td>ends_in_seven</td><td>3</td>"):
        assert row in html
    assert "counted from stats.json" in html
    assert "a job without langid" in html
    assert "a job without the perplexity step" in html
    assert "a job without MinHash dedup" in html

    # without stats.json the drops come from rejects/ and the page still renders
    (out / "stats.json").unlink()
    html2 = check_local_page(Path(write_report(str(out), quiet=True)))
    assert "<td>accounting</td><td>no stats.json</td>" in html2
    assert "counted from rejects/" in html2
    assert "<td>test_drop_sevens</td><td>ends_in_seven</td><td>3</td>" in html2
    assert "<td>documents kept</td><td>27</td>" in html2
    assert img_sources(html2) == ["drops.png"]


#: Documents of real text per language (none of these languages is in the sample WARC), each of
#: SENTENCES_PER_DOC sentences from the lingua corpus, one per line.
JSONL_LANGUAGES = {"it": 4, "pt": 4, "sv": 4}
SENTENCES_PER_DOC = 8
PIPELINE = [{"extract": {}}, {"langid": {}}, {"line_dedup": {}}, {"quality": {}}, {"perplexity": {}},
            {"minhash_dedup": {}}]


def lingua(shared_data: Path, lang: str) -> list[str]:
    lines = (shared_data / "text" / "lingua" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip()]


def near_duplicates(sentences: list[str], copies: int) -> list[str]:
    """A document of two long lines and copies with one word changed per line: line dedup keeps them
    (every line differs), MinHash sees a Jaccard similarity near 0.9 and clusters them."""
    half = len(sentences) // 2
    lines = [" ".join(sentences[:half]).split(" "), " ".join(sentences[half:]).split(" ")]
    out = ["\n".join(" ".join(ln) for ln in lines)]
    for k in range(copies):
        changed = []
        for ln in lines:
            ln = list(ln)
            ln[len(ln) // 2] = "variante" + "abcdefghij"[k]  # letters: line dedup reads digits as 0
            changed.append(" ".join(ln))
        out.append("\n".join(changed))
    return out


@pytest.fixture(scope="module")
def real_output(tmp_path_factory, shared_data):
    """it: 4 documents + a near-duplicate cluster of 3 (1 kept); pt: 4; sv: 4 + an exact copy (line
    dedup drops it); and the real WARC sample (zh, de, ru, en, es, nl)."""
    tmp = tmp_path_factory.mktemp("report-job")
    docs = []
    for lang, n in JSONL_LANGUAGES.items():
        s = lingua(shared_data, lang)
        docs += [(lang, "\n".join(s[k * SENTENCES_PER_DOC:(k + 1) * SENTENCES_PER_DOC])) for k in range(n)]
    docs += [("it", t) for t in near_duplicates(lingua(shared_data, "it")[200:216], copies=2)]
    first_sv = next(text for lang, text in docs if lang == "sv")
    docs.append(("sv", first_sv))
    src = tmp / "lingua.jsonl.gz"
    with gzip.open(src, "wt", encoding="utf-8") as f:
        for i, (lang, text) in enumerate(docs):
            f.write(json.dumps({"id": f"{lang}-{i:02d}", "text": text}, ensure_ascii=False) + "\n")
    out = tmp / "out"
    stats = run_job({"name": "report-test", "pipeline": PIPELINE, "output": {"partition_by": PARTITION_BY}},
                    inputs=[str(REPO / "samples" / "cc-main-2020-34-sample.warc.gz"), str(src)], out=str(out),
                    workers=1)
    assert stats["total"]["accounting_ok"]
    return out, stats


def test_report_of_real_job_renders_in_browser(real_output, tmp_path, capsys):
    out, stats = real_output
    page = Path(write_report(str(out)))
    assert page == out / "report" / "index.html"
    printed = capsys.readouterr().out
    assert "Documents per language" in printed and "Throughput per operator" in printed

    html = check_local_page(page)
    srcs = img_sources(html)
    assert srcs == ["languages.png", "perplexity.png", "drops.png", "duplicates.png", "throughput.png"]
    # the documents of known language: it 4 + 1 kept of its cluster, pt 4, sv 4 (the copy dropped);
    # every bucket column of a row adds up to its total
    cells = {}
    for lang, expected in (("it", 5), ("pt", 4), ("sv", 4)):
        m = re.search(rf"<tr><td>{lang}</td><td>(\d+)</td>((?:<td>\d+</td>)+)</tr>", html)
        assert m, f"no row for {lang}"
        assert int(m.group(1)) == expected
        cells[lang] = [int(x) for x in re.findall(r"<td>(\d+)</td>", m.group(2))]
        assert sum(cells[lang]) == expected
    # their cut-offs are the bundled models' (models/cutoffs.json, 30th and 60th percentiles)
    cutoffs = json.loads((REPO / "models" / "cutoffs.json").read_text())
    assert f"cut-offs from {REPO / 'models' / 'cutoffs.json'}" in html
    for lang, expected in (("it", 5), ("pt", 4), ("sv", 4)):
        p30, p60 = cutoffs[lang]["30"], cutoffs[lang]["60"]
        assert 100 <= p30 < p60 < 1000  # shown as whole numbers
        shown = f"{round(p30)} / {round(p60)}"
        assert re.search(rf"<td>{lang}</td><td>{expected}</td><td>[\d.]+</td><td>{shown}</td><td>model</td>", html), shown
    # the near-duplicate cluster: 3 documents, 2 removed; the exact copy: dropped by line dedup
    assert "<td>minhash_dedup</td><td>near_duplicate</td><td>2</td>" in html
    for row in ("<td>clusters</td><td>1</td>", "<td>documents removed</td><td>2</td>",
                "<td>largest cluster</td><td>3</td>"):
        assert row in html
    assert "<td>line_dedup</td><td>all_lines_duplicate</td>" in html
    # the summary agrees with stats.json, and every operator of the pipeline has a throughput row
    for key, label in (("documents_read", "documents read"), ("documents_kept", "documents kept"),
                       ("documents_dropped", "documents dropped")):
        assert f"<td>{label}</td><td>{stats['total'][key]:,}</td>" in html
    assert "<td>accounting</td><td>ok</td>" in html
    for op in ["reader"] + [next(iter(step)) for step in PIPELINE]:
        assert re.search(rf"<tr><td>{op}</td><td>[\d,]+</td>", html), op

    check_in_browser(page, len(srcs), tmp_path)


def test_report_cli(real_output, tmp_path):
    from typer.testing import CliRunner

    from jobs.cli import app

    out, stats = real_output
    html_path = tmp_path / "cli" / "index.html"
    res = CliRunner().invoke(app, ["report", str(out), "--html", str(html_path)])
    assert res.exit_code == 0, res.output
    assert f"report written to {html_path}" in res.output.replace("\n", "")
    assert f"<td>documents read</td><td>{stats['total']['documents_read']:,}</td>" in html_path.read_text()
