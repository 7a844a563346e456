"""Persons of the master index in the store: linking a person record to a person,
and keeping each person's golden record and search keys up to date.

The linking rule here is the foundation's deterministic one (a shared NHS number or
UPN, else the same normalised name and date of birth); the identity index plugs in
through the `PersonLinker` port and replaces it.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from canonical.codes import IdentifierScheme
from canonical.person import Person
from hub.golden import golden_record
from hub.store.tables.records import PersonIdentifierRow, PersonRow, SourceRecordRow

STRONG_SCHEMES = (IdentifierScheme.NHS_NUMBER.value, IdentifierScheme.UPN.value)


def new_person_id() -> str:
    return "P" + uuid.uuid4().hex[:12].upper()


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
    members = session.execute(select(SourceRecordRow).where(
        SourceRecordRow.person_id == person_id, SourceRecordRow.entity == "person",
        SourceRecordRow.deleted.is_(False))).scalars().all()
    row = session.get(PersonRow, person_id)
    from hub.lifecycle import system_of_record  # the SoR matrix decides which records may speak

    golden = golden_record([_member(m) for m in members], sor=system_of_record(session)) if members else {}
    values = golden.get("values", {})
    name = values.get("name") or {}
    if row is None:
        row = PersonRow(id=person_id, golden=golden, version=1)
        session.add(row)
    else:
        row.golden = golden
        row.version = (row.version or 0) + 1
    row.display_name = " ".join(p for p in (name.get("given"), name.get("family")) if p)
    row.family_key = name_key(name.get("family"))
    row.given_key = name_key(name.get("given"))
    dob = values.get("birth_date")
    row.birth_date = dob["value"] if dob else None
    address = values.get("address") or {}
    row.postcode = address.get("postcode")
    session.execute(delete(PersonIdentifierRow).where(PersonIdentifierRow.person_id == person_id))
    for m in members:
        for ident in m.canonical.get("identifiers", []):
            session.add(PersonIdentifierRow(person_id=person_id, scheme=ident["scheme"],
                                            value=ident["value"], record_key=m.ref_key))
    return row


def _member(row: SourceRecordRow) -> dict[str, Any]:
    return {"ref": row.ref_key, "system": row.system, "source_id": row.source_id,
            "observed_at": row.observed_at.isoformat() if row.observed_at else None,
            "person": row.canonical}
