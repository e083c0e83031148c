"""Memory is bounded by the batch, not by the shard: a shard ten times larger keeps the same peak RSS.

Each run is a fresh Python process running the job in-process with the local executor and one
worker, so the peak RSS (VmHWM of /proc/self/status, the high-water mark of the process's own memory;
not ru_maxrss, which Linux inherits from the parent across fork/exec) is that of the process doing the
work and nothing else the test session did. Linux only (/proc). Both shards hold real sentences (lingua, WikiText) in documents of a few KB, as a WET
file; the large one is 10x the small one (documents and bytes). The pipeline is the per-document
part of the CCNet-style job that every output needs (extract, which passes WET text through, and
langid), so the run is fast and what is measured is the engine's path: reader -> batches -> operators
-> routing -> writer. Global steps are left out on purpose: their reduce legitimately holds
per-corpus state.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import pytest

from support import REPO

SMALL_DOCS = 1500
DOC_BYTES = 5000
BATCH = 100
#: The large run may use at most this much more memory than the small one: max(MB, share of small).
SLACK_MB = 64
SLACK_SHARE = 0.10


def _pipeline() -> list[dict]:
    return [{"extract": {}}, {"langid": {"threshold": 0.5, "drop_unknown": False}}]


RUNNER = textwrap.dedent("""
    import json, sys
    from jobs.runjob import run_job
    spec = json.loads(sys.argv[1])
    stats = run_job(spec, inputs=[sys.argv[2]], out=sys.argv[3], executor="local", workers=1)
    # VmHWM: the peak of this process's own memory (ru_maxrss would include the parent's at fork/exec)
    peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
    print(json.dumps({"peak_mb": peak, "read": stats["total"]["documents_read"],
                      "kept": stats["total"]["documents_kept"], "ok": stats["total"]["accounting_ok"],
                      "unit_peak_mb": stats["job"].get("peak_rss_mb"),
                      "content_bytes": stats["operators"]["reader"].get("bytes_in", 0)}))
""")


@pytest.mark.slow
def test_ten_times_larger_shard_keeps_peak_rss(tmp_path, shared_data):
    from benchmarks.corpora.documents import docs_from_text
    from benchmarks.corpora.text_pools import lingua_languages
    from benchmarks.corpora.wet_corpus import write_wet

    langs = ["en", "de", "fr", "es", "ru", "it", "nl", "pt", "pl", "sv"]
    assert set(langs) <= set(lingua_languages())
    texts = docs_from_text(SMALL_DOCS * 10, DOC_BYTES, seed=3, languages=langs)
    small = write_wet(tmp_path / "small.warc.wet.gz", texts[:SMALL_DOCS])
    large = write_wet(tmp_path / "large.warc.wet.gz", texts)
    spec = {"name": "memory", "pipeline": _pipeline(), "output": {"format": "parquet"},
            "executor": {"batch_size": BATCH, "workers": 1}}

    repo = REPO  # run this checkout's code, whatever is installed
    path = os.pathsep.join(p for p in (str(repo), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    procs = {}
    for name, shard in (("small", small), ("large", large)):
        procs[name] = subprocess.Popen(
            [sys.executable, "-c", RUNNER, json.dumps(spec), shard, str(tmp_path / f"out-{name}")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=repo, env=env)
    res = {}
    for name, p in procs.items():
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, f"{name} run failed:\n{err[-3000:]}"
        res[name] = json.loads(out.strip().splitlines()[-1])

    s, l = res["small"], res["large"]
    assert s["ok"] and l["ok"]
    assert s["read"] == SMALL_DOCS and l["read"] == 10 * SMALL_DOCS
    assert l["content_bytes"] >= 9 * s["content_bytes"] > 0
    assert l["kept"] > 0
    # the engine's own per-worker record agrees with what the process saw
    assert s["unit_peak_mb"] and abs(s["unit_peak_mb"] - s["peak_mb"]) <= 0.2 * s["peak_mb"] + 16
    growth = l["peak_mb"] - s["peak_mb"]
    allowed = max(SLACK_MB, SLACK_SHARE * s["peak_mb"])
    print(f"peak RSS: small {s['peak_mb']:.0f} MB ({s['content_bytes'] / 1e6:.1f} MB of text), "
          f"large {l['peak_mb']:.0f} MB ({l['content_bytes'] / 1e6:.1f} MB of text); growth {growth:.0f} MB, "
          f"allowed {allowed:.0f} MB")
    assert growth <= allowed, (
        f"peak RSS grew by {growth:.0f} MB (small {s['peak_mb']:.0f} MB, large {l['peak_mb']:.0f} MB) for a shard "
        f"10x larger ({l['content_bytes'] / 1e6:.0f} MB of text): memory follows the shard, not the batch")
    assert l["peak_mb"] / s["peak_mb"] < 1.5
