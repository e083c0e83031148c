"""Big files split into ranges: the same documents, rejects and counts whatever the split and
worker count, resume after a killed run, and a re-run with another split_bytes."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine import io as eio
from engine.errors import JobError
from engine.plan import WorkLayout
from jobs.runjob import run_job
from operators.writers import read_documents, read_rejects
from support import REPO, lingua_lines

DOCS, GROUP = 480, 40


def split_job(split_bytes: int | None, workers: int = 1, **over) -> dict:
    """Global steps at two barriers (exact dedup, line dedup) and the implicit unique-ids step, with
    repeats across row groups, so that every global decision crosses ranges."""
    job = {"plugins": ["decant_test_plugins"],
           "input": {"format": "parquet", "split_bytes": split_bytes},
           "pipeline": [{"exact_dedup": {}}, {"test_drop_sevens": {}}, {"line_dedup": {}}],
           "executor": {"workers": workers, "batch_size": 16}}
    job.update(over)
    return job


@pytest.fixture(scope="module")
def big_parquet(tmp_path_factory, shared_data) -> str:
    """One Parquet file of 12 row groups: repeated lines, repeated texts and repeated ids spread
    over its row groups, and rows without an id (ids from the row number)."""
    rng = random.Random(3)
    pool = lingua_lines(shared_data, "en")[:400] + lingua_lines(shared_data, "de")[:400]
    rows = []
    for i in range(DOCS):
        text = "\n".join(rng.sample(pool, 5))
        if i % 37 == 5:
            text = rows[rng.randrange(len(rows))]["text"]  # an exact repeat of an earlier document
        rid = f"doc-{i:04d}" if i % 53 else f"doc-{rng.randrange(i or 1):04d}"  # a repeated id
        rows.append({"id": None if i % 61 == 60 else rid, "text": text, "n": i})
    p = tmp_path_factory.mktemp("big") / "big.parquet"
    pq.write_table(pa.Table.from_pylist(rows), p, row_group_size=GROUP)
    return str(p)


def outcome(out: str) -> tuple[list, list, dict]:
    docs = read_documents(out).to_pylist()
    rej = read_rejects(out).to_pylist()
    stats = eio.read_json(f"{out}/stats.json")
    ops = {n: (o["docs_in"], o["docs_out"], o["dropped"]) for n, o in stats["operators"].items()}
    reader = {k: v for k, v in stats["reader"].items()}
    return (sorted(docs, key=lambda d: (d["id"], d["source"])),
            sorted(rej, key=lambda r: (r["operator"], r["id"] or "", r["source"])),
            {"total": stats["total"], "operators": ops, "reader": reader})


def units_of(out: str) -> list[dict]:
    return eio.read_json(WorkLayout(out).units_file)["units"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, big_parquet) -> tuple:
    out = str(tmp_path_factory.mktemp("ref") / "out")
    stats = run_job(split_job(0), inputs=[big_parquet], out=out)
    t = stats["total"]
    assert t["accounting_ok"] and t["documents_read"] == DOCS
    # the comparison means something only if every global step decides something
    assert {"line_dedup", "exact_dedup", "unique_ids", "test_drop_sevens"} <= set(t["dropped_by_operator"])
    assert units_of(out) == [{"file": 0}]
    return outcome(out)


@pytest.mark.parametrize("split_bytes,workers", [(1, 1), (1, 2), ("quarter", 2), (None, 2)])
def test_same_output_whatever_the_split(tmp_path, big_parquet, reference, split_bytes, workers):
    out = str(tmp_path / "out")
    if split_bytes == "quarter":  # ranges of several row groups
        split_bytes = os.path.getsize(big_parquet) // 4
    run_job(split_job(split_bytes, workers), inputs=[big_parquet], out=out)
    units = units_of(out)
    if split_bytes == 1:  # every row group a range of its own
        assert [u["part"]["first_ordinal"] for u in units] == list(range(0, DOCS, GROUP))
    elif split_bytes:
        assert 1 < len(units) < DOCS // GROUP
    else:
        assert units == [{"file": 0}]
    got = outcome(out)
    assert got[0] == reference[0]
    assert got[1] == reference[1]
    assert got[2] == reference[2]
    assert got[2]["reader"]["formats"] == {"parquet": 1} and got[2]["total"]["accounting_ok"]
    names = {p.name.rsplit("-", 1)[0] for p in Path(out, "documents").iterdir()}  # part-<unit>
    assert names == {f"part-{u['file']:06d}" + (f"-{u['index']:04d}" if "part" in u else "") for u in units}


def test_small_files_are_never_split_and_keep_their_names(tmp_path, shards):
    out = str(tmp_path / "out")
    stats = run_job(split_job(1, input={"format": "jsonl", "split_bytes": 10 ** 9}), inputs=shards, out=out)
    assert stats["total"]["documents_read"] == 120
    assert units_of(out) == [{"file": 0}, {"file": 1}, {"file": 2}]
    assert sorted(n for n in os.listdir(f"{out}/_work/manifest/stage-0") if n.startswith("shard-")) == \
        [f"shard-00000{i}.json" for i in range(3)]


_KILLABLE = """
import json, sys
from jobs.runjob import run_job
cfg = json.loads(sys.argv[1])
run_job(cfg["job"], inputs=cfg["inputs"], out=cfg["out"])
"""


def test_killed_run_resumes_with_its_own_units(tmp_path, big_parquet, reference):
    """A run killed after some ranges, then re-run with another split_bytes: the output keeps the
    units it began with (split_bytes is not part of the job's identity), redoes only the missing
    ranges, and ends identical to the unsplit run."""
    out = str(tmp_path / "out")
    slow = split_job(1, pipeline=[{"test_slow": {}}, *split_job(1)["pipeline"]])
    slow["executor"]["batch_size"] = 5
    cfg = json.dumps({"job": slow, "inputs": [big_parquet], "out": out})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, cfg], cwd=str(REPO), env=env)
    manifest = Path(out, "_work", "manifest", "stage-0")
    deadline = time.time() + 120
    while time.time() < deadline and len(list(manifest.glob("*.json"))) < 3 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.name for p in manifest.glob("*.json")}
    assert 3 <= len(finished) < DOCS // GROUP, "the kill came too late to test a resume"
    units = units_of(out)
    done: list[str] = []
    again = split_job(0, pipeline=slow["pipeline"], executor={"workers": 2, "batch_size": 5})
    run_job(again, inputs=[big_parquet], out=out, on_done=lambda r: done.append(r.unit))
    assert units_of(out) == units and len(units) == DOCS // GROUP
    redone = {u.split("/", 1)[1] + ".json" for u in done if u.startswith("stage-0/")}
    assert redone and not redone & finished
    docs, rejects, stats = outcome(out)
    assert (docs, rejects, stats["total"]) == (reference[0], reference[1], reference[2]["total"])
    stats["operators"].pop("test_slow")
    assert stats["operators"] == reference[2]["operators"]


def test_output_made_before_units_resumes_whole_files(tmp_path, big_parquet, reference):
    """An output without units.json (made before big files were split) resumes one unit per file,
    under the names it has, whatever split_bytes now says."""
    out = str(tmp_path / "out")
    run_job(split_job(0), inputs=[big_parquet], out=out, keep_work=True)
    os.remove(WorkLayout(out).units_file)
    (Path(out) / "_work" / "manifest" / "stage-1" / "shard-000000.json").unlink()
    done: list[str] = []
    run_job(split_job(1), inputs=[big_parquet], out=out, on_done=lambda r: done.append(r.unit))
    assert [u for u in done if "/shard-" in u] == ["stage-1/shard-000000"]
    assert outcome(out) == reference


def test_units_that_do_not_match_the_inputs_are_refused(tmp_path, big_parquet):
    out = str(tmp_path / "out")
    run_job(split_job(1), inputs=[big_parquet], out=out)
    Path(WorkLayout(out).units_file).write_text(json.dumps({"units": [{"file": 3}]}))
    with pytest.raises(JobError, match="does not match"):
        run_job(split_job(1), inputs=[big_parquet], out=out)


@pytest.fixture(scope="module")
def big_jsonl(tmp_path_factory, big_parquet) -> str:
    """The same documents as JSONL, with lines a reader rejects (not JSON, not an object) and blank
    lines among them, so that rows and lines before a range differ."""
    rows = pq.read_table(big_parquet).to_pylist()
    p = tmp_path_factory.mktemp("bigjsonl") / "big.jsonl"
    with open(p, "w", encoding="utf-8") as f:
        for i, r in enumerate(rows):
            f.write(json.dumps({k: v for k, v in r.items() if v is not None}, ensure_ascii=False) + "\n")
            if i % 45 == 3:
                f.write("{not json\n")
            if i % 70 == 9:
                f.write("\n[1, 2]\n")
    return str(p)


@pytest.mark.parametrize("parts,workers", [(5, 2), (40, 1)])
def test_jsonl_same_output_whatever_the_split(tmp_path, big_jsonl, parts, workers):
    job = {**split_job(0), "input": {"format": "jsonl", "split_bytes": 0}}
    ref = str(tmp_path / "ref")
    run_job(job, inputs=[big_jsonl], out=ref)
    out = str(tmp_path / "out")
    job = {**job, "input": {"format": "jsonl", "split_bytes": os.path.getsize(big_jsonl) // parts},
           "executor": {"workers": workers, "batch_size": 16}}
    run_job(job, inputs=[big_jsonl], out=out)
    assert len(units_of(out)) >= parts - 1
    got, want = outcome(out), outcome(ref)
    assert got == want
    assert want[2]["total"]["accounting_ok"] and want[2]["total"]["dropped_by_operator"]["reader"] > 0


def test_driver_scans_at_most_its_budget_largest_first(tmp_path, big_parquet, monkeypatch):
    """Past SCAN_BUDGET bytes of big files the rest are read whole (a job with that much input has
    files enough for its workers); the largest files are the ones split."""
    import shutil

    from engine import splitting
    from engine.job import parse_job
    small = tmp_path / "small.parquet"
    pq.write_table(pq.read_table(big_parquet).slice(0, 240), small, row_group_size=GROUP)
    big = tmp_path / "big.parquet"
    shutil.copy(big_parquet, big)
    spec = parse_job(split_job(1))
    monkeypatch.setattr(splitting, "SCAN_BUDGET", os.path.getsize(big) + 10)
    units = splitting.split_inputs(spec, [str(small), str(big)])
    assert [u.file for u in units if u.part is None] == [0]
    assert len([u for u in units if u.file == 1]) == DOCS // GROUP
    monkeypatch.setattr(splitting, "SCAN_BUDGET", os.path.getsize(big) + os.path.getsize(small))
    assert len(splitting.split_inputs(spec, [str(small), str(big)])) == (DOCS + 240) // GROUP


def test_a_file_is_cut_into_even_ranges(big_jsonl):
    """A file of 5.5 targets becomes 6 ranges of about the same size (not 5 full ones and a half),
    so that workers finish together."""
    from engine import splitting
    from engine.job import parse_job
    size = os.path.getsize(big_jsonl)
    target = int(size / 5.5)
    spec = parse_job({**split_job(0), "input": {"format": "jsonl", "split_bytes": target}})
    units = splitting.split_inputs(spec, [big_jsonl])
    starts = [u.part.start for u in units] + [size]
    lengths = [b - a for a, b in zip(starts, starts[1:])]
    assert len(units) == 6
    assert max(lengths) - min(lengths) < 0.1 * size / 6, lengths  # cut at the target: a last range of half
