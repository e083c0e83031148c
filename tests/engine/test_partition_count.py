"""`partitions: auto`: resolved once from the input bytes at plan time, the same count in the driver
and in the graph every worker rebuilds, recorded in stats.json, kept on resume, and validated in
job files (`auto` or an int from 1, anything else refused naming its place)."""
from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import pytest

from engine import partition_count
from engine.errors import JobError
from engine.graph import Graph
from engine.operator import GlobalOperator
from engine.partition_count import MAX_AUTO_PARTITIONS, auto_count
from engine.plan import make_plan
from engine.shuffle import INDEX_KEY
from jobs.runjob import PACKAGES, plan_job, run_job, validate_job
from operators.dedup.line_dedup import LineDedup
from operators.writers import read_documents
from support import wikitext_words

STEPS = ("line_dedup", "exact_dedup", "minhash_dedup")


def job(partitions="auto", **over) -> dict:
    spec = {"pipeline": [{"line_dedup": {"partitions": partitions}}, {"exact_dedup": {"partitions": partitions}},
                         {"minhash_dedup": {"partitions": partitions}}],
            "executor": {"workers": 2, "batch_size": 16}}
    spec.update(over)
    return spec


@pytest.fixture
def inputs(shared_data, tmp_path) -> list[str]:
    """Three JSONL shards of real text (about 100 KB)."""
    words = wikitext_words(shared_data)
    paths = []
    for s in range(3):
        p = tmp_path / f"in/shard-{s}.jsonl"
        p.parent.mkdir(exist_ok=True)
        with open(p, "w") as f:
            for i in range(s * 40, s * 40 + 40):
                f.write(json.dumps({"id": f"d{i}", "text": " ".join(words[i * 120:i * 120 + 100])}) + "\n")
        paths.append(str(p))
    return paths


def total_bytes(paths: list[str]) -> int:
    return sum(os.path.getsize(p) for p in paths)


def counts(graph: Graph) -> dict[str, int]:
    return {op.name: op.num_partitions() for op in graph.operators if op.name in STEPS}


def test_auto_count_is_one_partition_per_bytes_clamped():
    per = partition_count.BYTES_PER_PARTITION
    assert [auto_count(n) for n in (0, 1, per, per + 1, 5 * per)] == [1, 1, 1, 2, 5]
    assert auto_count(10**15) == MAX_AUTO_PARTITIONS


def test_plan_resolves_auto_from_the_input_size(inputs, monkeypatch):
    monkeypatch.setattr(partition_count, "BYTES_PER_PARTITION", total_bytes(inputs) // 3 - 1)
    plan, graph = plan_job(job(), inputs, "unused-out")
    assert counts(graph) == {name: 4 for name in STEPS}  # just over 3 partitions' worth
    assert [next(iter(s.values()))["partitions"] for s in plan.spec.pipeline] == [4, 4, 4]
    # a count given as an int is left alone; the fingerprint is the resolved spec's (auto -> 4 is the job with 4)
    explicit = make_plan(validate_job(job(4)).spec, inputs, "unused-out", PACKAGES)
    assert explicit.fingerprint == plan.fingerprint
    assert make_plan(validate_job(job(7)).spec, inputs, "unused-out", PACKAGES).spec.pipeline[0]["line_dedup"] == \
        {"partitions": 7}


def test_workers_graph_from_the_plan_has_the_drivers_counts(inputs, monkeypatch):
    """A worker (process or Ray actor) rebuilds the graph from the plan's spec: it must not resolve
    `auto` again (its BYTES_PER_PARTITION, its view of the inputs may differ)."""
    monkeypatch.setattr(partition_count, "BYTES_PER_PARTITION", total_bytes(inputs) // 5 - 1)
    plan, graph = plan_job(job(), inputs, "unused-out")
    monkeypatch.setattr(partition_count, "BYTES_PER_PARTITION", 1)
    rebuilt = Graph(plan.spec, plan.packages)
    assert counts(rebuilt) == counts(graph) == {name: 6 for name in STEPS}
    with pytest.raises(RuntimeError, match="not resolved"):
        LineDedup(partitions="auto").num_partitions()


def test_run_records_counts_and_map_output_stays_in_them(inputs, tmp_path, monkeypatch):
    monkeypatch.setattr(partition_count, "BYTES_PER_PARTITION", total_bytes(inputs) // 2 - 1)
    out = tmp_path / "out"
    stats = run_job(job(), inputs=inputs, out=str(out), keep_work=True)
    assert stats["total"]["accounting_ok"]
    assert {name: stats["global"][name]["partitions"] for name in STEPS} == {name: 3 for name in STEPS}
    # every worker shuffled into the plan's 3 partitions (a row outside them would be lost by the reduce)
    for name in STEPS:
        maps = list((out / "_work").glob(f"global-*-{name}/map/*.parquet"))
        assert maps
        held = set()
        for p in maps:
            held |= {int(k) for k in json.loads(pq.read_metadata(p).metadata[INDEX_KEY.encode()])}
        assert held == {0, 1, 2}, name
    marker = json.loads((out / "_work" / "job.json").read_text())
    assert [next(iter(s.values()))["partitions"] for s in marker["job"]["pipeline"]] == [3, 3, 3]


def test_resume_keeps_the_outputs_counts(inputs, tmp_path, monkeypatch):
    """A resume takes the counts the output was started with, even where the sizes now say otherwise:
    the reduce re-run after an interruption reads the map output written with them."""
    monkeypatch.setattr(partition_count, "BYTES_PER_PARTITION", total_bytes(inputs) // 3 - 1)
    out = tmp_path / "out"
    first = run_job(job(), inputs=inputs, out=str(out), keep_work=True)
    kept = sorted(read_documents(str(out)).column("id").to_pylist())
    # interrupted before the last barrier: the minhash reduce and the last stage are not done
    manifest = out / "_work" / "manifest"
    last = max(int(p.name.split("-")[1]) for p in manifest.glob("stage-*"))
    undone = [p for p in manifest.rglob("*.json") if "reduce-minhash_dedup" in p.name or p.parent.name == f"stage-{last}"]
    assert undone
    for p in undone:
        p.unlink()
    (out / "stats.json").unlink()
    monkeypatch.setattr(partition_count, "BYTES_PER_PARTITION", total_bytes(inputs) // 1)  # now: 1 partition
    again = run_job(job(), inputs=inputs, out=str(out))
    assert {n: again["global"][n]["partitions"] for n in STEPS} == {n: first["global"][n]["partitions"] for n in STEPS} \
        == {n: 4 for n in STEPS}
    assert sorted(read_documents(str(out)).column("id").to_pylist()) == kept
    assert again["total"] == first["total"]
    # a new output of the same job follows the sizes as they are now
    plan, _ = plan_job(job(), inputs, str(tmp_path / "new"))
    assert plan.spec.pipeline[0]["line_dedup"]["partitions"] == 1


@pytest.mark.parametrize("value", [0, -3, 65537, "many", "16", 2.5, True, None])
def test_job_file_rejects_other_partitions_naming_the_place(value):
    with pytest.raises(JobError) as e:
        validate_job(job(partitions=value))
    msg = str(e.value)
    assert "pipeline[0].line_dedup.partitions" in msg and "'auto' or an integer from 1" in msg


@pytest.mark.parametrize("value", ["auto", 1, 16, 65536])
def test_job_file_accepts_auto_and_counts(value):
    graph = validate_job(job(partitions=value))
    ops = [o for o in graph.operators if isinstance(o, GlobalOperator)]
    assert [o.params.partitions for o in ops] == [value] * 3
