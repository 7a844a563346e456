"""Reconciliation: compare a legacy system's current extract with the hub's mirror.

The adapter reads the whole system (an `AdapterState` with nothing committed), each
row is hashed exactly as ingest hashes it, and the result is compared with what the
hub committed (`adapter_row_hash`) and holds (`source_record`):

* missing   — in the legacy system, not in the hub
* extra     — in the hub, no longer in the legacy system
* drifted   — in both, but the content hash differs (changed since the last ingest)
* unmirrored — committed by ingest but the canonical records are not in the store

A difference is explained when the quarantine holds that row (open or accepted).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from adapters.port import RawChange, SourceAdapter
from canonical.records import content_hash
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.ingest import AdapterRowHashRow
from hub.store.tables.lifecycle import ReconciliationRow
from hub.store.tables.records import QuarantineRow, SourceRecordRow
from hub.systems import SystemRegistry
from routing.readiness import ReconciliationSummary

AdapterFactory = Callable[[Any], SourceAdapter]


class ReconciliationFailed(Exception):
    """The legacy system could not be read in full (its adapter raised)."""


class NothingCommitted:
    """An `AdapterState` with no cursors and no row hashes: the adapter reads everything."""

    def cursor(self, key: str) -> str | None:
        return None

    def row_hashes(self, entity: str) -> Mapping[str, str]:
        return {}


def default_adapter_factory(defn: Any) -> SourceAdapter:
    from adapters import build_adapter

    return build_adapter(defn)


@dataclass
class ReconciliationReport:
    system: str
    summary: ReconciliationSummary
    run_id: int = 0
    at: dt.datetime = field(default_factory=utcnow)
    unreadable: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        s = self.summary
        return {"system": self.system, "run_id": self.run_id, "at": self.at.isoformat(), "clean": s.clean,
                "legacy_count": s.legacy_count, "hub_count": s.hub_count, "missing": s.missing, "extra": s.extra,
                "drifted": s.drifted, "unmirrored": s.unmirrored, "explained": s.explained,
                "unexplained": s.unexplained, "examples": s.examples, "unreadable": self.unreadable}


class Reconciler:
    def __init__(self, store: Store, systems: SystemRegistry, *, adapter_factory: AdapterFactory | None = None,
                 examples: int = 5) -> None:
        self.store, self.systems = store, systems
        self.adapter_factory = adapter_factory or default_adapter_factory
        self.examples = examples

    def scan(self, system: str) -> Iterator[RawChange | str]:
        """Every legacy row of `system` in reading order, deletions included (and, as strings,
        locations that could not be read)."""
        with _readable(self.systems.get(system)) as defn:
            adapter = self.adapter_factory(defn)
            try:
                for batch in adapter.extract(NothingCommitted()):
                    yield from batch.changes
                    for failure in batch.failures:
                        yield failure.location
            except Exception as exc:
                raise ReconciliationFailed(f"{system}: the adapter could not read the system: "
                                           f"{type(exc).__name__}: {exc}") from exc

    def run(self, system: str, *, trigger: str = "manual",
            sink: Callable[[RawChange], None] | None = None) -> ReconciliationReport:
        """Compare now and record the run; `sink` sees every legacy row read (for the final archive)."""
        legacy: dict[tuple[str, str], str] = {}
        unreadable: list[str] = []
        try:
            for item in self.scan(system):
                if isinstance(item, str):
                    unreadable.append(item)
                    continue
                if item.deleted:  # a drop folder's delta removed it
                    legacy.pop((item.entity, item.source_id), None)
                    continue
                legacy[(item.entity, item.source_id)] = content_hash(dict(item.raw or {}))
                if sink is not None:
                    sink(item)
        except ReconciliationFailed as exc:
            with self.store.transaction() as s:
                s.add(ReconciliationRow(system=system, trigger=trigger, clean=False, summary={}, error=str(exc)))
            raise
        report = self._compare(system, legacy, unreadable)
        with self.store.transaction() as s:
            row = ReconciliationRow(system=system, trigger=trigger, clean=report.summary.clean,
                                    summary=report.as_dict(), at=report.at)
            s.add(row)
            s.flush()
            report.run_id = row.id
        return report

    def _compare(self, system: str, legacy: dict[tuple[str, str], str], unreadable: list[str]) -> ReconciliationReport:
        with self.store.transaction() as s:
            committed = {(r.entity, r.source_id): (r.content_hash, list(r.record_keys or []))
                         for r in s.execute(select(AdapterRowHashRow).where(AdapterRowHashRow.system == system))
                         .scalars()}
            quarantined = {(q.entity, q.source_id) for q in s.execute(
                select(QuarantineRow.entity, QuarantineRow.source_id, QuarantineRow.location).where(
                    QuarantineRow.system == system, QuarantineRow.status.in_(("open", "accepted"))))}
            quarantined_locations = set(s.execute(select(QuarantineRow.location).where(
                QuarantineRow.system == system, QuarantineRow.status.in_(("open", "accepted")))).scalars())
            live = set(s.execute(select(SourceRecordRow.ref_key).where(
                SourceRecordRow.system == system, SourceRecordRow.deleted.is_(False))).scalars())
        kinds: dict[str, list[str]] = {"missing": [], "extra": [], "drifted": [], "unmirrored": []}
        explained = 0

        def note(kind: str, key: tuple[str, str]) -> None:
            nonlocal explained
            if key in quarantined:
                explained += 1
            else:
                kinds[kind].append(f"{key[0]}/{key[1]}")

        for key, digest in legacy.items():
            if key not in committed:
                note("missing", key)
            elif committed[key][0] != digest:
                note("drifted", key)
            elif not committed[key][1] or any(k not in live for k in committed[key][1]):
                note("unmirrored", key)
        for key in committed.keys() - legacy.keys():
            note("extra", key)
        referenced = {k for _, keys in committed.values() for k in keys}
        kinds["extra"] += sorted(live - referenced)
        unexplained_unreadable = [loc for loc in unreadable if loc not in quarantined_locations]
        explained += len(unreadable) - len(unexplained_unreadable)
        kinds["missing"] += [f"unreadable: {loc}" for loc in unexplained_unreadable]
        summary = ReconciliationSummary(
            legacy_count=len(legacy), hub_count=len(committed), missing=len(kinds["missing"]),
            extra=len(kinds["extra"]), drifted=len(kinds["drifted"]), unmirrored=len(kinds["unmirrored"]),
            explained=explained, examples={k: sorted(v)[: self.examples] for k, v in kinds.items() if v})
        return ReconciliationReport(system, summary, unreadable=unreadable)


@contextmanager
def _readable(defn: Any) -> Iterator[Any]:
    """The definition to read the system with, without side effects on the legacy system.

    A drop folder (`xml_files`) is consumed by reading it: processed files move to its archive.
    It is read from a private copy of every file it has received (archive, then inbox), so a
    reconciliation neither takes a drop away from ingest nor misses one already ingested."""
    if getattr(defn, "kind", None) != "xml_files":
        yield defn
        return
    base = Path(getattr(defn, "base_dir", "."))
    folder = lambda key, default: (base / defn.source.get(key, default)).resolve()
    inbox = folder("inbox", "inbox")
    archive = folder("archive", str(inbox.parent / "archive"))
    with tempfile.TemporaryDirectory(prefix=f"reconcile-{defn.name}-") as tmp:
        copy = Path(tmp) / "inbox"
        copy.mkdir()
        for source in (archive, inbox):
            for path in sorted(p for p in source.glob("*") if p.is_file()) if source.is_dir() else []:
                shutil.copy2(path, copy / path.name)
        yield dataclasses.replace(defn, source={**defn.source, "inbox": str(copy),
                                                "archive": str(Path(tmp) / "archive"),
                                                "failed": str(Path(tmp) / "failed")})


def latest(store: Store, system: str) -> dict[str, Any] | None:
    """The most recent reconciliation run of `system`, as recorded."""
    with store.transaction() as s:
        row = s.execute(select(ReconciliationRow).where(ReconciliationRow.system == system)
                        .order_by(ReconciliationRow.id.desc()).limit(1)).scalar_one_or_none()
        if row is None:
            return None
        return {"run_id": row.id, "at": row.at.isoformat(), "clean": row.clean, "error": row.error,
                "trigger": row.trigger, **{k: v for k, v in (row.summary or {}).items() if k not in ("run_id", "at")}}


def reconcile_all(reconciler: Reconciler, phases: Mapping[str, str], *, trigger: str = "schedule") -> dict[str, Any]:
    """Reconcile every system whose adapter can still read it (not decommissioned); a system that
    cannot be read is reported with its error, and the others still run."""
    out: dict[str, Any] = {}
    for system, phase in sorted(phases.items()):
        if phase == "decommissioned":
            continue
        try:
            out[system] = reconciler.run(system, trigger=trigger).as_dict()
        except ReconciliationFailed as exc:
            out[system] = {"system": system, "clean": False, "error": str(exc)}
    return out
