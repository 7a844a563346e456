"""Persons of the master index in the store: linking a person record to a person,
and keeping each person's golden record and search keys up to date.

The linking rule here is the foundation's deterministic one (a shared NHS number or
UPN, else the same normalised name and date of birth); the identity index plugs in
through the `PersonLinker` port and replaces it.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from canonical.codes import IdentifierScheme
from canonical.person import Person
from hub.bulk import insert_rows, update_rows
from hub.golden import golden_record
from hub.identity.lookup import rows_in
from hub.store.base import utcnow
from hub.store.tables.records import PersonIdentifierRow, PersonRow, SourceRecordRow

STRONG_SCHEMES = (IdentifierScheme.NHS_NUMBER.value, IdentifierScheme.UPN.value)


def new_person_id() -> str:
    """A new person's id: "P", the time in milliseconds (12 hex digits) and 64 random bits.
    Ordered by time, so the persons a load creates go to the end of every index on person ids
    (person, and the person_id of source_record, identity_record, identity_link and
    person_identifier) instead of each to a random page of each. A bulk link names hundreds of
    persons a millisecond: 64 bits keep them apart (48 random bits in all gave a load of a
    million persons a chance in 150 of two alike)."""
    return f"P{time.time_ns() // 1_000_000:012X}{secrets.randbits(64):016X}"


def name_key(value: str | None) -> str:
    return "".join(ch for ch in (value or "").lower() if ch.isalpha())


class PersonLinker(Protocol):
    def link(self, session: Session, row: SourceRecordRow, person: Person) -> str:
        """Return the id of the person this record describes (existing or new)."""


class DeterministicLinker:
    """Same NHS number or UPN → same person; else same family name, given name and DOB."""

    def link(self, session: Session, row: SourceRecordRow, person: Person) -> str:
        if row.person_id:
            return resolve(session, row.person_id)
        for ident in person.identifiers:
            if ident.scheme.value in STRONG_SCHEMES:
                hit = session.execute(select(PersonIdentifierRow.person_id).where(
                    PersonIdentifierRow.scheme == ident.scheme.value,
                    PersonIdentifierRow.value == ident.value).limit(1)).scalar()
                if hit:
                    return resolve(session, hit)
        name = person.current_name
        dob = person.birth_date.value.isoformat() if person.birth_date else None
        if dob and name.family and name.given:
            hits = session.execute(select(PersonRow.id).where(
                PersonRow.family_key == name_key(name.family), PersonRow.given_key == name_key(name.given),
                PersonRow.birth_date == dob, PersonRow.merged_into.is_(None)).limit(2)).scalars().all()
            if len(hits) == 1:
                return hits[0]
        return new_person_id()


def resolve(session: Session, person_id: str) -> str:
    """Follow merge redirects to the surviving person id."""
    seen = set()
    while person_id not in seen:
        seen.add(person_id)
        target = session.execute(select(PersonRow.merged_into).where(PersonRow.id == person_id)).scalar()
        if not target:
            return person_id
        person_id = target
    return person_id


def refresh_person(session: Session, person_id: str) -> PersonRow | None:
    """Recompute the golden record and search keys of a person from its live records."""
    refresh_persons(session, [person_id])
    return session.get(PersonRow, person_id, populate_existing=True)


def refresh_persons(session: Session, person_ids: Iterable[str]) -> int:
    """Recompute the golden records, search keys and identifiers of many persons at once:
    one query for all their members, one for their rows, bulk writes. Returns how many."""
    ids = sorted({p for p in person_ids if p})
    if not ids:
        return 0
    from hub.lifecycle import system_of_record  # the SoR matrix decides which records may speak

    members: dict[str, list[Any]] = defaultdict(list)
    versions: dict[str, int] = {}
    retired: set[str] = set()
    for part in _chunks(ids):
        for m in session.execute(select(
                SourceRecordRow.ref_key, SourceRecordRow.person_id, SourceRecordRow.system,
                SourceRecordRow.source_id, SourceRecordRow.observed_at, SourceRecordRow.canonical).where(
                SourceRecordRow.person_id.in_(part), SourceRecordRow.entity == "person",
                SourceRecordRow.deleted.is_(False)).order_by(SourceRecordRow.id)):
            members[m.person_id].append(m)
        for pid, version, merged_into in session.execute(select(PersonRow.id, PersonRow.version, PersonRow.merged_into)
                                                         .where(PersonRow.id.in_(part))):
            versions[pid] = version
            if merged_into:  # a redirect keeps no golden record of its own
                retired.add(pid)
    sor = _Owners(system_of_record(session)) if members else None
    now = utcnow()
    inserts, updates, identifiers = [], [], []
    ids = [pid for pid in ids if pid not in retired]
    for pid in ids:
        rows = members.get(pid, [])
        golden = golden_record([_member(m) for m in rows], sor=sor) if rows else {}
        values = golden.get("values", {})
        name = values.get("name") or {}
        dob = values.get("birth_date")
        fields = {"golden": golden, "display_name": " ".join(p for p in (name.get("given"), name.get("family")) if p),
                  "family_key": name_key(name.get("family")), "given_key": name_key(name.get("given")),
                  "birth_date": dob["value"] if dob else None,
                  "postcode": (values.get("address") or {}).get("postcode"), "updated_at": now}
        if pid in versions:
            updates.append({"id": pid, "version": (versions[pid] or 0) + 1, **fields})
        else:
            inserts.append({"id": pid, "version": 1, "created_at": now, **fields})
        identifiers.append((pid, [{"person_id": pid, "scheme": i["scheme"], "value": i["value"], "record_key": m.ref_key}
                                  for m in rows for i in (m.canonical or {}).get("identifiers", [])]))
    insert_rows(session, PersonRow.__table__, inserts)
    update_rows(session, PersonRow.__table__, "id", updates)
    _replace_identifiers(session, identifiers)
    return len(ids)


class _Owners:
    """The matrix's `owner`, remembered for one refresh: every member of every person asks it
    about the same few (system, field) pairs, and each answer walks the overrides."""

    def __init__(self, sor: Any) -> None:
        self.sor, self.known = sor, {}

    def owner(self, system: str, entity: str, field: str) -> str:
        key = (system, entity, field)
        found = self.known.get(key)
        if found is None:
            found = self.known[key] = self.sor.owner(system, entity, field)
        return found


def _replace_identifiers(session: Session, wanted: list[tuple[str, list[dict[str, Any]]]]) -> None:
    """Each person's identifier rows become `wanted`'s: the rows no longer wanted are deleted and
    only the missing ones inserted (a refresh mostly adds a record's identifiers or changes none:
    no rewrite of the person's other rows, nor change-log rows for them)."""
    have: dict[str, dict[tuple[str, str, str], list[int]]] = defaultdict(lambda: defaultdict(list))
    for row_id, pid, scheme, value, record_key in rows_in(
            session, PersonIdentifierRow.__table__, ["id", "person_id", "scheme", "value", "record_key"], "person_id",
            [pid for pid, _rows in wanted]):
        have[pid][(scheme, value, record_key)].append(row_id)
    gone: list[int] = []
    added: list[dict[str, Any]] = []
    for pid, rows in wanted:
        stored = have.get(pid, {})
        count = Counter((r["scheme"], r["value"], r["record_key"]) for r in rows)
        for key, ids in stored.items():
            gone += ids[count.get(key, 0):]
        for r in rows:
            key = (r["scheme"], r["value"], r["record_key"])
            if count[key] > len(stored.get(key, ())):
                count[key] -= 1
                added.append(r)
    for part in _chunks(sorted(gone)):
        session.execute(delete(PersonIdentifierRow).where(PersonIdentifierRow.id.in_(part)))
    insert_rows(session, PersonIdentifierRow.__table__, added)


def _chunks(values: list[str], size: int = 500) -> Iterable[list[str]]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


def _member(row: Any) -> dict[str, Any]:
    return {"ref": row.ref_key, "system": row.system, "source_id": row.source_id,
            "observed_at": row.observed_at.isoformat() if row.observed_at else None,
            "person": row.canonical}
