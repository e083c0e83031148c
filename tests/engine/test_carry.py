"""The carry across a barrier (Arrow IPC) hands the next stage exactly the batches the Parquet
carry did: same rows, same types, same batch boundaries; a Parquet stage output is still read."""
from __future__ import annotations

import pyarrow as pa
import pytest

from engine import io as eio
from engine.carry import LOCAL, iter_carry, regroup
from engine.output import FolderWriter

BATCH = 16


def written_batches() -> list[pa.RecordBatch]:
    """Batches as a stage leaves them: ragged sizes after drops, a column null-typed at first."""
    out = []
    start = 0
    for i, n in enumerate([16, 3, 0, 40, 16, 1, 9]):
        ids = [f"doc-{start + k}" for k in range(n)]
        tag = pa.nulls(n) if i < 2 else pa.array([f"t{start + k}" if k % 3 else None for k in range(n)])
        out.append(pa.record_batch({"id": pa.array(ids, pa.string()), "tag": tag,
                                    "_key": pa.array(range(start, start + n), pa.uint64())}))
        start += n
    return out


def carried(tmp_path, fmt: str) -> list[pa.RecordBatch]:
    w = FolderWriter(str(tmp_path / fmt), 0, fmt, 1 << 30)
    for b in written_batches():
        w.write_to("carry", b)
    files = w.publish(str(tmp_path / fmt))
    assert files
    return list(iter_carry(str(tmp_path / fmt / "carry"), BATCH))


def test_arrow_carry_gives_the_batches_the_parquet_carry_gave(tmp_path):
    import operators.writers  # noqa: F401 - registers the parquet writer (the carry before)
    arrow, parquet = carried(tmp_path, LOCAL), carried(tmp_path, "parquet")
    assert [b.num_rows for b in arrow] == [b.num_rows for b in parquet]
    assert len(arrow) > 2  # a schema change (null-typed tag, then strings) started a new part
    for a, p in zip(arrow, parquet):
        assert a.schema.equals(p.schema, check_metadata=True)
        assert a.equals(p)


@pytest.mark.parametrize("sizes", [[5, 5, 5, 5], [100], [1] * 37, [16, 16], [15, 1, 17]])
def test_regroup_gives_full_batches_in_order(sizes):
    batches = [pa.record_batch({"x": list(range(sum(sizes[:i]), sum(sizes[:i + 1])))}) for i in range(len(sizes))]
    out = list(regroup(batches, BATCH))
    assert all(b.num_rows == BATCH for b in out[:-1]) and 0 < out[-1].num_rows <= BATCH
    assert [v for b in out for v in b.column("x").to_pylist()] == list(range(sum(sizes)))


def test_a_parquet_stage_output_is_still_read(tmp_path):
    # a job resumed across the change: its finished units carried Parquet
    t = pa.Table.from_batches(written_batches()[3:5])
    eio.write_parquet_atomic(t, str(tmp_path / "carry" / "part-000000-0000.parquet"))
    got = pa.Table.from_batches(list(iter_carry(str(tmp_path / "carry"), BATCH)))
    assert got.equals(t)


def test_pages_are_not_carried_past_the_last_step_that_reads_them(tmp_path, repo):
    # a WARC job's stage 0 carried every page's html to the later stages, which never read it
    import pyarrow.ipc as ipc

    from jobs.runjob import run_job, validate_job
    from operators.writers import read_documents
    src = [str(repo / "samples" / "web-2024-sample-0000.warc.gz")]
    job = {"pipeline": [{"extract": {}}, {"line_dedup": {}}, {"test_drop_sevens": {}}],
           "plugins": ["decant_test_plugins"]}
    stats = run_job(job, inputs=src, out=str(tmp_path / "o"), workers=1, keep_work=True)
    carried = [f for f in eio.listdir_files(str(tmp_path / "o" / "_work" / "stage-0")) if f.endswith(".arrow")]
    assert carried and stats["total"]["accounting_ok"]
    for f in carried:
        names = ipc.open_file(f).schema.names
        assert "text" in names and "html" not in names
    assert read_documents(str(tmp_path / "o")).num_rows == stats["total"]["documents_kept"] > 0
    # a step after the barrier that reads html keeps it in the carry
    late = validate_job({"pipeline": [{"line_dedup": {}}, {"extract": {}}]})
    assert late.carry_drops(0) == []
    assert validate_job(job).carry_drops(0) == ["html"]
