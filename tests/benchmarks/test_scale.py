"""`decant bench scale` at a tiny size, through the CLI: its options reach the benchmark, the report's
figures are sane and consistent with its two runs, and the corpus' injections are what it records."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from benchmarks import harness
from benchmarks.corpora.scale_corpus import KINDS, scale_corpus
from engine.partition_count import auto_count
from jobs.cli import app

BIG, SMALL = 1600, 800
pytestmark = pytest.mark.slow  # two real jobs and their reduce replays: a few minutes on a shared 2-core machine


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("scale") / "scale.json"
    res = CliRunner().invoke(app, ["bench", "scale", "--docs", str(BIG), "--small", str(SMALL), "--json", str(path)],
                             terminal_width=200)
    assert res.exit_code == 0, res.output
    return json.loads(path.read_text()), res.output


def test_options_reach_the_benchmark_and_both_runs_are_reported(report):
    data, _ = report
    assert data["inputs"]["docs"] == BIG and data["inputs"]["small"] == SMALL
    assert set(data["runs"]) == {str(BIG), str(SMALL)}
    for n, r in data["runs"].items():
        assert r["documents"] == int(n)
        assert r["accounting_ok"] is True
        assert r["kept"] + sum(r["dropped_by_operator"].values()) == r["documents"]
        assert r["corpus"]["documents"] == int(n)


def test_rates_and_memory_figures_are_computed_from_the_runs(report):
    data, _ = report
    f, big, small = data["figures"], data["runs"][str(BIG)], data["runs"][str(SMALL)]
    assert f["documents"] == BIG and f["small_documents"] == SMALL
    for r in (big, small):
        assert r["docs_per_s_per_core_cpu"] > 0 and r["docs_per_s_per_core_wall"] > 0
        assert r["peak_rss_mb_worker"] > 50 and r["peak_rss_mb_driver"] > 50
        assert len(r["peak_rss_mb_per_worker"]) == 2
        assert r["docs_per_s_per_core_wall"] == pytest.approx(r["documents"] / (r["wall_s"] * 2), rel=0.01)
    assert f["peak_rss_ratio_worker"] == pytest.approx(big["peak_rss_mb_worker"] / small["peak_rss_mb_worker"], abs=1e-3)
    assert f["peak_rss_ratio_driver"] == pytest.approx(big["peak_rss_mb_driver"] / small["peak_rss_mb_driver"], abs=1e-3)
    assert f["peak_rss_bounded_1_5x"] == (max(f["peak_rss_ratio_worker"], f["peak_rss_ratio_driver"]) <= 1.5)
    for run, n in ((big, BIG), (small, SMALL)):  # partitions: auto, from the run's input bytes
        paths, _ = scale_corpus(n)
        count = auto_count(sum(os.path.getsize(p) for p in paths))
        assert {run["partitions"][k] for k in ("line_dedup", "minhash_dedup")} == {count}
    assert f["partitions"] == big["partitions"] and f["small_partitions"] == small["partitions"]
    for name in ("line_dedup", "minhash_dedup"):
        red = big["reduce"][name]
        assert red["partitions"] == big["partitions"][name] and red["tasks"] >= red["partitions"]
        assert red["largest_task_above_base_mb"] >= 0 and red["tasks_cpu_s"] > 0
        assert big["map_bytes_per_doc"][next(k for k in big["map_bytes_per_doc"] if k.endswith(name))] > 0


def test_near_duplicate_counts_add_up_and_rates_are_fractions(report):
    data, _ = report
    for r in data["runs"].values():
        nd = r["near_duplicates"]
        assert 0 <= nd["precision"] <= 1 and 0 <= nd["recall"] <= 1
        assert nd["counts_add_up"] is True
        assert nd["tp"] + nd["fp"] == nd["removed"] == r["dropped_by_operator"].get("minhash_dedup", 0)
        assert nd["tp"] + nd["fn"] == nd["targets"] <= nd["injected_copies"]
        assert nd["tp"] + nd["fp"] + nd["fn"] + nd["tn"] == nd["reached_minhash"]
        assert nd["reached_minhash"] == r["operators"]["minhash_dedup"]["docs_in"]
        assert nd["fp"] == nd["fp_originals"] + nd["fp_copies_under_threshold"] + nd["fp_copies_source_dropped"]
        assert nd["precision"] == pytest.approx(nd["tp"] / max(1, nd["tp"] + nd["fp"]))
        fates = nd["fate_by_kind"]
        assert sum(sum(v.values()) for v in fates.values()) == r["documents"]
        assert sum(v.get("minhash_dedup", 0) for v in fates.values()) == nd["removed"]
        for kind in KINDS:
            assert sum(fates.get(kind, {}).values()) == r["corpus"][kind]
        # an exact copy has no line of its own (its repeated lines aside): never a minhash decision
        assert "minhash_dedup" not in fates.get("exact", {})
    f = data["figures"]
    assert f["near_dup_precision"] == round(data["runs"][str(BIG)]["near_duplicates"]["precision"], 4)


def test_extrapolation_is_printed_and_saved(report):
    data, output = report
    x = data["extrapolation"]
    assert x["documents"] == 3e9 and x["from_run_documents"] == BIG
    assert x["core_hours_cpu"] > 0 and set(x["core_hours_by_stage"]) >= {"langid", "line_dedup", "quality", "minhash_dedup"}
    assert set(x["core_hours_by_reduce"]) >= {"line_dedup", "minhash_dedup"}
    assert all(v > 0 for k, v in x["shuffle_tb_map_output"].items() if "minhash" in k)
    for r in x["largest_reducer"].values():
        assert r["partitions_for_4gb_tasks"] >= r["at_job_partitions"]["partitions"]
        assert r["largest_reducer_gb_at_those"] <= r["at_job_partitions"]["largest_reducer_gb"]
        assert math.log2(r["partitions_for_4gb_tasks"] / r["at_job_partitions"]["partitions"]).is_integer()
    assert data["extrapolation_text"] and data["extrapolation_text"][0].startswith("Extrapolation to 3e+09")
    assert "core-hours" in " ".join(output.split())


def test_corpus_records_every_injection():
    paths, folder = scale_corpus(SMALL)
    truth = pq.read_table(folder / "truth")
    docs = pa_concat([pq.read_table(p, columns=["id", "text"]) for p in paths])
    assert truth.column("id").to_pylist() == docs.column("id").to_pylist() == [f"d{i:09d}" for i in range(SMALL)]
    counts = json.loads((folder / "counts.json").read_text())
    kinds = truth.column("kind").to_pylist()
    assert {k: kinds.count(k) for k in KINDS} == {k: counts[k] for k in KINDS}
    src = truth.column("source_id")
    copies = np.flatnonzero(np.asarray(src.is_valid()))
    src_idx = [int(s[1:]) for s in src.filter(src.is_valid()).to_pylist()]
    assert len(copies) == sum(counts[k] for k in KINDS) > 0
    assert all(s < c for s, c in zip(src_idx, copies))  # the source comes first: minhash keeps it
    assert len(set(src_idx)) == len(src_idx)  # one copy per source
    assert all(kinds[s] == "original" for s in src_idx)
    jac = truth.column("jaccard").to_numpy(zero_copy_only=False)
    assert np.isnan(jac[[k == "original" for k in kinds]]).all()
    assert ((jac[copies] >= 0) & (jac[copies] <= 1)).all()
    exact = [c for c in copies if kinds[c] == "exact"]
    text = docs.column("text").to_pylist()
    nrep = truth.column("repeated_lines").to_pylist()
    for c in exact:  # the source's content lines (its repeated lines are at its top or bottom) are all in it
        s = int(truth.column("source_id")[c].as_py()[1:])
        lines, mine = text[s].split("\n"), set(text[c].split("\n"))
        assert set(lines[nrep[s]:]) <= mine or set(lines[:len(lines) - nrep[s]]) <= mine
    reps = pc.sum(truth.column("repeated_lines")).as_py()
    assert reps == counts["repeated_line_instances"] > 0


def test_a_benchmark_without_options_refuses_them(tmp_path):
    with pytest.raises(SystemExit, match="takes no options"):
        harness.run("minhash", args=["--docs", "5"], json_path=str(tmp_path / "x.json"))
    assert not (tmp_path / "x.json").exists()


def pa_concat(tables):
    import pyarrow as pa
    return pa.concat_tables(tables)
