"""An operator defined outside the `operators` package, loaded through the job's `plugins:` list."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from engine.documents import set_column
from engine.operator import Filter, register


@register
class DropSevens(Filter):
    """Test operator: drops documents whose id ends in 7 (a decision the test can predict)."""

    name = "test_drop_sevens"
    outputs = ("test_drop_sevens_flag",)

    def compute(self, batch):
        ids = batch.column("id").to_pylist()
        return set_column(batch, "test_drop_sevens_flag", pa.array([i.endswith("7") for i in ids]))

    def decide(self, batch):
        flag = np.asarray(batch.column("test_drop_sevens_flag").to_pylist(), dtype=bool)
        return ~flag, np.full(len(flag), "ends_in_seven", dtype=object)
