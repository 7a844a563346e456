"""Where the trained model lives and how the hub loads it: `HUB_IDENTITY_MODEL`, else
`var/identity/model.json`; with no file yet, the built-in priors."""

from __future__ import annotations

import os
from pathlib import Path

from identity_index.model import Model, default_model

DEFAULT_PATH = "var/identity/model.json"


def model_path(path: str | Path | None = None) -> Path:
    return Path(path or os.environ.get("HUB_IDENTITY_MODEL") or DEFAULT_PATH)


def load_model(path: str | Path | None = None) -> Model:
    """The model file if there is one (errors name the file), else the untrained defaults."""
    target = model_path(path)
    return Model.load(target) if target.exists() else default_model()
