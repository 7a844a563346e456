"""Persons of the master index in the store: linking a person record to a person,
and keeping each person's golden record and search keys up to date.

The linking rule here is the foundation's deterministic one (a shared NHS number or
UPN, else the same normalised name and date of birth); the identity index plugs in
through the `PersonLinker` port and replaces it.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from canonical.codes import IdentifierScheme
from canonical.person import Person
from hub.bulk import insert_rows, update_rows
from hub.golden import golden_record
from hub.identity.lookup import rows_in
from hub.store.base import utcnow
from hub.store.engine import json_loads
from hub.store.tables.records import PersonIdentifierRow, PersonRow, SourceRecordRow

_SR = SourceRecordRow.__table__
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
    return write_persons(session, prepare_persons(session, person_ids))


@dataclass
class PreparedPersons:
    """What a refresh of some persons writes, worked out from one read (`prepare_persons`), and
    what it was worked out from, so that a write transaction can tell which persons changed since
    (`changed_persons`) and work only those out again (`write_persons`)."""

    ids: list[str]  # every person asked for, sorted
    written: list[str]  # those that get a row (a redirect keeps no golden record of its own)
    fields: dict[str, dict[str, Any]]  # person → its row's golden record and search keys
    identifiers: dict[str, list[dict[str, Any]]]  # person → its identifier rows
    seen: dict[str, tuple[int, str | None]]  # person → (version, merged_into) as read; absent: a new person
    members: dict[str, list[tuple[Any, ...]]]  # person → (id, ref_key, observed_at, canonical text) as read
    joining: dict[str, str] = field(default_factory=dict)  # ref → person, for records the write moves
    sor: Any = None  # the system-of-record matrix the golden records were chosen with


def prepare_persons(session: Session, person_ids: Iterable[str],
                    joining: Mapping[str, str] | None = None) -> PreparedPersons:
    """The golden records, search keys and identifiers of these persons from their live records,
    as `session` sees them, without writing. `joining` (ref → person): records the write will
    link to one of these persons, counted as its members already (and not as another's)."""
    ids = sorted({p for p in person_ids if p})
    joining = {ref: pid for ref, pid in (joining or {}).items() if pid}
    seen = _person_rows(session, ids)
    members = _members(session, ids, joining)
    from hub.lifecycle import system_of_record  # the SoR matrix decides which records may speak

    sor = system_of_record(session) if members else None
    owners = _Owners(sor) if sor is not None else None
    written = [pid for pid in ids if not (seen.get(pid) or (0, None))[1]]
    fields, identifiers = {}, {}
    for pid in written:
        rows = members.get(pid, [])
        golden = golden_record([_member(m) for m in rows], sor=owners) if rows else {}
        values = golden.get("values", {})
        name = values.get("name") or {}
        dob = values.get("birth_date")
        fields[pid] = {"golden": golden,
                       "display_name": " ".join(p for p in (name.get("given"), name.get("family")) if p),
                       "family_key": name_key(name.get("family")), "given_key": name_key(name.get("given")),
                       "birth_date": dob["value"] if dob else None,
                       "postcode": (values.get("address") or {}).get("postcode")}
        identifiers[pid] = [{"person_id": pid, "scheme": i["scheme"], "value": i["value"], "record_key": m.ref_key}
                            for m in rows for i in (m.canonical or {}).get("identifiers", [])]
    return PreparedPersons(ids, written, fields, identifiers, seen,
                           {pid: [m.seen for m in rows] for pid, rows in members.items()}, joining, sor)


def changed_persons(session: Session, prepared: PreparedPersons) -> set[str]:
    """The persons of `prepared` whose row or member records are no longer as they were read:
    their version or redirect, which records are their members (the `joining` ones counted as
    theirs), or a member's observed_at or canonical form (the golden record's own inputs, compared
    as stored text: no writer's bookkeeping has to be trusted). Every person if the system-of-record
    matrix changed. Read in the write transaction before it moves the `joining` records."""
    if not prepared.ids:
        return set()
    if prepared.sor is not None:
        from hub.lifecycle import system_of_record

        now = system_of_record(session)
        if now.phases != prepared.sor.phases or now.overrides != prepared.sor.overrides:
            return set(prepared.ids)
    rows = _person_rows(session, prepared.ids)
    members = _members(session, prepared.ids, prepared.joining, decode=False)
    return {pid for pid in prepared.ids
            if rows.get(pid) != prepared.seen.get(pid)
            or [m.seen for m in members.get(pid, ())] != prepared.members.get(pid, [])}


def write_persons(session: Session, prepared: PreparedPersons, changed: Iterable[str] = ()) -> int:
    """Write what `prepare_persons` worked out, but for the `changed` persons, worked out again
    here (in this transaction). Returns how many persons were written."""
    changed = set(changed) & set(prepared.ids)
    again = prepare_persons(session, changed) if changed else None
    now = utcnow()
    inserts, updates, identifiers = [], [], []
    for plan in (prepared, again):
        if plan is None:
            continue
        for pid in plan.written:
            if plan is prepared and pid in changed:
                continue
            stored = plan.seen.get(pid)
            if stored is not None:
                updates.append({"id": pid, "version": (stored[0] or 0) + 1, **plan.fields[pid], "updated_at": now})
            else:
                inserts.append({"id": pid, "version": 1, "created_at": now, **plan.fields[pid], "updated_at": now})
            identifiers.append((pid, plan.identifiers[pid]))
    insert_rows(session, PersonRow.__table__, inserts)
    update_rows(session, PersonRow.__table__, "id", updates)
    _replace_identifiers(session, identifiers)
    return len(inserts) + len(updates)


def _person_rows(session: Session, ids: list[str]) -> dict[str, tuple[int, str | None]]:
    """(version, merged_into) of those of these persons that exist."""
    return {pid: (version, merged_into) for pid, version, merged_into
            in rows_in(session, PersonRow.__table__, ("id", "version", "merged_into"), "id", ids)}


@dataclass
class _Member:
    ref_key: str
    system: str
    source_id: str
    observed_at: Any
    canonical: Any
    seen: tuple[Any, ...]  # what `changed_persons` compares


def _members(session: Session, ids: list[str], joining: Mapping[str, str],
             decode: bool = True) -> dict[str, list[_Member]]:
    """The live person records of these persons (and the `joining` ones, as the person they join
    has them), in the order they were stored, their canonical form decoded if `decode`. Read
    through the driver (`rows_in`): as SQLAlchemy rows they were a fifth of a bulk link's writer
    at 1,000,000 people; `observed_at` comes as SQLite stores it (text) and is parsed only for
    the golden record."""
    if not ids:
        return {}
    columns = ("id", "ref_key", "person_id", "system", "source_id", "observed_at", "canonical")
    live = {"entity": "person", "deleted": False}
    found: dict[int, Any] = {}
    for by, keys in (("person_id", ids), ("ref_key", sorted(joining))):
        found.update((m[0], m) for m in rows_in(session, _SR, columns, by, keys, live, as_text=("canonical",)))
    wanted = set(ids)
    out: dict[str, list[_Member]] = defaultdict(list)
    for row_id in sorted(found):
        _id, ref_key, person_id, system, source_id, observed_at, text = found[row_id]
        pid = joining.get(ref_key, person_id)
        if pid in wanted:
            out[pid].append(_Member(ref_key, system, source_id, _datetime(observed_at),
                                    json_loads(text) if decode and text is not None else None,
                                    (row_id, ref_key, observed_at, text)))
    return out


def _datetime(value: Any) -> dt.datetime | None:
    """A stored timestamp as a datetime: SQLite's text (SQLAlchemy's format, no offset) parsed
    as SQLAlchemy would, a driver's datetime as it is."""
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


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
