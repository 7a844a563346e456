"""The final archive of a decommissioned system: its raw legacy rows in a gzip JSON-lines file
with a manifest (rows per entity, SHA-256, size, reconciliation figures), verified before use."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

from adapters.port import RawChange
from hub.store.base import utcnow


class ArchiveWriter:
    """Streams a system's raw legacy rows into a gzip JSON-lines file, then writes its manifest."""

    def __init__(self, directory: Path, system: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
        self.path = directory / f"{system}-{stamp}.jsonl.gz"
        self.system = system
        self._file = gzip.open(self.path, "wt", encoding="utf-8")  # noqa: SIM115 - streamed across calls
        self.rows = 0
        self.by_entity: dict[str, int] = {}

    def add(self, change: RawChange) -> None:
        self._file.write(json.dumps({"entity": change.entity, "source_id": change.source_id,
                                     "location": change.location, "raw": dict(change.raw or {})},
                                    default=str, sort_keys=True) + "\n")
        self.rows += 1
        self.by_entity[change.entity] = self.by_entity.get(change.entity, 0) + 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def finish(self, *, reconciliation: Any) -> dict[str, Any]:
        self.close()
        manifest = {"system": self.system, "path": str(self.path), "format": "jsonl.gz",
                    "created_at": utcnow().isoformat(), "rows": self.rows, "by_entity": self.by_entity,
                    "sha256": _sha256(self.path), "bytes": self.path.stat().st_size,
                    "reconciliation": None if reconciliation is None else {
                        "legacy_count": reconciliation.legacy_count, "hub_count": reconciliation.hub_count,
                        "unexplained": reconciliation.unexplained, "explained": reconciliation.explained}}
        Path(str(self.path).removesuffix(".jsonl.gz") + ".manifest.json").write_text(
            json.dumps(manifest, indent=2, sort_keys=True))
        return manifest


def verify_archive(manifest: dict[str, Any]) -> bool:
    """The archive file exists and its checksum and row count are those of the manifest."""
    path = Path(manifest["path"])
    if not path.exists() or _sha256(path) != manifest["sha256"]:
        return False
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return sum(1 for _ in f) == manifest["rows"]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

