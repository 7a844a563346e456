"""The `SourceAdapter` port: what every kind of legacy-system adapter offers the hub.

An adapter only reads (and, for write-back, writes) its legacy system. It never
touches the hub's store: the hub's ingest service hands it an `AdapterState`
to read cursors and row hashes from, and commits each `ExtractBatch` (outbox
messages, quarantine entries, the batch's checkpoint) in one transaction, so a
restart resumes exactly where the last committed batch ended.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class RawChange:
    """One legacy record as read, or its deletion (`raw is None`)."""

    entity: str  # the mapping's entity block this row belongs to (e.g. "children", "cases")
    source_id: str
    raw: Mapping[str, Any] | None
    location: str  # table, file (and line / element), URL
    observed_at: dt.datetime | None = None  # the legacy system's own modified time, when it has one
    # The other rows of this row's group, as (row key, role cell), for a mapping with
    # `group_relationships`; None when the kind does not read groups (then none are made).
    group: tuple[tuple[str, str], ...] | None = None

    @property
    def deleted(self) -> bool:
        return self.raw is None


@dataclass(frozen=True)
class SourceFailure:
    """Input that could not even be read as records (a truncated XML file, a bad encoding)."""

    location: str
    reasons: tuple[str, ...]
    raw_excerpt: str = ""


@dataclass
class ExtractBatch:
    changes: list[RawChange] = field(default_factory=list)
    checkpoint: dict[str, str] = field(default_factory=dict)  # cursors to persist when this batch commits
    unchanged: int = 0  # rows seen whose hash matched the committed one
    failures: list[SourceFailure] = field(default_factory=list)


class AdapterState(Protocol):
    """What the hub has committed for a system: cursors and the content hash of every live row."""

    def cursor(self, key: str) -> str | None: ...

    def row_hashes(self, entity: str) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class WriteBack:
    """A change made through the hub that must be applied to a legacy system of record."""

    entity: str
    operation: str  # "create" | "update" | "close"
    source_id: str | None
    values: Mapping[str, Any]  # canonical paths -> new values
    expected_version: int | None = None


@dataclass(frozen=True)
class ApplyResult:
    source_id: str
    accepted: bool
    detail: str = ""


class SourceAdapter(Protocol):
    system: str
    kind: str

    def extract(self, state: AdapterState) -> Iterator[ExtractBatch]: ...

    def apply(self, change: WriteBack) -> ApplyResult: ...
