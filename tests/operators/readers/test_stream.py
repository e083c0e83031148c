"""The byte stream under the WARC reader: a single-member gzip streams in bounded memory."""
from __future__ import annotations

import gzip

import fsspec

from operators.readers import WarcReader
from operators.readers.stream import ByteStream
from operators.readers.warc import iter_records


def test_memory_bounded_on_single_member_gzip():
    """A file gzipped as one member (not per record) streams: the buffer never holds the file."""
    body = b"<html><body>" + b"x" * 20_000 + b"</body></html>"
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + body
    rec = (b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: http://e.org/\r\n"
           b"Content-Type: application/http\r\nContent-Length: %d\r\n\r\n" % len(http) + http + b"\r\n\r\n")
    raw = gzip.compress(rec * 1500)  # ~30 MB decoded, one member
    fs = fsspec.filesystem("memory")
    with fs.open("/one-member.warc.gz", "wb") as f:
        f.write(raw)
    with fs.open("/one-member.warc.gz", "rb") as f:
        s = ByteStream(f)
        peak = 0
        n = 0
        for rec_ in iter_records(s, lambda h: True, 10_000_000):
            n += 1
            peak = max(peak, len(s.buf))
        assert n == 1500
        assert peak < 4 << 20
    reader = WarcReader()
    sizes = [b.num_rows for b in reader.read("memory://one-member.warc.gz", 400)]
    assert sizes == [400, 400, 400, 300]
    fs.rm("/one-member.warc.gz")
