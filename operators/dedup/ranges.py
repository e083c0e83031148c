"""Index arithmetic over segments laid end to end, shared by the dedup steps."""
from __future__ import annotations

import numpy as np


def concat_ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Every index of the ranges [starts[k], ends[k]), concatenated."""
    n = ends - starts
    return np.repeat(starts - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))
