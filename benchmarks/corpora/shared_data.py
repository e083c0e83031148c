"""Where the real data lives: $DECANT_SHARED_DATA, else shared/data beside the repository."""
from __future__ import annotations

import os
from pathlib import Path

from operators.paths import REPO_ROOT


def shared_data() -> Path:
    env = os.environ.get("DECANT_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"
