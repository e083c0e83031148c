"""Built corpora are cached: one folder per builder and parameters, built once and atomically.

The cache lives under $DECANT_BENCH_CACHE (default <tmp>/decant-bench-cache). A build writes into a
temporary folder and renames it into place, so concurrent or interrupted builds never leave half a
corpus; a folder counts once it holds DONE.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

#: Bump when a builder changes what it writes: old cache entries are then ignored.
CORPUS_VERSION = 4


def cache_dir() -> Path:
    d = Path(os.environ.get("DECANT_BENCH_CACHE") or Path(tempfile.gettempdir()) / "decant-bench-cache")
    d.mkdir(parents=True, exist_ok=True)
    return d


def cache_key(kind: str, **params) -> str:
    """Folder name: the builder, its short parameters (readable) and a hash of all of them."""
    blob = json.dumps({"v": CORPUS_VERSION, "kind": kind, **params}, sort_keys=True)
    readable = "-".join(f"{k}{v}" for k, v in sorted(params.items()) if isinstance(v, (int, str)))
    return f"{kind}-{readable}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"


def cached(kind: str, build: Callable[..., None], **params) -> Path:
    """Folder holding the corpus `build(folder, **params)` writes; built on first use only."""
    final = cache_dir() / cache_key(kind, **params)
    if (final / "DONE").exists():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=cache_dir()))
    try:
        build(tmp, **params)
        (tmp / "DONE").write_text(json.dumps(params, sort_keys=True))
        try:
            os.rename(tmp, final)
        except OSError:  # someone else finished first (or a stale folder without DONE)
            if not (final / "DONE").exists():
                shutil.rmtree(final, ignore_errors=True)
                os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def bytecode_env(**extra: str) -> dict[str, str]:
    """The environment of a timed child process: this one's, with Python's bytecode cache on and
    kept under the bench cache (PYTHONPYCACHEPREFIX; Python then reads every module's bytecode
    from there), plus `extra`. Installed packages come with their bytecode; this repository's
    editable install run with PYTHONDONTWRITEBYTECODE has none, and then every timed process
    compiled decant's sources (~0.1-0.3 s of a run, twice as much of a short one). A caller runs
    its command once untimed first, which fills the cache."""
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(cache_dir() / "pycache"), **extra}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env
