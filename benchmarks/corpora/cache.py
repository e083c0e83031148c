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
