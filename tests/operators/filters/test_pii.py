"""pii: masking e-mails and IPs in real web sentences, with the usual false positives left alone."""
from __future__ import annotations

import pickle

import pytest

from engine.documents import make_batch
from engine.registry import get_operator
from operators.filters.pii import PII
from support import lingua_lines


def real_lines(shared_data, lang: str, needle: str) -> list[str]:
    return [ln for ln in lingua_lines(shared_data, lang) if needle in ln]


def run(texts, **params):
    op = pickle.loads(pickle.dumps(PII(**params)))
    op.ensure_setup()
    return op.process(make_batch({"text": texts}))


def test_registered():
    assert get_operator("pii") is PII
    with pytest.raises(Exception):
        PII(mask_emails=True)


def test_real_emails_and_ips(shared_data):
    lines = (real_lines(shared_data, "en", "sandra.robertson@ubc.ca")
             + real_lines(shared_data, "en", "65.95.82.91")
             + real_lines(shared_data, "de", "195.214.4.226")
             + real_lines(shared_data, "ca", "mitral 1.2.1.9")
             + real_lines(shared_data, "de", "ingo.zimmermann@wtal.de"))
    assert len(lines) == 5
    res = run(lines + [None, ""])
    out = res.batch.column("text").to_pylist()
    assert res.keep is None                                   # nothing dropped
    assert "sandra.robertson@ubc.ca" not in out[0] and "by e-mail at <EMAIL> If" in out[0]
    assert "Remote IP Address: <IP_ADDRESS> Very" in out[1]
    assert "Diese muß <IP_ADDRESS> lauten" in out[2]
    assert out[3] == lines[3]                                 # section number, not an address
    assert "Email: <EMAIL> Datum" in out[4]
    assert res.batch.column("pii_emails").to_pylist() == [1, 0, 0, 0, 1, 0, 0]
    assert res.batch.column("pii_ips").to_pylist() == [0, 1, 1, 0, 0, 0, 0]
    assert out[5] is None and out[6] == ""


@pytest.mark.parametrize("text,expected,emails,ips", [
    ("write to john.doe+news@example.co.uk.", "write to <EMAIL>.", 1, 0),
    ("user@localhost and @handle stay", "user@localhost and @handle stay", 0, 0),
    ("version 1.2.3.4.5 or 10.20.30.40.50", "version 1.2.3.4.5 or 10.20.30.40.50", 0, 0),
    ("zero-padded 01.02.03.04", "zero-padded 01.02.03.04", 0, 0),
    ("server 93.184.216.34:8080 down", "server <IP_ADDRESS>:8080 down", 0, 1),
    ("lan 192.168.1.20 and lo 127.0.0.1", "lan 192.168.1.20 and lo 127.0.0.1", 0, 0),
    ("v6 2a00:1450:4001:82b::200e ok", "v6 <IP_ADDRESS> ok", 0, 1),
    ("at 12:30:45 call std::vector a::b", "at 12:30:45 call std::vector a::b", 0, 0),
    ("bad 999.1.1.1 octet", "bad 999.1.1.1 octet", 0, 0),
])
def test_cases(text, expected, emails, ips):
    res = run([text])
    assert res.batch.column("text").to_pylist() == [expected]
    assert res.batch.column("pii_emails").to_pylist() == [emails]
    assert res.batch.column("pii_ips").to_pylist() == [ips]


def test_options():
    t = "lan 192.168.1.20, mail a.b@c-d.org"
    res = run([t], mask_private_ips=True, email_replacement="[email]", ip_replacement="[ip]")
    assert res.batch.column("text").to_pylist() == ["lan [ip], mail [email]"]
    res = run([t], emails=False, mask_private_ips=True)
    assert res.batch.column("text").to_pylist() == ["lan <IP_ADDRESS>, mail a.b@c-d.org"]


def test_batch_prefilter_masks_what_each_document_alone_would(shared_data):
    """The batch asks Arrow which documents and lines can hold a match and runs Python's patterns on
    those lines only: the same texts and counts as `mask` over every whole document."""
    texts = ["\n".join(lingua_lines(shared_data, lang)[i:i + 12]) for lang in ("en", "de", "ca", "ru", "zh")
             for i in range(0, 600, 12)]
    texts += ["a\n8.8.8.8\nb@c.de\r\nx 2606:4700:4700::1111\n", "\n\n1.1.1.1", "x@y.com\nz@w.org",
              "8.8.8.8.\n9.9.9.9", "::ffff:8.8.8.8 x", "12:30:45 a::b", "1.2.1.9", "user@localhost", None, ""]
    for params in ({}, {"mask_private_ips": True}, {"emails": False}, {"ips": False}):
        op = PII(**params)
        res = op.process(make_batch({"text": texts}))
        expect = [op.mask(t) if t else (t, 0, 0) for t in texts]
        assert res.batch.column("text").to_pylist() == [e[0] for e in expect]
        assert res.batch.column("pii_emails").to_pylist() == [e[1] for e in expect]
        assert res.batch.column("pii_ips").to_pylist() == [e[2] for e in expect]
        assert sum(e[1] + e[2] for e in expect) > 0
