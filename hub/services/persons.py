"""Finding people and assembling one person's record across every source system."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select

from hub.persons import name_key, resolve
from hub.store.engine import Store
from hub.store.tables.records import PersonIdentifierRow, PersonRow, SourceRecordRow


class PersonNotFound(LookupError):
    """No person has that id (nor was one merged into another under it)."""


@dataclass(frozen=True)
class SearchQuery:
    name: str | None = None
    birth_date: str | None = None  # ISO date
    identifier: str | None = None
    postcode: str | None = None
    page: int = 1
    page_size: int = 20


@dataclass(frozen=True)
class SearchPage:
    results: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


def search_persons(store: Store, q: SearchQuery) -> SearchPage:
    conditions = [PersonRow.merged_into.is_(None)]
    for token in (q.name or "").split():
        key = name_key(token)
        if key:
            conditions.append(or_(PersonRow.family_key.startswith(key), PersonRow.given_key.startswith(key)))
    if q.birth_date:
        conditions.append(PersonRow.birth_date == q.birth_date)
    if q.postcode:
        conditions.append(func.replace(PersonRow.postcode, " ", "") == q.postcode.upper().replace(" ", ""))
    if q.identifier:
        value = q.identifier.replace(" ", "")
        by_id = select(PersonIdentifierRow.person_id).where(PersonIdentifierRow.value == value)
        by_local = select(SourceRecordRow.person_id).where(SourceRecordRow.source_id == q.identifier,
                                                           SourceRecordRow.entity == "person")
        conditions.append(or_(PersonRow.id.in_(by_id), PersonRow.id.in_(by_local), PersonRow.id == q.identifier))
    with store.transaction() as s:
        total = s.execute(select(func.count()).select_from(PersonRow).where(*conditions)).scalar_one()
        rows = s.execute(select(PersonRow).where(*conditions).order_by(PersonRow.family_key, PersonRow.given_key,
                                                                       PersonRow.id)
                         .offset((q.page - 1) * q.page_size).limit(q.page_size)).scalars().all()
        return SearchPage([_summary(r) for r in rows], total, q.page, q.page_size)


def _summary(row: PersonRow) -> dict[str, Any]:
    return {"id": row.id, "name": row.display_name, "birth_date": row.birth_date, "postcode": row.postcode}


def get_person(store: Store, person_id: str) -> dict[str, Any]:
    """The golden record, the linked source records, involvements and relationships."""
    with store.transaction() as s:
        resolved = resolve(s, person_id)
        row = s.get(PersonRow, resolved)
        if row is None:
            raise PersonNotFound(person_id)
        members = s.execute(select(SourceRecordRow).where(
            SourceRecordRow.person_id == resolved, SourceRecordRow.entity == "person",
            SourceRecordRow.deleted.is_(False)).order_by(SourceRecordRow.system)).scalars().all()
        keys = [m.ref_key for m in members]
        attached = s.execute(select(SourceRecordRow).where(
            SourceRecordRow.subject_key.in_(keys), SourceRecordRow.deleted.is_(False))).scalars().all() if keys else []
        return {
            "id": row.id,
            "requested_id": person_id,
            "version": row.version,
            "name": row.display_name,
            "golden": row.golden,
            "source_records": [_record(m) for m in members],
            "involvements": sorted((_record(a) for a in attached if a.entity == "involvement"),
                                   key=lambda r: r["canonical"].get("started_on") or "", reverse=True),
            "relationships": [_record(a) for a in attached if a.entity == "relationship"],
        }


def _record(row: SourceRecordRow) -> dict[str, Any]:
    return {"ref": row.ref_key, "system": row.system, "entity": row.entity, "source_id": row.source_id,
            "version": row.version, "observed_at": row.observed_at.isoformat() if row.observed_at else None,
            "content_hash": row.content_hash, "canonical": row.canonical, "provenance": row.provenance}
