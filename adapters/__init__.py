"""Adapters: read legacy systems and translate their rows into the canonical model.

`load_system(path, env=...)` reads one mapping file into a `SystemDefinition`
(validated: errors name the file, the line and the field); `build_adapter(defn)`
gives the `SourceAdapter` of its kind; `defn.mapping.translate(change, extracted_at=...)`
turns one raw row into canonical source records or raises `TranslationError`
with every reason.
"""

from __future__ import annotations

from typing import Any

from adapters.errors import MappingError, TranslationError
from adapters.port import (
    AdapterState,
    ApplyResult,
    ExtractBatch,
    RawChange,
    SourceAdapter,
    SourceFailure,
    WriteBack,
)

__all__ = [
    "AdapterState", "ApplyResult", "ExtractBatch", "MappingError", "RawChange", "SourceAdapter",
    "SourceFailure", "SystemDefinition", "TranslationError", "WriteBack", "build_adapter", "load_system",
]


def __getattr__(name: str) -> Any:
    # The loader pulls in the mapping engine; kinds importing adapters.port or
    # adapters.kinds.common do not need it, so it is imported on first use.
    if name in ("SystemDefinition", "load_system", "build_adapter"):
        from adapters import system

        return getattr(system, name)
    raise AttributeError(f"module 'adapters' has no attribute {name!r}")
