"""exact_dedup: the content key, first-by-key wins whatever the partitions, copies counted, the index
it writes, and dedup against an earlier output's index (also built with another partition count).

The phases run as the engine runs them (map outputs through the engine's map writer, a real
GlobalContext); documents are real sentences from shared/data (lingua, UD)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from engine.documents import KEY, make_batch, set_column
from engine.io import listdir_files, read_json, read_parquet
from engine.reduce import GlobalContext
from engine.registry import get_operator
from operators.dedup.clusters import COPIES
from operators.dedup.exact_dedup import REASON, REASON_PREVIOUS, ExactDedup, content_hash
from operators.dedup.index import output_identity
from support import lingua_lines, read_apply, serial_map, write_map_output


def shard_batch(shard: int, ids: list[str], texts: list[str | None]) -> pa.RecordBatch:
    keys = (np.uint64(shard) << np.uint64(32)) + np.arange(len(ids), dtype=np.uint64)
    return set_column(make_batch({"id": ids, "text": texts}), KEY, pa.array(keys))


def run(shards: list[tuple[list[str], list[str | None]]], root, partitions: int, against: list[str] = ()):
    """map -> reduce -> apply; returns ({id: (kept, reason, kept_id, kept_in, copies)}, stats)."""
    op = ExactDedup(partitions=partitions)
    batches = [shard_batch(s, ids, texts) for s, (ids, texts) in enumerate(shards)]
    ctx = GlobalContext(f"{root}/global", len(batches), partitions, serial_map, [str(s) for s in range(len(batches))],
                        output_dir=str(root), against=list(against))
    for s, b in enumerate(batches):
        write_map_output(ctx, s, op.map(b))
    stats = op.reduce(ctx)
    out = {}
    for s, b in enumerate(batches):
        r = op.apply(b, read_apply(ctx, s))
        keep = np.ones(b.num_rows, bool) if r.keep is None else r.keep
        details = r.details or {}
        kid = details.get("kept_id", pa.nulls(b.num_rows, pa.string())).to_pylist()
        kin = details.get("kept_in", pa.nulls(b.num_rows, pa.string())).to_pylist()
        for j, i in enumerate(b.column("id").to_pylist()):
            out[i] = (bool(keep[j]), None if keep[j] else r.reasons[j], None if keep[j] else kid[j],
                      None if keep[j] else kin[j], r.batch.column(COPIES)[j].as_py())
    return out, stats


@pytest.fixture(scope="module")
def sentences(shared_data) -> list[str]:
    """Distinct documents of real sentences: German, French and Russian (lingua), three a document."""
    lines = lingua_lines(shared_data, "de")[:90] + lingua_lines(shared_data, "fr")[:90] + lingua_lines(shared_data, "ru")[:90]
    return [" ".join(lines[i:i + 3]) for i in range(0, len(lines), 3)]


def test_registered_and_key_normalisation(sentences):
    assert get_operator("exact_dedup") is ExactDedup
    t = sentences[0]
    variant = "  " + t.upper().replace(" ", "\n\n ").replace(",", " ;") + " !!"
    assert content_hash(variant) == content_hash(t)                    # case, punctuation, layout
    assert content_hash("Room 12, floor 3") == content_hash("room 99 floor 7")  # digits fold to 0
    assert content_hash(t) != content_hash(sentences[1])
    assert content_hash(t + " x") != content_hash(t)
    assert content_hash("") is None and content_hash(None) is None and content_hash("?!, --") is None
    h = content_hash(t)
    assert all(0 <= x < 2**64 for x in h)


def test_map_hashes_the_batch_as_content_hash_each_text(sentences):
    """map normalises the whole batch in one pass; its keys are `content_hash` of each text."""
    texts = [sentences[0], None, "", "?!, --", "  " + sentences[1].upper().replace(" ", "\n\n "), "Ça\u0301 ΟΔΟΣ"]
    texts += sentences[2:]
    batch = make_batch({"id": [f"d{i}" for i in range(len(texts))], "text": texts,
                        KEY: pa.array(np.arange(len(texts), dtype=np.uint64))})
    out = ExactDedup(partitions=4).map(batch)
    want = [(i, content_hash(t)) for i, t in enumerate(texts) if content_hash(t) is not None]
    assert out.column(KEY).to_pylist() == [i for i, _ in want]
    assert list(zip(out.column("h1").to_pylist(), out.column("h2").to_pylist())) == [h for _, h in want]


def test_first_by_key_wins_and_copies_are_counted(sentences, tmp_path):
    s = sentences
    shards = [
        (["a", "b", "c"], [s[0], s[1], s[0].lower()]),
        (["d", "e", "f", "g"], [s[1] + " .", "", s[2], s[0]]),
        (["h", "i"], [None, s[3]]),
    ]
    results = []
    for parts in (1, 4, 9):
        got, stats = run(shards, tmp_path / f"p{parts}", parts)
        results.append(got)
        assert stats["documents"] == 7 and stats["removed"] == 3 and stats["unique"] == 4
    assert results[0] == results[1] == results[2]
    got = results[0]
    assert got["a"] == (True, None, None, None, 2)                     # c and g are its copies
    assert got["c"] == (False, REASON, "a", None, 0)
    assert got["g"] == (False, REASON, "a", None, 0)
    assert got["b"] == (True, None, None, None, 1)
    assert got["d"] == (False, REASON, "b", None, 0)
    for i in ("e", "f", "h", "i"):                                     # empty, null and unique text stay
        assert got[i] == (True, None, None, None, 0)


def test_index_layout(sentences, tmp_path):
    shards = [([f"x{i}" for i in range(30)], sentences[:30]), (["y0", "y1"], [sentences[0], sentences[40]])]
    run(shards, tmp_path, 5)
    meta = read_json(str(tmp_path / "index" / "exact_dedup" / "meta.json"))
    assert meta["partitions"] == 5 and meta["operator"] == "exact_dedup" and meta["refers_to"] == []
    files = listdir_files(str(tmp_path / "index" / "exact_dedup" / "hashes"), ".parquet")
    rows = 0
    for f in files:
        t = read_parquet(f)
        q = int(f.rsplit("part-", 1)[1].split(".")[0])
        assert set((t.column("h1").to_numpy() % np.uint64(5)).tolist()) == {q}
        assert t.column("kept_in").null_count == t.num_rows             # every keeper is in this output
        rows += t.num_rows
        assert "y0" not in t.column("kept_id").to_pylist()              # the copy is not a keeper
    assert rows == meta["hashes"] == 31


@pytest.mark.parametrize("parts_b", [3, 7])
def test_against_an_earlier_output(sentences, tmp_path, parts_b):
    """A is indexed with 3 partitions; B (3 or 7 partitions: the second re-partitions A's index)
    loses its copies of A's documents, including copies of a document A itself removed as a copy
    (they point at the document A kept); B's own copies still go to B's first."""
    s = sentences
    a_out = tmp_path / "A"
    got_a, _ = run([(["a0", "a1", "a2"], [s[0], s[1], s[1].upper()])], a_out, 3)
    assert got_a["a2"][0] is False
    b_out = tmp_path / "B"
    got, stats = run([(["b0", "b1", "b2", "b3", "b4"], [s[1].upper() + "!", s[5], s[0], s[5] + " ...", s[1]])],
                     b_out, parts_b, against=[str(a_out)])
    a_id = output_identity(str(a_out))
    assert got["b0"] == (False, REASON_PREVIOUS, "a1", a_id, 0)
    assert got["b4"] == (False, REASON_PREVIOUS, "a1", a_id, 0)
    assert got["b2"] == (False, REASON_PREVIOUS, "a0", a_id, 0)
    assert got["b1"] == (True, None, None, None, 1)
    assert got["b3"] == (False, REASON, "b1", None, 0)
    assert stats["removed_previous"] == 3 and stats["removed"] == 4
    # B's index covers what B saw: its own keeper and the hashes A keeps, which name A
    rows = pa.concat_tables([read_parquet(f) for f in
                             listdir_files(str(b_out / "index" / "exact_dedup" / "hashes"), ".parquet")])
    by_id = dict(zip(rows.column("kept_id").to_pylist(), rows.column("kept_in").to_pylist()))
    assert by_id == {"b1": None, "a0": a_id, "a1": a_id}
    assert read_json(str(b_out / "index" / "exact_dedup" / "meta.json"))["refers_to"] == [a_id]
    # wins: a1 won two of B's documents, a0 one
    wins = pa.concat_tables([read_parquet(f) for f in
                             listdir_files(str(b_out / "index" / "exact_dedup" / "wins"), ".parquet")])
    assert sorted(zip(wins.column("kept_id").to_pylist(), wins.column("removed").to_pylist())) == [("a0", 1), ("a1", 2)]
    # a chain: C against B alone still finds A's documents through B's index rows
    got_c, _ = run([(["c0", "c1"], [s[0], s[5]])], tmp_path / "C", 4, against=[str(b_out)])
    assert got_c["c0"] == (False, REASON_PREVIOUS, "a0", a_id, 0)
    assert got_c["c1"] == (False, REASON_PREVIOUS, "b1", output_identity(str(b_out)), 0)


def test_refuses_an_output_without_its_index(tmp_path):
    (tmp_path / "other").mkdir()
    with pytest.raises(ValueError, match="has no index/exact_dedup"):
        ExactDedup().check_against(str(tmp_path / "other"))


def test_partitions_below_one_rejected():
    with pytest.raises(ValueError, match="partitions"):
        ExactDedup(partitions=0)
