"""Where the repository and its bundled models are (the package is installed editable / from the repo)."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_MODELS = REPO_ROOT / "models"
