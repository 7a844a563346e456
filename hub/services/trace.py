"""Trace a legacy row to its golden record: the source records the hub holds for it, the
person each is linked to (following merges to the surviving person), and any quarantine
entries the row produced. The console shows ids and states only; the person's details are
read on the person page, through the access policy."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select

from hub.store.engine import Store
from hub.store.tables.records import PersonRow, QuarantineRow, SourceRecordRow


@dataclass(frozen=True)
class TracedRecord:
    ref_key: str
    entity: str
    version: int
    deleted: bool
    observed_at: dt.datetime
    linked_person: str | None
    golden_person: str | None  # after following merges
    merged_via: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Trace:
    system: str
    source_id: str
    records: list[TracedRecord]
    quarantine: list[dict[str, Any]]

    @property
    def found(self) -> bool:
        return bool(self.records or self.quarantine)


def _surviving(session: Any, person_id: str | None) -> tuple[str | None, list[str]]:
    """Follow `merged_into` redirects to the person that survives (guarding against a loop)."""
    chain: list[str] = []
    current = person_id
    while current is not None and len(chain) < 20:
        row = session.get(PersonRow, current)
        if row is None or not row.merged_into:
            return current, chain
        chain.append(current)
        current = row.merged_into
    return current, chain


def trace_source_record(store: Store, system: str, source_id: str) -> Trace:
    """Every record of `system` whose source id is `source_id` (a row can yield several
    entities: a person, an involvement, a relationship), or whose subject is that row."""
    rec = SourceRecordRow
    with store.transaction() as s:
        rows = s.execute(select(rec).where(rec.system == system, or_(
            rec.source_id == source_id, rec.source_id.like(f"{source_id}:%"))).order_by(rec.entity, rec.ref_key)
        ).scalars().all()
        records = []
        for r in rows:
            golden, chain = _surviving(s, r.person_id)
            records.append(TracedRecord(r.ref_key, r.entity, r.version, r.deleted, r.observed_at, r.person_id,
                                        golden, chain))
        quarantine = s.execute(select(QuarantineRow).where(QuarantineRow.system == system,
                                                           QuarantineRow.source_id == source_id)
                               .order_by(QuarantineRow.id.desc())).scalars().all()
        entries = [{"id": q.id, "entity": q.entity, "status": q.status, "reasons": q.reasons,
                    "created_at": q.created_at} for q in quarantine]
    return Trace(system, source_id, records, entries)
