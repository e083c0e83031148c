"""Shared fixtures. Real data lives in ../shared/data beside the repo (CI clones the repo with
shared/ next to it); small files a default run needs are copied into samples/ with licenses."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from engine.registry import discover
from jobs.paths import PACKAGES
from support import REPO, SHARED_DATA, LocalS3, boot_cluster, lingua_lines, shared_cluster

discover(PACKAGES)  # tests look operators up by name (engine.registry.get_operator)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared test data not found at {SHARED_DATA} (set DECANT_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="module")
def shards(tmp_path_factory, shared_data) -> list[str]:
    """Three JSONL shards of real multilingual documents, with some documents repeated across shards."""
    d = tmp_path_factory.mktemp("shards")
    rng = random.Random(7)
    pool = {lang: lingua_lines(shared_data, lang)[:300] for lang in ("en", "de", "fr", "ru")}
    docs = []
    for i in range(120):
        lang = ["en", "de", "fr", "ru"][i % 4]
        docs.append({"id": f"doc-{i:04d}", "text": "\n".join(rng.sample(pool[lang], 6)), "lang_hint": lang,
                     "n": i})
    paths = []
    for s in range(3):
        p = d / f"shard-{s}.jsonl"
        with open(p, "w", encoding="utf-8") as f:
            for doc in docs[s * 40:(s + 1) * 40]:
                f.write(json.dumps(doc, ensure_ascii=False) + "\n")
        paths.append(str(p))
    return paths


@pytest.fixture(scope="module")
def ray_cluster_booting(request) -> None:
    """Starts the session's 2-node Ray cluster in the background when a Ray test module begins, so
    that its tests without a cluster run meanwhile (`pytest.mark.usefixtures` in the module)."""
    boot_cluster(request)


@pytest.fixture(scope="module")
def ray_cluster(request):
    """The session's 2-node Ray cluster on 127.0.0.1, once it has started."""
    return shared_cluster(request)


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API server on 127.0.0.1 for the session (moto's standalone server) with one bucket,
    and the AWS environment pointing at it while it runs (support.LocalS3)."""
    server = LocalS3().start()
    yield server
    server.stop()
