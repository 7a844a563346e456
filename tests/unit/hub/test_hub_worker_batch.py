"""The records worker handles a batch set-based, with every guarantee of one record at a time."""

from __future__ import annotations

import datetime as dt
import json
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from canonical.messages import MessageType
from hub.identity.linker import IdentityLinker
from hub.identity.model_file import load_model
from hub.store.tables.identity import IdentityRecordRow
from hub.store.tables.messaging import OutboxRow
from hub.store.tables.records import PersonIdentifierRow, PersonRow, SourceRecordRow
from hub.worker import RecordsWorker
from routing.rules import load_routing
from tests.unit.bus.bus_records import valid_nhs_number
from tests.unit.hub.records_factory import deleted, involvement_record, person_record, upserted

DOB = dt.date(2015, 3, 2)
ROUTING = Path(__file__).resolve().parents[3] / "config" / "routing.toml"


@pytest.fixture
def worker(sqlite_store):
    return RecordsWorker(sqlite_store, linker=IdentityLinker(load_model()))


@contextmanager
def counted(store):
    """Count the SQL statements the store's engine runs (an executemany counts once)."""
    seen: list[str] = []

    def count(conn, cursor, statement, params, context, executemany):  # noqa: PLR0913 - SQLAlchemy's signature
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


def _people(n: int, start: int = 0) -> list:
    return [upserted(person_record("sys_a", f"A{i}", f"Given{i}", f"Family{i}", DOB + dt.timedelta(days=i),
                                   nhs=valid_nhs_number(i))) for i in range(start, start + n)]


def _person_of(store, ref_key: str) -> str | None:
    with store.transaction() as s:
        return s.execute(select(SourceRecordRow.person_id).where(SourceRecordRow.ref_key == ref_key)).scalar()


def _outbox(store, kind: MessageType) -> list[dict]:
    """The payloads of `kind` in the outbox, in order: one-event messages and the items of the
    batches that carry them (`route.changed.batch`, `identity.batch`)."""
    out: list[dict] = []
    with store.transaction() as s:
        for t, body in s.execute(select(OutboxRow.type, OutboxRow.body).order_by(OutboxRow.id)):
            payload = json.loads(body)["payload"]
            if t == kind.value:
                out.append(payload)
            elif t == MessageType.ROUTE_CHANGED_BATCH and kind == MessageType.ROUTE_CHANGED:
                out += payload["items"]
            elif t == MessageType.IDENTITY_BATCH:
                out += [i["payload"] for i in payload["items"] if i["type"] == kind.value]
    return out


def test_statements_per_batch_do_not_grow_with_the_batch(sqlite_store, worker):
    worker.handle(_people(20))  # a store that is not empty
    with counted(sqlite_store) as small:
        worker.handle(_people(50, start=1000))
    with counted(sqlite_store) as large:
        worker.handle(_people(200, start=2000))
    assert len(large) <= 40, large
    assert len(large) <= len(small) + 4  # bounded: not one more round trip per record
    with sqlite_store.transaction() as s:
        assert s.execute(select(func.count()).select_from(PersonRow)).scalar() == 270
        assert s.execute(select(func.count()).select_from(PersonIdentifierRow)).scalar() == 270


def test_an_older_version_after_the_newer_one_in_one_batch_is_ignored(sqlite_store, worker):
    v2 = person_record("sys_a", "C1", "Amelia", "Smith", DOB, version=2)
    v1 = person_record("sys_a", "C1", "Amy", "Smith", DOB, version=1)
    worker.handle([upserted(v2), upserted(v1)])
    with sqlite_store.transaction() as s:
        row = s.execute(select(SourceRecordRow)).scalar_one()
        assert (row.version, row.canonical["names"][0]["given"]) == (2, "Amelia")
        assert s.get(PersonRow, row.person_id).display_name == "Amelia Smith"


def test_the_same_record_twice_in_a_batch_is_one_person(sqlite_store, worker):
    v1 = person_record("sys_a", "C1", "Amy", "Smith", DOB, version=1)
    v2 = person_record("sys_a", "C1", "Amy", "Smith-Jones", DOB, version=2)
    other = person_record("sys_b", "B1", "Amy", "Smith", DOB)
    worker.handle([upserted(v1), upserted(v2), upserted(other)])
    with sqlite_store.transaction() as s:
        assert s.execute(select(func.count()).select_from(IdentityRecordRow)).scalar() == 2
        row = s.execute(select(SourceRecordRow).where(SourceRecordRow.ref_key == "sys_a/person/C1")).scalar_one()
        assert row.version == 2
        assert s.get(PersonRow, row.person_id).golden["members"]  # refreshed with the newest content


def test_delete_then_upsert_of_one_key_in_a_batch_leaves_the_upsert(sqlite_store, worker):
    rec = person_record("sys_a", "C1", "Amy", "Smith", DOB, version=1)
    worker.handle([upserted(rec)])
    pid = _person_of(sqlite_store, "sys_a/person/C1")
    v3 = person_record("sys_a", "C1", "Amy", "Smythe", DOB, version=3)
    worker.handle([deleted(rec, version=2), upserted(v3)])
    with sqlite_store.transaction() as s:
        row = s.execute(select(SourceRecordRow)).scalar_one()
        assert (row.deleted, row.version, row.person_id) == (False, 3, pid)
        assert s.get(PersonRow, pid).display_name == "Amy Smythe"
        assert s.get(IdentityRecordRow, "sys_a/person/C1") is not None


def test_upsert_then_delete_of_a_new_key_in_a_batch_links_nobody(sqlite_store, worker):
    rec = person_record("sys_a", "C1", "Amy", "Smith", DOB, version=1)
    worker.handle([upserted(rec), deleted(rec, version=2)])
    with sqlite_store.transaction() as s:
        row = s.execute(select(SourceRecordRow)).scalar_one()
        assert (row.deleted, row.version) == (True, 2)
        assert s.execute(select(func.count()).select_from(IdentityRecordRow)).scalar() == 0


def test_a_record_that_bridges_two_persons_of_the_batch_merges_them(sqlite_store, worker):
    nhs = valid_nhs_number(7)
    by_name = person_record("sys_a", "A1", "Amy", "Smith", DOB)
    by_nhs = person_record("sys_b", "B1", "Amelia", "Jones", DOB, nhs=nhs)
    bridge = person_record("sys_c", "C1", "Amy", "Smith", DOB, nhs=nhs)
    worker.handle([upserted(by_name), upserted(by_nhs), upserted(bridge)])
    persons = {_person_of(sqlite_store, f"{r.ref.key}") for r in (by_name, by_nhs, bridge)}
    assert len(persons) == 1
    (survivor,) = persons
    merged = _outbox(sqlite_store, MessageType.IDENTITY_MERGED)
    assert [m["person_id"] for m in merged] == [survivor]
    with sqlite_store.transaction() as s:
        retired = s.get(PersonRow, merged[0]["retired"])
        assert retired is not None and retired.merged_into == survivor  # the retired id redirects
        assert sorted(s.get(PersonRow, survivor).golden["members"]) == sorted(
            r.ref.key for r in (by_name, by_nhs, bridge))
        assert s.execute(select(func.count()).select_from(IdentityRecordRow).where(
            IdentityRecordRow.person_id == survivor)).scalar() == 3


def test_an_identical_re_announce_does_not_bump_the_person(sqlite_store, worker):
    rec = person_record("sys_a", "C1", "Amy", "Smith", DOB, nhs=valid_nhs_number(3))
    worker.handle([upserted(rec)])
    pid = _person_of(sqlite_store, "sys_a/person/C1")
    with sqlite_store.transaction() as s:
        version = s.get(PersonRow, pid).version
    worker.handle([upserted(rec)])  # a new message carrying the same record
    with sqlite_store.transaction() as s:
        assert s.get(PersonRow, pid).version == version
    changed = person_record("sys_a", "C1", "Amy", "Smythe", DOB, nhs=valid_nhs_number(3), version=2)
    worker.handle([upserted(changed)])
    with sqlite_store.transaction() as s:
        assert s.get(PersonRow, pid).version == version + 1


def test_events_carry_the_version_the_person_has_after_the_batch(sqlite_store, worker):
    a = person_record("sys_a", "A1", "Amy", "Smith", DOB, nhs=valid_nhs_number(5))
    b = person_record("sys_b", "B1", "Amy", "Smith", DOB, nhs=valid_nhs_number(5))
    worker.handle([upserted(a), upserted(b)])
    linked = _outbox(sqlite_store, MessageType.IDENTITY_LINKED)
    pid = _person_of(sqlite_store, "sys_a/person/A1")
    with sqlite_store.transaction() as s:
        assert {(e["person_id"], e["version"]) for e in linked} == {(pid, s.get(PersonRow, pid).version)}


def test_only_changes_a_route_or_alert_can_act_on_are_announced(sqlite_store):
    worker = RecordsWorker(sqlite_store, linker=IdentityLinker(load_model()), routing=load_routing(ROUTING))
    child = person_record("social_care", "C1", "Amy", "Smith", DOB)
    worker.handle([upserted(child), upserted(involvement_record("social_care", "R1", "C1"))])
    assert [c["ref"]["entity"] for c in _outbox(sqlite_store, MessageType.ROUTE_CHANGED)] == ["involvement"]
    moved = person_record("social_care", "C1", "Amy", "Smith", DOB, version=2, postcode="LS1 4AP")
    renamed = person_record("social_care", "C1", "Amy", "Smythe", DOB, version=3, postcode="LS1 4AP")
    worker.handle([upserted(moved)])
    worker.handle([upserted(renamed)])  # a name change from social care: no route, no alert
    announced = _outbox(sqlite_store, MessageType.ROUTE_CHANGED)
    assert [(c["ref"]["entity"], c["version"]) for c in announced] == [("involvement", 1), ("person", 2)]
    everything = RecordsWorker(sqlite_store, linker=IdentityLinker(load_model()))  # no config: every change
    everything.handle([upserted(person_record("education", "U1", "Ben", "Jones", DOB))])
    assert len(_outbox(sqlite_store, MessageType.ROUTE_CHANGED)) == 3
