"""The dedup_e2e benchmark's pieces: its corpus (real sentences, a fifth edited copies) and the
datasketch script it races `decant dedup` against, run for real on a small corpus."""
from __future__ import annotations

import json
import subprocess
import sys

from benchmarks import dedup_e2e
from benchmarks.minhash_dedup import brute_force_pairs


def test_corpus_and_datasketch_script_find_the_copies(tmp_path):
    path = dedup_e2e.corpus(docs=300, seed=3)
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 300 and len({r["id"] for r in rows}) == 300
    assert sorted(len(r["text"].encode()) for r in rows)[150] >= 1000  # ~1 KB documents
    out, removed = tmp_path / "kept.jsonl", tmp_path / "removed.json"
    subprocess.run([sys.executable, "-c", dedup_e2e.DATASKETCH_SCRIPT, str(path), str(out), str(removed),
                    "0.8", "112", "5"], check=True)
    gone = set(json.loads(removed.read_text()))
    kept = [json.loads(x)["id"] for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(kept) + len(gone) == 300 and not gone & set(kept)
    truth = {b for _, b in brute_force_pairs([r["text"] for r in rows], 0.8)}
    assert truth, "the corpus holds near-duplicates above the threshold"
    q = dedup_e2e._quality(gone, [r["id"] for r in rows], truth)
    assert q["precision"] >= 0.8 and q["recall"] >= 0.8


def test_both_sides_run_with_a_bytecode_cache(monkeypatch):
    """The timed processes write and read bytecode (under the bench cache) even where the
    environment turns it off, as installed packages have theirs."""
    from benchmarks.corpora.cache import cache_dir
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    r = subprocess.run([sys.executable, "-c", "import sys; print(sys.flags.dont_write_bytecode, sys.pycache_prefix)"],
                       env=dedup_e2e._child_env(), capture_output=True, text=True, check=True)
    flag, prefix = r.stdout.split()
    assert flag == "0" and prefix == str(cache_dir() / "pycache")


def test_median_run_gives_each_command_a_fresh_output_and_its_median(tmp_path):
    """Each repeat starts from an empty output (a second run into a finished one would only resume)
    and the figure is the median run, not the best."""
    outs = [tmp_path / "a", tmp_path / "b"]
    cmds = [[sys.executable, "-c", f"import os, sys; os.makedirs({str(o)!r}); open({str(o)!r} + '/mark', 'a').write('x')"]
            for o in outs]
    (wall_a, cpu_a), (wall_b, cpu_b) = dedup_e2e._median_run(cmds, outs, 3)  # makedirs fails on a kept output
    assert all((o / "mark").read_text() == "x" for o in outs)
    assert wall_a > 0 and wall_b > 0 and cpu_a >= 0 and cpu_b >= 0


def test_decant_command_is_the_interpreters_entry_point():
    """The bench runs the `decant` script of the interpreter it runs on, not a version manager's shim."""
    from pathlib import Path
    cmd = Path(dedup_e2e.decant_command())
    assert cmd.name == "decant"
    if (Path(sys.executable).parent / "decant").exists():
        assert cmd.parent == Path(sys.executable).parent
    assert subprocess.run([str(cmd), "--help"], capture_output=True, check=False).returncode == 0
