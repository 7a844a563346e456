"""Golden records worked out before the write transaction (hub/persons.py: `prepare_persons`,
`changed_persons`, `write_persons`; used by hub/identity/bulk_link.py `_write`): the persons a
bulk link writes have the golden record, search keys and identifiers their records give, and a
person whose records or row another writer changed between the read and the write is worked out
again in the write, from what is stored then."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from hub.bench.identity_rebuild import _source_row
from hub.golden import golden_record
from hub.identity import bulk_link
from hub.identity.model_file import load_model
from hub.identity.synthetic import people
from hub.lifecycle import system_of_record
from hub.persons import changed_persons, name_key, prepare_persons, refresh_persons, write_persons
from hub.store.tables.records import PersonIdentifierRow, PersonRow, SourceRecordRow

NOW = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
_S = SourceRecordRow.__table__


def _hold(store, records, start: int = 0) -> None:
    rows = [{**_source_row(r, None, NOW), "observed_at": NOW + dt.timedelta(minutes=start + i)}
            for i, r in enumerate(records)]
    with store.transaction() as s:
        s.execute(_S.insert(), rows)
        bulk_link.hold(s, [r.ref for r in records])


def _assert_goldens_are_their_records(store) -> dict[str, PersonRow]:
    """Every live person's row is what hub.golden makes of its live records (in stored order)."""
    with store.read() as s:
        sor = system_of_record(s)
        members: dict[str, list[dict]] = {}
        for row_id, ref, pid, system, source_id, observed_at, canonical in s.execute(select(
                _S.c.id, _S.c.ref_key, _S.c.person_id, _S.c.system, _S.c.source_id, _S.c.observed_at, _S.c.canonical)
                .where(_S.c.entity == "person", _S.c.deleted.is_(False), _S.c.person_id.is_not(None))
                .order_by(_S.c.id)):
            members.setdefault(pid, []).append({"ref": ref, "system": system, "source_id": source_id,
                                                "observed_at": observed_at.isoformat(), "person": canonical})
        persons = {p.id: p for p in s.execute(select(PersonRow).where(PersonRow.merged_into.is_(None))).scalars()}
        idents: dict[str, list] = {}
        for pid, scheme, value, record_key in s.execute(select(
                PersonIdentifierRow.person_id, PersonIdentifierRow.scheme, PersonIdentifierRow.value,
                PersonIdentifierRow.record_key)):
            idents.setdefault(pid, []).append((scheme, value, record_key))
        s.expunge_all()
    assert set(members) <= set(persons)
    for pid, person in persons.items():
        if pid not in members:  # every record of it gone: an empty golden record
            assert person.golden == {} and person.family_key == "" and not idents.get(pid), pid
            continue
        golden = golden_record(members[pid], sor=sor)
        name, dob = golden["values"].get("name") or {}, golden["values"].get("birth_date")
        assert person.golden == golden, pid
        assert (person.family_key, person.given_key) == (name_key(name.get("family")), name_key(name.get("given")))
        assert person.birth_date == (dob["value"] if dob else None)
        assert sorted(idents.get(pid, [])) == sorted(
            (i["scheme"], i["value"], m["ref"]) for m in members[pid] for i in m["person"].get("identifiers", []))
    return persons


def test_a_bulk_link_writes_the_golden_records_and_identifiers_of_its_persons_records(store):
    model = load_model()
    records = list(people(160, seed=5))
    first_batch, second_batch = [r for i, r in enumerate(records) if i % 3], records[::3]
    _hold(store, first_batch)
    first = bulk_link.link(store, model, publish_events=False)
    _hold(store, second_batch, start=1000)
    second = bulk_link.link(store, model, publish_events=False)
    assert first.persons_created > 0 and second.joined_existing > 0  # new persons and persons grown
    persons = _assert_goldens_are_their_records(store)
    assert any(p.version > 1 for p in persons.values())  # written again by the second link


def test_a_change_between_the_read_and_the_write_is_worked_out_again_in_the_write(store, monkeypatch):
    model = load_model()
    records = list(people(160, seed=5))
    first_batch, second_batch = [r for i, r in enumerate(records) if i % 3], records[::3]
    _hold(store, first_batch)
    bulk_link.link(store, model, publish_events=False)
    _hold(store, second_batch, start=1000)
    real = bulk_link.prepare_persons
    seen: dict = {}

    def prepare_then_another_writer(session, ids, joining=None):
        prepared = real(session, ids, joining)
        if seen:
            return prepared
        renamed, refreshed = sorted(prepared.seen)[:2]  # two persons already stored
        gone = next(ref for ref, pid in sorted(prepared.joining.items()) if pid not in (renamed, refreshed))
        seen.update(prepared=prepared, renamed=renamed, refreshed=refreshed, gone=gone)
        with store.transaction() as s:  # other writers, between this read and the bulk write
            mine = [ref for ref, pid in prepared.joining.items() if pid == renamed]
            for row_id, canonical, updated_at in s.execute(select(_S.c.id, _S.c.canonical, _S.c.updated_at).where(
                    (_S.c.person_id == renamed) | _S.c.ref_key.in_(mine))).all():
                names = [{**n, "family": "Zzchanged"} for n in canonical["names"]]
                # as a writer that bumps neither version nor updated_at would
                s.execute(update(_S).where(_S.c.id == row_id).values(canonical={**canonical, "names": names},
                                                                     updated_at=updated_at))
            refresh_persons(s, [refreshed])  # a steward's change: the person's version moves on
            seen["refreshed_version"] = s.execute(select(PersonRow.version).where(PersonRow.id == refreshed)).scalar()
            s.execute(update(_S).where(_S.c.ref_key == gone).values(deleted=True))  # a held record deleted
        return prepared

    monkeypatch.setattr(bulk_link, "prepare_persons", prepare_then_another_writer)
    changed_in_write = []

    def changed(session, prepared):
        out = changed_persons(session, prepared)
        changed_in_write.append(out)
        return out

    monkeypatch.setattr(bulk_link, "changed_persons", changed)
    bulk_link.link(store, model, publish_events=False)
    prepared, renamed, refreshed = seen["prepared"], seen["renamed"], seen["refreshed"]
    gone_person = prepared.joining[seen["gone"]]
    assert changed_in_write[0] == {renamed, refreshed, gone_person}  # exactly those, the others as prepared
    persons = _assert_goldens_are_their_records(store)
    assert persons[renamed].family_key == "zzchanged" != prepared.fields[renamed]["family_key"]
    assert persons[refreshed].version == seen["refreshed_version"] + 1  # not the version read + 1 again
    assert seen["gone"] not in persons[gone_person].golden.get("members", [])


def test_changed_persons_names_the_persons_changed_and_a_redirect_is_not_written(store):
    model = load_model()
    _hold(store, list(people(60, seed=7)))
    bulk_link.link(store, model, publish_events=False)
    with store.read() as s:
        ids = sorted(s.execute(select(PersonRow.id)).scalars())
        prepared = prepare_persons(s, ids)
    with store.read() as s:
        assert changed_persons(s, prepared) == set()
    merged, moved_from, moved_to = ids[0], ids[1], ids[2]
    with store.transaction() as s:
        s.execute(update(PersonRow).where(PersonRow.id == merged).values(merged_into=ids[-1]))
        ref = s.execute(select(_S.c.ref_key).where(_S.c.person_id == moved_from).limit(1)).scalar()
        s.execute(update(_S).where(_S.c.ref_key == ref).values(person_id=moved_to))
    with store.transaction() as s:
        changed = changed_persons(s, prepared)
        assert changed == {merged, moved_from, moved_to}
        version = s.execute(select(PersonRow.version).where(PersonRow.id == merged)).scalar()
        assert write_persons(s, prepared, changed) == len(ids) - 1  # the redirect keeps no golden record
        assert s.execute(select(PersonRow.version).where(PersonRow.id == merged)).scalar() == version
    with store.read() as s:
        golden = {p.id: p.golden for p in s.execute(select(PersonRow)).scalars()}
    assert ref in golden[moved_to]["members"] and ref not in golden[moved_from].get("members", [])
