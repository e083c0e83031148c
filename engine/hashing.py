"""Hashing helpers on numpy arrays that the engine and operators share."""
from __future__ import annotations

import numpy as np


def fmix64(h: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finaliser (avalanche), in place on a uint64 array; returns it."""
    with np.errstate(over="ignore"):
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xFF51AFD7ED558CCD)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xC4CEB93FE53C4E63)
        h ^= h >> np.uint64(33)
    return h
