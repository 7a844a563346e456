"""What every adapter kind shares: row-hash change detection with deletions, bounded
batches, and the error a kind raises for a source it cannot use.

A kind that can only do full scans (CSV, XML drops, most REST APIs, SQL tables
without a modified column) yields every row it reads as a `ScannedRow` (or a
`SourceFailure` for input it could not read at all) into `rowhash_batches`,
which compares each row's content hash with the one the hub committed, counts
the unchanged, and after a complete scan announces a deletion for every known
row that was not seen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from adapters.port import AdapterState, ExtractBatch, RawChange, SourceFailure
from canonical.records import content_hash

DEFAULT_BATCH_SIZE = 500

T = TypeVar("T")


class SourceConfigError(ValueError):
    """A `[source]` or entity table a kind cannot use (missing key, bad value, unreadable location)."""


@dataclass(frozen=True)
class ScannedRow:
    """One row read during a scan.

    `problems` non-empty: the row was read but is malformed (a ragged CSV row, an
    element without its id...). It is reported as a SourceFailure, never dropped,
    and when its `source_id` is known the row is kept alive (not treated as deleted).
    """

    source_id: str | None
    raw: Mapping[str, Any] | None
    location: str
    observed_at: dt.datetime | None = None
    problems: tuple[str, ...] = ()


def parse_config(model: type[BaseModel], data: Mapping[str, Any], where: str, kind: str) -> Any:
    """`data` (a `[source]` or entity table) validated by `model`; SourceConfigError names every bad key."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        reasons = "; ".join(f"{where}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise SourceConfigError(f"{kind} source configuration: {reasons}") from None


def batch_size_of(config: Mapping[str, Any], default: int = DEFAULT_BATCH_SIZE) -> int:
    """`batch_size` from a source or entity table, validated."""
    value = config.get("batch_size", default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SourceConfigError(f"batch_size must be a positive integer, not {value!r}")
    return value


def excerpt(raw: Any, limit: int = 500) -> str:
    text = raw if isinstance(raw, str) else repr(dict(raw) if isinstance(raw, Mapping) else raw)
    return text if len(text) <= limit else text[:limit] + "…"


class BatchBuilder:
    """Accumulates changes, unchanged counts and failures into batches of at most `batch_size` items."""

    def __init__(self, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if batch_size < 1:
            raise SourceConfigError(f"batch_size must be positive, not {batch_size}")
        self.batch_size = batch_size
        self._batch = ExtractBatch()

    def __len__(self) -> int:
        return len(self._batch.changes) + len(self._batch.failures)

    @property
    def full(self) -> bool:
        return len(self) >= self.batch_size

    @property
    def empty(self) -> bool:
        return not len(self) and not self._batch.unchanged and not self._batch.checkpoint

    def change(self, change: RawChange) -> None:
        self._batch.changes.append(change)

    def failure(self, failure: SourceFailure) -> None:
        self._batch.failures.append(failure)

    def unchanged(self, count: int = 1) -> None:
        self._batch.unchanged += count

    def add(self, outcome: RawChange | SourceFailure | None) -> None:
        """A change detector's verdict on one row: None (unchanged), a change, or a failure."""
        if outcome is None:
            self.unchanged()
        elif isinstance(outcome, SourceFailure):
            self.failure(outcome)
        else:
            self.change(outcome)

    def checkpoint(self, cursors: Mapping[str, str]) -> None:
        self._batch.checkpoint.update(cursors)

    def take(self) -> ExtractBatch:
        batch, self._batch = self._batch, ExtractBatch()
        return batch


@runtime_checkable
class BatchRowHashes(Protocol):
    """A `row_hashes` mapping that answers a batch of ids in one read (the hub store's does)."""

    def subset(self, source_ids: Collection[str]) -> dict[str, str]: ...


def committed_hashes(known: Mapping[str, str], source_ids: Collection[str]) -> dict[str, str]:
    """The committed hash of each of `source_ids` that has one: one read for a mapping that can
    batch (`BatchRowHashes`), a `get` per id for any other (an in-memory dict)."""
    if isinstance(known, BatchRowHashes):
        return known.subset(source_ids)
    return {sid: digest for sid in source_ids if (digest := known.get(sid)) is not None}


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last shorter), read as they are needed."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class SeenIds:
    """The source ids met in one scan, kept as 64-bit digests (no strings), so a scan of a
    million rows holds tens of megabytes, not hundreds. `seen[sid] = location` records one."""

    def __init__(self) -> None:
        self._digests: set[int] = set()

    def __contains__(self, source_id: object) -> bool:
        return hash(source_id) in self._digests

    def __setitem__(self, source_id: str, location: str) -> None:
        self._digests.add(hash(source_id))

    def add(self, source_id: str) -> None:
        self._digests.add(hash(source_id))

    def __len__(self) -> int:
        return len(self._digests)


class ChangeDetector:
    """Row-hash change detection for one entity over one full scan."""

    def __init__(self, state: AdapterState, entity: str) -> None:
        self.entity = entity
        self.known: Mapping[str, str] = state.row_hashes(entity)
        self.seen = SeenIds()
        self.complete = True  # False once input was met whose rows could not be identified
        self._ahead: dict[str, str | None] = {}  # committed hashes read ahead (`prefetch`), None: none

    def prefetch(self, rows: Iterable[ScannedRow]) -> None:
        """Read the committed hashes of the rows about to be observed, in one read instead of one
        per row. Rows of one scan have distinct ids (a repeat is refused), so nothing this scan
        commits can change a hash read ahead."""
        ids = [row.source_id for row in rows if row.source_id is not None]
        self._ahead = dict.fromkeys(ids)
        self._ahead.update(committed_hashes(self.known, ids))

    def committed(self, source_id: str) -> str | None:
        """The committed hash of `source_id`, None when the hub holds no such row."""
        if source_id in self._ahead:
            return self._ahead[source_id]
        return self.known.get(source_id)

    def observe(self, row: ScannedRow) -> RawChange | SourceFailure | None:
        """The change to announce for `row`, a failure to report, or None when it is unchanged."""
        if row.source_id is not None and row.source_id in self.seen:
            return SourceFailure(row.location, (
                f"{self.entity}: source id {row.source_id!r} appears more than once in this read; "
                f"this copy ({row.location}) was not ingested",), excerpt(row.raw or ""))
        if row.source_id is not None:
            self.seen.add(row.source_id)
        if row.problems or row.raw is None or row.source_id is None:
            if row.source_id is None:
                self.complete = False
            problems = row.problems or (f"{self.entity}: row has no source id",)
            return SourceFailure(row.location, tuple(problems), excerpt(row.raw or ""))
        committed = self.committed(row.source_id)
        if committed is not None and committed == content_hash(dict(row.raw)):
            return None  # hashed only when there is a committed hash to compare with
        return RawChange(entity=self.entity, source_id=row.source_id, raw=row.raw, location=row.location,
                         observed_at=row.observed_at)

    def deletions(self, location: str) -> list[RawChange]:
        """Known rows not seen in this scan; none when the scan could not identify every row."""
        if not self.complete:
            return []
        known = iter(self.known)  # not sorted(self.known): sizing it first would read the store twice
        return [RawChange(entity=self.entity, source_id=sid, raw=None, location=location)
                for sid in sorted(known) if sid not in self.seen]


def rowhash_batches(entity: str, rows: Iterable[ScannedRow | SourceFailure], state: AdapterState, *,
                    batch_size: int = DEFAULT_BATCH_SIZE, deletions_location: str = "",
                    detect_deletions: bool = True, final_checkpoint: Mapping[str, str] | None = None,
                    ) -> Iterator[ExtractBatch]:
    """Batches for one entity's full scan: changed and new rows, unchanged counts, failures, then deletions.

    A `SourceFailure` in `rows` (unreadable input) marks the scan incomplete, so no
    deletion is inferred from it: a truncated file never deletes the records it lost.
    """
    detector = ChangeDetector(state, entity)
    builder = BatchBuilder(batch_size)
    for chunk in chunks(rows, batch_size):  # read a batch ahead: one read of committed hashes per batch
        detector.prefetch(row for row in chunk if isinstance(row, ScannedRow))
        for row in chunk:
            if isinstance(row, SourceFailure):
                detector.complete = False
                builder.failure(row)
            else:
                builder.add(detector.observe(row))
            if builder.full:
                yield builder.take()
    if detect_deletions:
        for change in detector.deletions(deletions_location or entity):
            builder.change(change)
            if builder.full:
                yield builder.take()
    if final_checkpoint:
        builder.checkpoint(final_checkpoint)
    if not builder.empty:
        yield builder.take()
