"""Set-based look-ups for a batch of `route.changed` messages (the routing worker's reads), and
the changes a message carries (`change_items`: one, or a `route.changed.batch` of many).

Each function answers for every person or record of a batch with a few queries, where the
worker used to ask once per message: the source rows by ref_key, the persons of subjects,
households (relationships and same current address), the involvements of all their members
and the alerts already raised naming them (by the hub_alert_person index). Only the columns needed are read; JSON documents
are cut down to the fields used in the database (JSON paths, on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, null, or_, select
from sqlalchemy.orm import Session

from canonical.messages import Envelope, MessageType, batch_items
from hub.store.tables.alerts import AlertPersonRow
from hub.store.tables.lifecycle import AlertRow
from hub.store.tables.records import PersonRow, SourceRecordRow
from routing.alerts import InvolvementFact

HOUSEHOLD_KINDS = ("parent", "child", "carer", "sibling", "household_member")
_R = SourceRecordRow


def ref_key(ref: dict[str, Any]) -> str:
    return f"{ref['system']}/{ref['entity']}/{ref['source_id']}"


@dataclass(frozen=True)
class ChangeItem:
    """One announced change: a `route.changed` message, or an item of a `route.changed.batch`
    (`index`: its place in the batch). What it causes correlates with `message`."""

    message: Envelope
    index: int | None
    ref: dict[str, str]
    created: bool
    changed: dict[str, Any]

    @property
    def key(self) -> str:
        return ref_key(self.ref)


@dataclass(frozen=True)
class BadChange:
    """An item of a `route.changed.batch` that is no valid change: journalled with the reason, the
    other items handled."""

    index: int
    reason: str


def change_items(env: Envelope) -> tuple[list[ChangeItem], list[BadChange]]:
    """The changes a message carries, in order, and the batch items that are invalid (none for a
    message of another type). An invalid one-change message raises `TypeError`: the bus retries
    it alone, then dead-letters it, as before batches; a batch keeps its valid items."""
    if env.type == MessageType.ROUTE_CHANGED:
        return [_change(env, None, env.payload)], []
    if env.type != MessageType.ROUTE_CHANGED_BATCH:
        return [], []
    items, bad = [], []
    try:
        payloads = batch_items(env.payload)
    except TypeError as exc:
        return [], [BadChange(0, str(exc))]
    for i, item in enumerate(payloads):
        try:
            items.append(_change(env, i, item))
        except TypeError as exc:
            bad.append(BadChange(i, str(exc)))
    return items, bad


def _change(env: Envelope, index: int | None, payload: Any) -> ChangeItem:
    if not isinstance(payload, dict):
        raise TypeError(f"a change is an object, not {type(payload).__name__}")
    ref = payload.get("ref")
    if not isinstance(ref, dict):
        raise TypeError("ref: missing (an object with system, entity and source_id)")
    for part in ("system", "entity", "source_id"):
        if not isinstance(ref.get(part), str) or not ref[part]:
            raise TypeError(f"ref.{part}: missing or not a string")
    created, changed = payload.get("created", False), payload.get("changed") or {}
    if not isinstance(created, bool):
        raise TypeError(f"created: {created!r} is not true or false")
    if not isinstance(changed, dict):
        raise TypeError(f"changed: an object of paths, not {type(changed).__name__}")
    return ChangeItem(env, index, {k: ref[k] for k in ("system", "entity", "source_id")}, created, changed)


def source_rows(s: Session, keys: Collection[str], *, canonical_of: Collection[str] = ()) -> dict[str, Any]:
    """The source records of `keys` (rows with ref_key, system, entity, source_id, subject_key,
    person_id, deleted and canonical), by ref_key; `canonical` is read only for the entities in
    `canonical_of` (None for the others: decoding documents nobody reads is most of the cost)."""
    if not keys:
        return {}
    canonical = case((_R.entity.in_(list(canonical_of)), _R.canonical), else_=null()) if canonical_of else null()
    rows = s.execute(select(_R.ref_key, _R.system, _R.entity, _R.source_id, canonical.label("canonical"),
                            _R.subject_key, _R.person_id, _R.deleted).where(_R.ref_key.in_(list(keys)))).all()
    return {r.ref_key: r for r in rows}


def persons_of_keys(s: Session, keys: Collection[str]) -> dict[str, str | None]:
    """The person each record of `keys` is linked to, by ref_key."""
    if not keys:
        return {}
    return dict(s.execute(select(_R.ref_key, _R.person_id).where(_R.ref_key.in_(list(keys)))).all())


def person_record_keys(s: Session, person_ids: Collection[str]) -> dict[str, str]:
    """ref_key -> person_id of the person records of `person_ids` (deleted ones too)."""
    if not person_ids:
        return {}
    return dict(s.execute(select(_R.ref_key, _R.person_id).where(
        _R.person_id.in_(list(person_ids)), _R.entity == "person")).all())


def households(s: Session, person_ids: Collection[str], *, same_address: bool = True) -> dict[str, set[str]]:
    """Each person and everyone linked to them by a relationship record or the same current
    address (postcode and first address line of the golden record), for all of `person_ids`."""
    members = {p: {p} for p in person_ids}
    if not members:
        return members
    keys = person_record_keys(s, members)
    if keys:
        related_of: dict[str, set[str]] = defaultdict(set)
        rels = s.execute(select(_R.subject_key, _R.canonical).where(
            _R.entity == "relationship", _R.deleted.is_(False), _R.subject_key.in_(list(keys)))).all()
        for subject, c in rels:
            if c.get("kind") in HOUSEHOLD_KINDS and c.get("related"):
                related_of[keys[subject]].add(ref_key(c["related"]))
        if related_of:
            person_of = persons_of_keys(s, set().union(*related_of.values()))
            for pid, related in related_of.items():
                members[pid] |= {person_of[k] for k in related if person_of.get(k)}
    if same_address:
        for pid, others in same_address_of(s, members).items():
            members[pid] |= others
    return members


def _first_line(lines: Any) -> str | None:
    return str(lines[0]).strip().lower() if lines else None


def same_address_of(s: Session, person_ids: Collection[str]) -> dict[str, set[str]]:
    """The persons (not merged away) at the same postcode and first address line as each of
    `person_ids`; the neighbours are read once per postcode, two columns each."""
    lines = PersonRow.golden[("values", "address", "lines")]
    me = {r.id: (r.postcode, _first_line(r.lines)) for r in s.execute(
        select(PersonRow.id, PersonRow.postcode, lines.label("lines")).where(PersonRow.id.in_(list(person_ids))))}
    postcodes = {pc for pc, first in me.values() if pc and first is not None}
    if not postcodes:
        return {}
    at: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in s.execute(select(PersonRow.id, PersonRow.postcode, lines.label("lines")).where(
            PersonRow.postcode.in_(postcodes), PersonRow.merged_into.is_(None))):
        first = _first_line(r.lines)
        if first is not None:
            at[(r.postcode, first)].add(r.id)
    return {pid: at.get((pc, first), set()) for pid, (pc, first) in me.items() if pc and first is not None}


def involvements(s: Session, person_ids: Collection[str]) -> dict[str, list[tuple[str, int, InvolvementFact]]]:
    """The involvements (not deleted) of each of `person_ids`, as (subject_key, id, fact) in
    that order, the order one query over a household's members returns them."""
    keys = person_record_keys(s, person_ids)
    out: dict[str, list[tuple[str, int, InvolvementFact]]] = defaultdict(list)
    if not keys:
        return out
    c = _R.canonical
    rows = s.execute(select(_R.id, _R.ref_key, _R.subject_key, c["service_category"].as_string().label("service"),
                            c["started_on"].as_string().label("started_on"),
                            c["ended_on"].as_string().label("ended_on"), c["team"].as_string().label("team"))
                     .where(_R.entity == "involvement", _R.deleted.is_(False), _R.subject_key.in_(list(keys)))
                     .order_by(_R.subject_key, _R.id)).all()
    for r in rows:
        fact = InvolvementFact(person_id=keys[r.subject_key], ref=r.ref_key, service_category=r.service,
                               started_on=dt.date.fromisoformat(r.started_on),
                               ended_on=dt.date.fromisoformat(r.ended_on) if r.ended_on else None, team=r.team)
        out[fact.person_id].append((r.subject_key, r.id, fact))
    return out


def facts_of(by_person: dict[str, list[tuple[str, int, InvolvementFact]]], members: Iterable[str]
             ) -> list[InvolvementFact]:
    """The involvements of a household's members, in the order of `involvements`."""
    return [f for _, _, f in sorted(x for m in members for x in by_person.get(m, ()))]


@dataclass
class RaisedAlerts:
    """The alerts of one rule that count as already raised (since the window began, or open):
    the services each covers, by person. `note` adds one raised in this batch."""

    by_person: dict[str, list[frozenset[str]]] = field(default_factory=dict)

    def covers(self, members: Iterable[str], services: set[str]) -> bool:
        """An alert for any of `members` covering all of `services`."""
        return any(services <= covered for m in members for covered in self.by_person.get(m, ()))

    def note(self, persons: Iterable[str], services: Iterable[str]) -> None:
        covered = frozenset(services)
        for p in persons:
            self.by_person.setdefault(p, []).append(covered)


def raised_alerts(s: Session, rule: str, since: dt.date, persons: Collection[str]) -> RaisedAlerts:
    """The alerts of `rule` raised since `since` or still open that name any of `persons`, found
    through hub_alert_person: the read is bounded by the people asked about, not by every alert."""
    out = RaisedAlerts()
    if not persons:
        return out
    about = select(AlertPersonRow.alert_id).where(AlertPersonRow.person_id.in_(list(persons)))
    for r in s.execute(select(AlertRow.persons, AlertRow.services).where(
            AlertRow.id.in_(about), AlertRow.rule == rule,
            or_(AlertRow.raised_at >= dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC),
                AlertRow.status == "open"))):
        out.note(r.persons, r.services)
    return out


def insert_alerts(s: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert `hub_alert` rows and their `hub_alert_person` rows; the new ids, in order."""
    if not rows:
        return []
    table = AlertRow.__table__
    ids = list(s.connection().execute(table.insert().returning(table.c.id, sort_by_parameter_order=True),
                                      rows).scalars())
    s.connection().execute(AlertPersonRow.__table__.insert(), [
        {"person_id": p, "alert_id": i} for i, row in zip(ids, rows, strict=True)
        for p in dict.fromkeys(row["persons"])])
    return ids
