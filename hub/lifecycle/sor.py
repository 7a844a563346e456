"""The system-of-record matrix as of a transaction: phases from the store, overrides from
config/sor.toml (re-read when the file changes)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.store.tables.lifecycle import (
    SystemPhaseRow,
)
from routing.lifecycle import (
    Phase,
)
from routing.sor import SorMatrix, load_overrides

DEFAULT_SOR_FILE = "config/sor.toml"
_OVERRIDES_CACHE: dict[tuple[str, float], list] = {}


def sor_file() -> str:
    return os.environ.get("HUB_SOR_FILE", DEFAULT_SOR_FILE)


def overrides_of(path: str) -> list:
    """Overrides of `path`, re-read when the file changes."""
    mtime = Path(path).stat().st_mtime if Path(path).exists() else 0.0
    key = (str(Path(path).resolve()), mtime)
    if key not in _OVERRIDES_CACHE:
        _OVERRIDES_CACHE.clear()
        _OVERRIDES_CACHE[key] = load_overrides(path)
    return _OVERRIDES_CACHE[key]


def load_phases(session: Session) -> dict[str, Phase]:
    return {r.system: Phase(r.phase) for r in session.execute(select(SystemPhaseRow)).scalars()}


def system_of_record(session: Session, overrides_path: str | None = None) -> SorMatrix:
    """The SoR matrix as of this transaction (phases from the store, overrides from config/sor.toml)."""
    cached = session.info.get("sor_matrix")
    if cached is None:
        cached = SorMatrix(load_phases(session), overrides_of(overrides_path or sor_file()))
        session.info["sor_matrix"] = cached
    return cached

