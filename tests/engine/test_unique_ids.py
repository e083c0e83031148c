"""Ids in documents/ are unique: a repeat, within a shard or across shards, is rejected as
duplicate_id and the first in shard order and position wins, whatever the worker count."""
from __future__ import annotations

import json

import pytest

from jobs.runjob import run_job
from operators.writers import read_documents, read_rejects, sort_by_id


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def shards(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"id": "x", "text": "first x"}, {"id": "y", "text": "first y"},
                                           {"id": "x", "text": "second x, same shard"}, {"id": None, "text": "no id"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": "y", "text": "second y, next shard"}, {"id": "z", "text": "only z"},
                                           {"id": "x", "text": "third x"}])
    return [a, b]


@pytest.mark.parametrize("pipeline", [[], [{"line_dedup": {}}]], ids=["no-barrier", "with-line-dedup"])
def test_first_occurrence_wins_whatever_the_workers(shards, tmp_path, pipeline):
    outs = {}
    for workers in (1, 2):
        out = tmp_path / f"out-{workers}-{len(pipeline)}"
        stats = run_job({"pipeline": pipeline, "executor": {"workers": workers}}, inputs=shards, out=str(out))
        assert stats["total"]["accounting_ok"]
        assert stats["operators"]["unique_ids"]["dropped"] == {"duplicate_id": 3}
        docs = sort_by_id(read_documents(str(out)))
        outs[workers] = docs
        rows = {r["id"]: r["text"] for r in docs.to_pylist() if r["id"] in ("x", "y", "z")}
        assert rows == {"x": "first x", "y": "first y", "z": "only z"}
        ids = docs.column("id").to_pylist()
        assert len(ids) == len(set(ids)) == 4  # x, y, z and the stable id given to the row without one
        rej = read_rejects(str(out)).to_pylist()
        assert sorted((r["operator"], r["reason"], r["source"]) for r in rej) == [
            ("unique_ids", "duplicate_id", "a.jsonl:3"), ("unique_ids", "duplicate_id", "b.jsonl:1"),
            ("unique_ids", "duplicate_id", "b.jsonl:3")]
    assert outs[1].equals(outs[2])


def test_the_engine_step_name_is_reserved():
    from engine.errors import JobError
    from jobs.runjob import validate_job
    import engine.registry as registry
    from engine.operator import Operator

    class Clash(Operator):
        name = "unique_ids"
    registry.OPERATORS["unique_ids"] = Clash
    try:
        with pytest.raises(JobError, match="engine's own step"):
            validate_job({"pipeline": [{"unique_ids": {}}]})
    finally:
        del registry.OPERATORS["unique_ids"]
