"""The quarantine: records that failed translation, kept with every reason until
re-run successfully after a fix, or explicitly accepted."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from sqlalchemy import func, select

from adapters.kinds.spreadsheet import safe_cell
from adapters.port import RawChange
from hub.adapter_state import RowState, StoreAdapterState
from hub.ingest import announce
from hub.outbox import add_to_outbox
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.records import QuarantineRow
from hub.systems import SystemRegistry
from canonical.records import content_hash


class QuarantineEntryNotFound(LookupError):
    pass


def list_quarantine(store: Store, *, system: str | None = None, status: str | None = "open",
                    page: int = 1, page_size: int = 50) -> dict[str, Any]:
    where = []
    if system:
        where.append(QuarantineRow.system == system)
    if status:
        where.append(QuarantineRow.status == status)
    with store.transaction() as s:
        total = s.execute(select(func.count()).select_from(QuarantineRow).where(*where)).scalar_one()
        rows = s.execute(select(QuarantineRow).where(*where).order_by(QuarantineRow.id.desc())
                         .offset((page - 1) * page_size).limit(page_size)).scalars().all()
        return {"total": total, "page": page, "page_size": page_size, "entries": [entry(r) for r in rows]}


def entry(row: QuarantineRow) -> dict[str, Any]:
    return {"id": row.id, "system": row.system, "entity": row.entity, "source_id": row.source_id,
            "location": row.location, "raw": row.raw, "reasons": row.reasons, "status": row.status,
            "resolution": row.resolution, "run_id": row.run_id, "created_at": row.created_at.isoformat(),
            "resolved_at": row.resolved_at.isoformat() if row.resolved_at else None}


def rerun(store: Store, systems: SystemRegistry, entry_id: int) -> dict[str, Any]:
    """Translate the kept raw record again with the current mapping; on success announce it."""
    with store.transaction() as s:
        found = s.get(QuarantineRow, entry_id)
        where = (found.system, found.entity) if found is not None else None
    state = None
    if where is not None:  # read before our write transaction: on SQLite a nested one would wait on it
        state = StoreAdapterState(store, where[0])
        state.rows(where[1])
    with store.transaction() as s:
        row = s.get(QuarantineRow, entry_id)
        if row is None:
            raise QuarantineEntryNotFound(entry_id)
        if row.status != "open" or row.source_id is None:
            return entry(row)
        defn = systems.get(row.system)
        change = RawChange(entity=row.entity, source_id=row.source_id, raw=row.raw, location=row.location)
        try:
            records = defn.mapping.translate(change, extracted_at=utcnow())
        except Exception as exc:
            row.reasons = list(getattr(exc, "reasons", None) or [str(exc)])
            return entry(row)
        previous = state.rows(row.entity).get(row.source_id)
        version = (previous.version if previous else 0) + 1
        add_to_outbox(s, announce(row.system, records, version, previous.record_keys if previous else []))
        state.save(s, row.entity, {row.source_id: RowState(content_hash(dict(row.raw)), version,
                                                           [r.ref.key for r in records])}, {})
        row.status, row.resolved_at, row.resolution = "resolved", utcnow(), "re-run succeeded"
        return entry(row)


def accept(store: Store, entry_id: int, reason: str, who: str = "unknown") -> dict[str, Any]:
    """Accept a record as not to be migrated (it stays visible, with the reason)."""
    if not reason.strip():
        raise ValueError("accepting a quarantined record needs a reason")
    with store.transaction() as s:
        row = s.get(QuarantineRow, entry_id)
        if row is None:
            raise QuarantineEntryNotFound(entry_id)
        row.status, row.resolved_at, row.resolution = "accepted", utcnow(), f"accepted by {who}: {reason}"
        return entry(row)


EXPORT_COLUMNS = ["id", "system", "entity", "source_id", "location", "status", "reasons", "raw", "created_at",
                  "resolution"]


def export_csv(store: Store, *, system: str | None = None, status: str | None = "open") -> str:
    """The quarantine as CSV for the people fixing the data: one line per entry, reasons on separate
    lines of one cell, the raw row as JSON. Legacy values that a spreadsheet would run as a formula
    (`=HYPERLINK(…)`, `+44 …`) are neutralised, so opening the export never executes them."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    page = 1
    while True:
        data = list_quarantine(store, system=system, status=status, page=page, page_size=1000)
        for e in data["entries"]:
            values = dict(e, reasons="\n".join(e["reasons"]),
                          raw=json.dumps(e["raw"], ensure_ascii=False, sort_keys=True, default=str))
            writer.writerow([safe_cell(values[c]) for c in EXPORT_COLUMNS])
        if page * 1000 >= data["total"]:
            return out.getvalue()
        page += 1
