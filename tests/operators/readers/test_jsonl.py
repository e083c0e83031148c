"""The JSONL reader: CCNet fields, bad lines, type drift, surrogates, truncated gzip."""
from __future__ import annotations

import gzip
import json
import re

import pyarrow as pa

from engine.documents import DROP_REASON
from operators.readers import JsonlReader, detect_format
from operators.readers.base import stable_id
from jobs.runjob import run_job
from operators.writers import read_documents, read_rejects
from support import documents, drop_sevens_job, read_shard


def test_ccnet_reference_jsonl(shared_data):
    path = shared_data / "ccnet-reference/cc_en_head-0091.jsonl.gz"
    reader, rows, batches = read_shard(path, batch_size=4)
    assert isinstance(reader, JsonlReader)
    assert len(rows) == 10 and reader.errors == [] and reader.stats["records"] == {"json": 10}
    first = json.loads(gzip.open(path).readline())
    assert rows[0]["id"] == first["id"] and rows[0]["text"] == first["text"]
    assert rows[0]["input_source"] == "common-crawl"  # the input's own "source" is kept, renamed
    assert json.loads(rows[0]["metadata"]) == first["metadata"]  # nested -> JSON string
    assert rows[0]["url"] == first["metadata"]["url"]
    assert rows[0]["source"] == "cc_en_head-0091.jsonl.gz:1"
    assert all(b.schema == batches[0].schema for b in batches)


def test_jsonl_raw_ccnet_fields_bad_line_and_type_drift(tmp_path, monkeypatch):
    import operators.readers.jsonl as jsonl_mod
    monkeypatch.setattr(jsonl_mod, "INFER_ROWS", 2)  # kinds from the first 2 records; the rest drift
    lines = [
        {"url": "http://a.org", "date_download": "2019-03-18T00:00:00Z", "digest": "sha1:AAA", "length": 10,
         "nlines": 2, "title": "A", "raw_content": "first doc", "language": "en", "language_score": 0.9,
         "perplexity": 100, "bucket": "head", "tags": ["x"]},
        {"url": "http://b.org", "digest": "sha1:BBB", "length": 11, "raw_content": "second doc", "perplexity": 12.5,
         "language_score": 1},
    ]
    text = [json.dumps(x) for x in lines] + ["{not json", "[1, 2]", ""]
    text += [json.dumps({"raw_content": "third", "length": "eleven", "perplexity": 3, "surprise": 1}),
             json.dumps({"raw_content": "fourth", "length": 2.0, "nlines": 2**70, "tags": "y"})]
    p = tmp_path / "ccnet.jsonl.gz"
    p.write_bytes(gzip.compress(("\n".join(text) + "\n").encode()))
    assert detect_format(str(p)) == "jsonl"
    reader, rows, batches = read_shard(p, batch_size=2)
    assert [(r["source"], r[DROP_REASON]) for r in rows if r[DROP_REASON]] == \
        [("ccnet.jsonl.gz:3", "invalid_json"), ("ccnet.jsonl.gz:4", "not_an_object")]
    assert reader.errors == []
    rows = documents(rows)
    assert [r["text"] for r in rows] == ["first doc", "second doc", "third", "fourth"]
    assert rows[0]["id"] == "sha1:AAA" and rows[1]["id"] == "sha1:BBB"
    assert re.fullmatch(r"[0-9a-f]{40}", rows[2]["id"])
    assert rows[0]["date"] == "2019-03-18T00:00:00Z" and rows[0]["date_download"] == "2019-03-18T00:00:00Z"
    assert "raw_content" not in batches[0].schema.names
    assert all(b.schema == batches[0].schema for b in batches)
    types = {f.name: f.type for f in batches[0].schema}
    assert types["length"] == pa.int64() and types["perplexity"] == pa.float64()
    assert types["tags"] == pa.string() and json.loads(rows[0]["tags"]) == ["x"]
    assert rows[2]["length"] is None and rows[3]["length"] == 2  # "eleven" cannot be an int
    assert rows[3]["tags"] == '"y"'  # a JSON column stays JSON
    assert reader.stats["coerced"]["length"] == 1 and reader.stats["coerced"]["surprise"] == 1
    assert rows[1]["perplexity"] == 12.5 and rows[2]["perplexity"] == 3.0


def test_jsonl_text_field_and_missing_text(tmp_path):
    p = tmp_path / "docs.jsonl"
    p.write_text("\n".join(json.dumps(x) for x in [
        {"id": 7, "body": "hello", "source": "s", "_key": 1, "html": "<p>x</p>"},
        {"id": "b", "other": 1},
    ]))
    reader, rows, _ = read_shard(p, text_field="body")
    assert rows[0]["id"] == "7" and rows[0]["text"] == "hello" and rows[0]["html"] == "<p>x</p>"
    assert rows[0]["input_source"] == "s" and rows[0]["input_key"] == 1
    assert rows[1][DROP_REASON] == "missing_text"


def test_jsonl_truncated_gzip(shared_data, tmp_path):
    data = (shared_data / "ccnet-reference/cc_en_head-0174.jsonl.gz").read_bytes()
    p = tmp_path / "t.jsonl.gz"
    p.write_bytes(data[: len(data) * 2 // 3])
    reader, rows, _ = read_shard(p)
    assert 1 <= len(rows) < 10
    assert len(reader.errors) == 1 and "truncated" in reader.errors[0]


def test_jsonl_lone_surrogate_escape_does_not_end_the_shard(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_bytes(b'{"id": "a", "text": "before"}\n'
                  b'{"id": "b", "text": "cut emoji \\ud83d here", "title": "\\udc80"}\n'
                  b'{"id": "c", "text": "pair \\ud83d\\ude00 ok"}\n')
    reader, rows, _ = read_shard(p)
    assert reader.errors == []
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert rows[1]["text"] == "cut emoji \ufffd here" and rows[1]["title"] == "\ufffd"
    assert rows[2]["text"] == "pair \U0001f600 ok"


def test_jsonl_columns_do_not_depend_on_batch_size(tmp_path):
    # The extra columns' types came from the first *batch*: with batch_size=1 a float after an int
    # was lost and a later field dropped, with batch_size=100 both were kept.
    p = tmp_path / "k.jsonl"
    p.write_text('{"id":"a","text":"x","score":1}\n{"id":"b","text":"y","score":2.5}\n'
                 '{"id":"c","text":"z","score":3,"extra":true}\n' +
                 "".join(f'{{"id":"n{i}","text":"t","score":{i}}}\n' for i in range(40)))
    outs = []
    for bs in (1, 2, 7, 100):
        reader, rows, batches = read_shard(p, batch_size=bs)
        assert all(b.num_rows <= bs for b in batches) and len(rows) == 43
        assert all(b.schema == batches[0].schema for b in batches)
        outs.append((rows, reader.stats))
    assert all(o == outs[0] for o in outs)
    rows = outs[0][0]
    assert [r["score"] for r in rows[:3]] == [1.0, 2.5, 3.0] and rows[2]["extra"] is True


def write_mixed_jsonl(shared_data, path) -> tuple[list[dict], list[tuple[str, str]]]:
    """Real documents with every kind of bad line between them: (the documents, expected
    (source, reason) of the reject rows)."""
    with gzip.open(shared_data / "ccnet-reference/cc_en_head-0091.jsonl.gz") as f:
        good = [json.loads(line) for line in f if len(line) < 20_000][:4]
    lines = [json.dumps(good[0]).encode(), b"[1]", b"null", b"42", b'"x"',
             json.dumps(good[1]).encode(),
             b'{"id": "latin1", "text": "caf\xe9"}',  # not UTF-8
             b'{"id": "cut", "text": "no end',  # not JSON
             b"", b"   ",  # blank lines are no records
             json.dumps(good[2]).encode(),
             b'{"id": "big", "text": "' + b"x" * 30_000 + b'"}',  # above max_bytes
             json.dumps(good[3]).encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    name = path.name
    rejects = [(f"{name}:2", "not_an_object"), (f"{name}:3", "not_an_object"), (f"{name}:4", "not_an_object"),
               (f"{name}:5", "not_an_object"), (f"{name}:7", "invalid_utf8"), (f"{name}:8", "invalid_json"),
               (f"{name}:12", "too_large")]
    for g, n in zip(good, (1, 6, 11, 13)):
        g["line"] = n
    return good, rejects


def test_every_bad_line_is_a_reject_row_with_its_line_number(shared_data, tmp_path):
    """Lines that are not documents used to vanish into a side counter; each is now a row the
    engine rejects as the reader's, named by shard and line number, so it counts as read."""
    p = tmp_path / "mixed.jsonl"
    good, expected = write_mixed_jsonl(shared_data, p)
    reader, rows, batches = read_shard(p, batch_size=3, max_bytes=20_000)
    assert reader.errors == []
    assert all(b.schema == batches[0].schema for b in batches)
    assert [(r["source"], r[DROP_REASON]) for r in rows if r[DROP_REASON]] == expected
    for r in rows:
        if r[DROP_REASON]:
            assert r["id"] == stable_id("mixed.jsonl", int(r["source"].rsplit(":", 1)[1]))
            assert r["text"] is None
    docs = documents(rows)
    assert [(d["id"], d["text"], d["source"]) for d in docs] == \
        [(g["id"], g["text"], f"mixed.jsonl:{g['line']}") for g in good]
    assert reader.stats["records"] == {"json": 11}  # every non-blank line is a record


def test_bad_lines_are_accounted_for_in_a_run(shared_data, tmp_path):
    p = tmp_path / "in" / "mixed.jsonl"
    p.parent.mkdir()
    good, expected = write_mixed_jsonl(shared_data, p)
    out = tmp_path / "out"
    stats = run_job(drop_sevens_job(input={"options": {"max_bytes": 20_000}}), inputs=[str(p)], out=str(out))
    t = stats["total"]
    assert t["accounting_ok"] and t["documents_read"] == len(good) + len(expected) == 11
    rej = read_rejects(str(out)).to_pylist()
    assert sorted((r["source"], r["reason"]) for r in rej if r["operator"] == "reader") == sorted(expected)
    assert sorted(read_documents(str(out)).column("id").to_pylist()) == \
        sorted(g["id"] for g in good if not g["id"].endswith("7"))
