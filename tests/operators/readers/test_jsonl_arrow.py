"""The pyarrow path of the JSONL reader reads every file exactly as the Python path does: the same
batches (ids, sources, columns and their types, reject rows), counts and errors, while taking most
lines of ordinary files."""
from __future__ import annotations

import gzip
import json
import random

import pytest

from operators.readers import JsonlReader


def read_both(path, batch_size=16, part=None, **params):
    """[(batches, stats, errors, rows read by pyarrow)] for the Python path, then the pyarrow path."""
    out = []
    for arrow in (False, True):
        reader = JsonlReader(**params)
        reader._arrow = arrow
        batches = list(reader.read(str(path), batch_size, part))
        out.append((batches, reader.stats, reader.errors, reader._arrow_rows))
    return out


def assert_same(path, batch_size=16, part=None, **params) -> int:
    """Both paths agree on this file; how many rows pyarrow read."""
    (pb, ps, pe, prows), (ab, as_, ae, arows) = read_both(path, batch_size, part, **params)
    assert prows == 0
    assert [b.num_rows for b in ab] == [b.num_rows for b in pb]
    for x, y in zip(pb, ab):
        assert x.schema == y.schema
        assert repr(x.to_pylist()) == repr(y.to_pylist())  # repr: NaN equals NaN, -0.0 is not 0.0
    assert as_ == ps and ae == pe
    return arows


def clean(i: int, rng: random.Random) -> dict:
    rec = {"id": f"d{i}", "text": "word " * rng.randint(1, 30) + "é€😀", "url": f"https://e.org/{i}",
           "score": rng.randint(0, 9), "ppl": rng.random() * 100, "ok": rng.random() < 0.5, "lang": "en"}
    if rng.random() < 0.3:
        del rec["id"]
    return rec


#: Lines the pyarrow path must hand back to Python, or read exactly as Python does.
TRICKY = [
    b'{"id": "n1", "text": "t", "ppl": NaN}', b'{"id": "n2", "text": "t", "ppl": -NaN}',
    b'{"id": "n3", "text": "t", "ppl": Infinity}', b'{"id": "n4", "text": "t", "ppl": -Inf}',
    b'{"id": "n5", "text": "t", "ppl": 1e400}', b'{"id": "n6", "text": "t", "ppl": 3}',
    b'{"id": "n7", "text": "t", "score": 2.0}', b'{"id": "n8", "text": "t", "score": 2.5}',
    b'{"id": "n9", "text": "t", "score": true}', b'{"id": "n10", "text": "t", "score": "7"}',
    b'{"id": "n11", "text": "t", "score": 123456789012345678901234}', b'{"id": "n12", "text": "t", "ok": 1}',
    b'{"id": "n13", "text": "t", "lang": 5}', b'{"id": "n14", "text": "t", "lang": {"a": [1, 2.5, null]}}',
    b'{"id": "h1", "text": "t", "html": "<p>x</p>"}', b'{"id": "h2", "text": "t", "html": null}',
    b'{"id": "h3", "text": null, "html": "<b>y</b>"}', b'{"id": "h4", "html": 5, "text": "t"}',
    b'{"id": "x1", "text": null}', b'{"id": "x2", "raw_content": "ccnet text"}',
    b'{"id": "x3", "text": "t", "raw_content": "both"}', b'{"id": "x4", "text": 12}',
    b'{"id": "d1", "text": "t", "text": "twice"}', b'{"id": "d2", "text": "a"} {"id": "d3", "text": "b"}',
    b'{"id": "u1", "text": "caf\xe9"}', b'{"id": "u2", "text": "cesu \xed\xa0\xbd\xed\xb8\x80"}',
    b'{"id": "u3", "text": "lone \\ud83d"}', b'{"id": "u4", "text": "pair \\ud83d\\ude00 \\u00e9"}',
    b'{"id": "e1", "te\\u0078t": "escaped key"}', b'{"id": "e2", "\\u0074ext": null, "raw_content": "r"}',
    b'{"id": "f1", "text": "t", "new_field": 1}', b'{"id": "f2", "text": "t", "source": "s", "_source": "z"}',
    b'{"id": 42, "text": "int id"}', b'{"id": null, "text": "null id"}', b'{"text": "t", "digest": "sha1:X"}',
    b'{"id": "w1", "text": "t"}  ', b'{}', b'{"id": "c1", "text": "crlf"}\r', b'  {"id": "s1", "text": "t"}',
    b'{"id": "dd1", "text": "t", "date": null}', b'{"id": "dd2", "text": "t", "date": "2020-01-02"}',
    b'{"id": "dd3", "text": "t", "date": 2020}', b'{"id": "url1", "text": "t", "url": ["a"]}',
    b'{"id": "z1", "text": "nul \\u0000 ctrl \\t \\" \\\\ \\/ done"}', b'{"id": "z2", "text": "raw\ttab"}',
    b'{"id": "z3", "text": "t", "ppl": -0.0, "score": -0}',
    b'{"id": "z4", "text": "t", "ppl": 1.7976931348623157e308}',
    b'{"id": "z5", "text": "t", "ppl": 5e-324, "score": 9223372036854775807}',
    b'{"id": "z6", "text": "t", "score": -9223372036854775809}', b'{"id": "z7", "text": "t"}}',
    b'{"id": "z8", "text": "' + b"long " * 200 + b'"}',
    b'{"id": "z9", "text": "t", "deep": ' + b"[" * 3000 + b"]" * 3000 + b"}",
    b"", b"   ", b"[1]", b"{broken",
    b'{"id": "z10", "text": "t", "ok": null, "score": null, "ppl": null, "lang": null}',
]


def mixed_file(path, seed: int, n: int = 600, gz: bool = False) -> None:
    rng = random.Random(seed)
    lines = [json.dumps(clean(i, rng), ensure_ascii=rng.random() < 0.5).encode() for i in range(n)]
    for k in range(n // 20):
        lines.insert(rng.randrange(40, len(lines)), rng.choice(TRICKY))
    data = b"\n".join(lines) + (b"\n" if seed % 2 else b"")
    path.write_bytes(gzip.compress(data) if gz else data)


@pytest.fixture
def small_head(monkeypatch):
    import operators.readers.jsonl as jsonl_mod
    monkeypatch.setattr(jsonl_mod, "INFER_ROWS", 30)  # the kinds are fixed early: pyarrow gets most lines
    monkeypatch.setattr(jsonl_mod, "BLOCK_BYTES", 4096)  # many blocks, lines cut at block ends


@pytest.mark.parametrize("seed", range(6))
def test_mixed_files_read_the_same_both_ways(tmp_path, small_head, seed):
    p = tmp_path / f"mixed{seed}.jsonl"
    mixed_file(p, seed)
    arrow_rows = assert_same(p, batch_size=(1, 7, 64, 1000)[seed % 4], max_bytes=800)
    assert arrow_rows > 300


def test_gzip_and_truncated_gzip_read_the_same_both_ways(tmp_path, small_head):
    p = tmp_path / "mixed.jsonl.gz"
    mixed_file(p, 3, gz=True)
    assert assert_same(p) > 300
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(p.read_bytes()[: len(p.read_bytes()) * 2 // 3])
    assert assert_same(cut) > 100
    reader = JsonlReader()
    list(reader.read(str(cut), 16))
    assert len(reader.errors) == 1 and "truncated" in reader.errors[0]

def test_ccnet_and_dolma_shapes_read_the_same_both_ways(tmp_path, small_head, shared_data):
    rng = random.Random(5)
    cc = []
    for i in range(300):
        rec = {"url": f"http://a.org/{i}", "date_download": "2019-03-18T00:00:00Z", "digest": f"sha1:{i:08d}",
               "length": rng.randint(10, 900), "nlines": rng.randint(1, 9), "source_domain": "a.org",
               "title": f"T{i}", "raw_content": "line\n" * rng.randint(1, 9), "language": "en",
               "language_score": rng.choice([0.9, 1, 0.55]), "perplexity": rng.choice([100, 12.5, 331.2]),
               "bucket": "head"}
        if i % 50 == 7:
            rec["date"] = None
        if i % 60 == 11:
            del rec["digest"]
        cc.append(json.dumps(rec).encode())
    p = tmp_path / "ccnet.jsonl"
    p.write_bytes(b"\n".join(cc) + b"\n")
    assert assert_same(p) > 200
    assert assert_same(p, text_field="raw_content") > 200
    dolma = [json.dumps({"id": str(i), "text": "x", "source": "cc", "added": "2023", "metadata": {"url": f"u{i}"}})
             for i in range(200)]
    d = tmp_path / "dolma.jsonl"
    d.write_text("\n".join(dolma) + "\n")
    assert_same(d)  # nested metadata: the Python path reads it (same output)
    c4 = [{"text": f"c4 doc {i}", "timestamp": "2019-04-25T12:57:54Z", "url": f"https://c4.org/{i}"}
          for i in range(200)]
    fineweb = [{"text": f"fw {i}", "id": f"<urn:uuid:{i}>", "dump": "CC-MAIN-2024-10", "url": f"https://f.org/{i}",
                "date": "2024-02-21T07:08:55Z", "file_path": "s3://x", "language": "en",
                "language_score": 0.9 + i / 10_000, "token_count": 100 + i} for i in range(200)]
    for name, recs in (("c4.jsonl", c4), ("fineweb.jsonl", fineweb)):
        f = tmp_path / name
        f.write_text("".join(json.dumps(r) + "\n" for r in recs))
        assert assert_same(f) > 150
    assert_same(shared_data / "ccnet-reference/cc_en_head-0091.jsonl.gz")


def test_numeric_ids_read_the_same_both_ways(tmp_path, small_head):
    lines = [json.dumps({"id": i * 7 - 100, "text": f"t{i}"}) for i in range(400)]
    lines[200:200] = ['{"id": "s1", "text": "a string id"}', '{"id": 123456789012345678901, "text": "big"}',
                      '{"id": true, "text": "bool id"}', '{"id": 1.5, "text": "float id"}',
                      '{"id": null, "text": "n"}', '{"text": "no id"}']
    p = tmp_path / "numeric.jsonl"
    p.write_text("\n".join(lines) + "\n")
    assert assert_same(p) > 300
    rows = [r for b in JsonlReader().read(str(p), 64) for r in b.to_pylist()]
    assert rows[0]["id"] == "-100" and rows[200]["id"] == "s1" and rows[201]["id"] == "123456789012345678901"
    assert rows[202]["id"] == "true" and rows[203]["id"] == "1.5"


def test_empty_lines_between_documents_stay_on_the_pyarrow_path(tmp_path, small_head):
    p = tmp_path / "spaced.jsonl"
    p.write_bytes(b"".join(json.dumps({"id": f"d{i}", "text": f"t{i}"}).encode() + (b"\n\n", b"\r\n\r\n", b"\n")[i % 3]
                           for i in range(600)))
    assert assert_same(p) > 500
    rows = [r for b in JsonlReader().read(str(p), 64) for r in b.to_pylist()]
    assert [r["source"] for r in rows[:4]] == ["spaced.jsonl:1", "spaced.jsonl:3", "spaced.jsonl:5", "spaced.jsonl:6"]
