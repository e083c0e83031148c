"""How a corpus is spread over shard files, and what those files weigh."""
from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path


def shard_sizes(total: int, shards: int) -> list[int]:
    """Documents per shard: `total` spread as evenly as possible, the first shards one larger."""
    return [total // shards + (1 if s < total % shards else 0) for s in range(shards)]


def shard_files(folder: Path, suffix: str) -> list[str]:
    return sorted(str(p) for p in folder.glob(f"*{suffix}"))


def corpus_bytes(paths: list[str]) -> int:
    return sum(os.path.getsize(p) for p in paths)


def shuffled_rounds(items: int, draws: int, rng: random.Random) -> Iterator[tuple[int, int]]:
    """(item, round) for `draws` draws: every item once per round, each round in a new shuffled
    order (the shuffle uses `rng` at the first draw of the round)."""
    order = list(range(items))
    for n in range(draws):
        if n % items == 0:
            rng.shuffle(order)
        yield order[n % items], n // items
