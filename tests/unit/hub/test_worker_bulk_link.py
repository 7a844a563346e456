"""Linking in bulk while the records worker is behind (hub/identity/bulk_link.py): new person
records are stored unlinked and held with the changes for the routing worker; once the backlog
is gone they are clustered at once, join the persons already stored where they match, and the
held changes are announced. A failure keeps them held; a held record deleted meanwhile is dropped."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from canonical.messages import Envelope, MessageType, batch_items
from hub import worker as worker_module
from hub.bus.bindings import DEFAULT_BINDINGS, RECORDS_QUEUE
from hub.bus.sqlite import StoreQueueBus
from hub.identity import bulk_link
from hub.identity.linker import IdentityLinker
from hub.identity.model_file import load_model
from hub.store.tables.identity import (
    IdentityAuditRow,
    IdentityLinkRow,
    IdentityPendingRow,
    RouteHeldRow,
)
from hub.store.tables.ingest import IngestRunRow
from hub.store.tables.messaging import OutboxRow
from hub.store.tables.records import PersonRow, SourceRecordRow
from hub.worker import RecordsWorker, run_worker
from tests.unit.hub.records_factory import involvement_record, person_record

PEOPLE = [("Ada", "Okafor", dt.date(2014, 6, 1), "AB1 2CD"), ("Bea", "Lindqvist", dt.date(2012, 3, 9), "AB3 4EF"),
          ("Cai", "Moreno", dt.date(2015, 11, 23), "AB5 6GH"), ("Dev", "Patel", dt.date(2011, 1, 30), "AB7 8JK"),
          ("Eli", "Novak", dt.date(2016, 8, 14), "AB9 1LM"), ("Fay", "Osei", dt.date(2013, 5, 2), "AB2 3NP")]


def _people(system: str, prefix: str) -> Envelope:
    items = [{"record": person_record(system, f"{prefix}{i}", g, f, dob, postcode=pc).model_dump(mode="json")}
             for i, (g, f, dob, pc) in enumerate(PEOPLE)]
    return Envelope(type=MessageType.RECORD_BATCH, source_system=system, payload={"items": items})


def _involvements(system: str, prefix: str) -> Envelope:
    items = [{"record": involvement_record(system, f"I{prefix}{i}", f"{prefix}{i}").model_dump(mode="json")}
             for i in range(len(PEOPLE))]
    return Envelope(type=MessageType.RECORD_BATCH, source_system=system, payload={"items": items})


def _worker(store, backlog: list[int]) -> RecordsWorker:
    worker = RecordsWorker(store, linker=IdentityLinker(load_model()), bulk_link_backlog=3, settle_s=0)
    worker.backlog = lambda: backlog[0]
    return worker


def _persons(store) -> dict[str, str | None]:
    with store.transaction() as s:
        return dict(s.execute(select(SourceRecordRow.ref_key, SourceRecordRow.person_id)
                              .where(SourceRecordRow.entity == "person", SourceRecordRow.deleted.is_(False))).all())


def _pending(store) -> list[str]:
    """The records held to link, and the source ids of the held route changes (as `route:<id>`)."""
    with store.transaction() as s:
        links = sorted(s.execute(select(IdentityPendingRow.ref_key)).scalars())
        routes = sorted(f"route:{p['ref']['source_id']}" for p in s.execute(select(RouteHeldRow.payload)).scalars())
    return links + routes


def _route_changes(store) -> list[str]:
    """The source ids of the records announced to the routing worker, one-change or batched."""
    with store.transaction() as s:
        envs = [Envelope.from_json(b) for b in s.execute(select(OutboxRow.body).where(OutboxRow.type.in_(
            [MessageType.ROUTE_CHANGED.value, MessageType.ROUTE_CHANGED_BATCH.value]))).scalars()]
    payloads = [p for e in envs for p in (batch_items(e.payload) if e.type == MessageType.ROUTE_CHANGED_BATCH
                                          else [e.payload])]
    return sorted(p["ref"]["source_id"] for p in payloads)


def test_behind_the_records_are_held_then_linked_at_once_with_the_changes_announced(store):
    backlog = [10]
    worker = _worker(store, backlog)
    worker.handle([_people("sys_a", "A"), _involvements("sys_a", "A")])
    worker.handle([_people("sys_b", "B")])
    assert set(_persons(store).values()) == {None}  # stored, not linked yet
    pending = _pending(store)
    assert [r for r in pending if "/" in r] == sorted(f"sys_{s}/person/{s.upper()}{i}" for s in "ab" for i in range(6))
    assert {r for r in pending if r.startswith("route:")} >= {f"route:IA{i}" for i in range(6)}
    assert _route_changes(store) == []  # not announced before the subjects have persons

    backlog[0] = 0  # caught up: this delivery is held too, then everything is linked
    worker.handle([_involvements("sys_b", "B")])
    worker.wait_for_release()
    assert worker.release_error is None
    persons = _persons(store)
    assert None not in persons.values()
    for i in range(len(PEOPLE)):
        assert persons[f"sys_a/person/A{i}"] == persons[f"sys_b/person/B{i}"]
    assert len(set(persons.values())) == len(PEOPLE)
    assert _pending(store) == []
    assert _route_changes(store) == sorted([f"IA{i}" for i in range(6)] + [f"IB{i}" for i in range(6)]
                                           + [f"{s}{i}" for s in "AB" for i in range(6)])
    with store.transaction() as s:
        names = dict(s.execute(select(PersonRow.id, PersonRow.display_name)).all())
        made_by = set(s.execute(select(IdentityLinkRow.made_by)).scalars())
    assert names[persons["sys_a/person/A0"]] == "Ada Okafor" and made_by == {bulk_link.MADE_BY}
    with store.transaction() as s:  # each link announced, as the incremental linker announces it
        events = [i for b in s.execute(select(OutboxRow.body).where(
            OutboxRow.type == MessageType.IDENTITY_BATCH.value)).scalars()
            for i in batch_items(Envelope.from_json(b).payload)]
    assert sorted(i["payload"]["ref"] for i in events) == sorted(persons)
    assert {i["type"] for i in events} == {"identity.linked"}
    assert all(i["payload"]["person_id"] == persons[i["payload"]["ref"]] for i in events)


def test_held_records_join_the_persons_already_linked(store):
    backlog = [0]
    worker = _worker(store, backlog)
    worker.handle([_people("sys_a", "A")])  # not behind: linked one batch at a time
    before = _persons(store)
    assert None not in before.values()
    backlog[0] = 10
    worker.handle([_people("sys_b", "B")])  # 6 held beside 6 linked: one clustering of all 12
    backlog[0] = 0
    worker.handle([_involvements("sys_b", "B")])
    worker.wait_for_release()
    after = _persons(store)
    assert {after[f"sys_b/person/B{i}"] for i in range(6)} == set(before.values())
    assert all(after[f"sys_b/person/B{i}"] == before[f"sys_a/person/A{i}"] for i in range(6))
    assert {k: v for k, v in after.items() if k.startswith("sys_a")} == before  # linked records keep their person


def test_few_held_beside_many_linked_are_placed_as_usual_and_a_deleted_one_is_dropped(store):
    backlog = [0]
    worker = _worker(store, backlog)
    worker.handle([_people("sys_a", "A")])
    before = _persons(store)
    backlog[0] = 10
    one = person_record("sys_b", "B0", *PEOPLE[0][:3], postcode=PEOPLE[0][3])
    gone = person_record("sys_b", "B9", "Zed", "Quinn", dt.date(2010, 1, 1))
    worker.handle([Envelope(type=MessageType.RECORD_BATCH, source_system="sys_b", payload={"items": [
        {"record": one.model_dump(mode="json")}, {"record": gone.model_dump(mode="json")}]})])
    worker.handle([Envelope(type=MessageType.RECORD_BATCH, source_system="sys_b", payload={"items": [
        {"deleted": {"ref": gone.ref.model_dump(mode="json"), "version": 2}}]})])
    assert [r for r in _pending(store) if "/" in r] == ["sys_b/person/B0", "sys_b/person/B9"]
    with store.transaction() as s:  # 2 held < a quarter of the 6 linked: placed one batch at a time
        assert bulk_link.pending_count(s) < bulk_link.linked_count(s) * 0.25 + 1
    backlog[0] = 0
    worker.handle([_involvements("sys_b", "B")])
    worker.wait_for_release()
    after = _persons(store)
    assert after["sys_b/person/B0"] == before["sys_a/person/A0"]
    assert "sys_b/person/B9" not in after and _pending(store) == []


def test_a_failed_bulk_link_keeps_the_records_held_and_the_next_delivery_retries(store, monkeypatch):
    backlog = [10]
    worker = _worker(store, backlog)
    worker.handle([_people("sys_a", "A")])
    real = bulk_link.link
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("store went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(bulk_link, "link", failing)
    backlog[0] = 0
    worker.handle([_involvements("sys_a", "A")])
    worker.wait_for_release()
    assert isinstance(worker.release_error, RuntimeError)
    assert set(_persons(store).values()) == {None} and len(_pending(store)) >= 6
    worker.handle([_people("sys_b", "B")])  # the next delivery: held too, then all linked
    worker.wait_for_release()
    persons = _persons(store)
    assert None not in persons.values() and len(set(persons.values())) == len(PEOPLE) and _pending(store) == []


def test_run_worker_reads_the_backlog_from_the_bus_and_links_before_returning(store):
    bus = StoreQueueBus(store, poll_interval_s=0.01)
    bus.declare(list(DEFAULT_BINDINGS))
    worker = RecordsWorker(store, linker=IdentityLinker(load_model()), bulk_link_backlog=3)
    bus.publish([_people("sys_a", "A"), _involvements("sys_a", "A"), _people("sys_b", "B"),
                 _involvements("sys_b", "B"), _people("sys_c", "C")])
    assert run_worker(bus, worker, batch_size=1, idle_timeout_s=0.0) == 5
    assert bus.stats(RECORDS_QUEUE).ready == 0
    persons = _persons(store)
    assert None not in persons.values() and _pending(store) == []
    for i in range(len(PEOPLE)):
        assert persons[f"sys_a/person/A{i}"] == persons[f"sys_b/person/B{i}"] == persons[f"sys_c/person/C{i}"]
    with store.transaction() as s:
        made_by = set(s.execute(select(IdentityLinkRow.made_by)).scalars())
    assert bulk_link.MADE_BY in made_by  # the first deliveries were behind: held, then linked in bulk


def test_with_bulk_linking_off_nothing_is_held(store):
    worker = RecordsWorker(store, linker=IdentityLinker(load_model()), bulk_link_backlog=0)
    worker.backlog = lambda: 1000
    worker.handle([_people("sys_a", "A"), _involvements("sys_a", "A")])
    assert None not in _persons(store).values() and _pending(store) == []
    assert len(_route_changes(store)) == 12


def test_held_records_wait_until_the_queue_has_stayed_empty_for_the_settle_time(store):
    backlog = [10]
    worker = RecordsWorker(store, linker=IdentityLinker(load_model()), bulk_link_backlog=3, settle_s=0.3)
    worker.backlog = lambda: backlog[0]
    worker.handle([_people("sys_a", "A")])
    backlog[0] = 0  # the producer pauses: not yet the end of the load
    worker.handle([_people("sys_b", "B")])
    worker.tick()
    worker.wait_for_release()
    assert set(_persons(store).values()) == {None}
    backlog[0] = 4  # more arrives: the quiet moment starts again
    worker.tick()
    time.sleep(0.35)
    worker.tick()  # (looked at most every TICK_S) the queue was not empty all along
    assert set(_persons(store).values()) == {None}
    backlog[0] = 0
    deadline = time.monotonic() + 5
    while None in _persons(store).values() and time.monotonic() < deadline:
        worker.tick()
        time.sleep(0.05)
    worker.wait_for_release()
    persons = _persons(store)
    assert None not in persons.values() and len(set(persons.values())) == len(PEOPLE) and _pending(store) == []


def _wait_linked(store, worker, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while None in _persons(store).values() and time.monotonic() < deadline:
        worker.tick()
        time.sleep(0.05)
    worker.wait_for_release()
    return None not in _persons(store).values()


def test_while_an_ingest_run_is_in_progress_the_queue_must_stay_empty_longer(store):
    with store.transaction() as s:
        s.add(run := IngestRunRow(system="sys_a", status="running", figures={}))
    worker = RecordsWorker(store, linker=IdentityLinker(load_model()), bulk_link_backlog=3, settle_s=0.1,
                           load_settle_s=1.5)
    backlog = [10]
    worker.backlog = lambda: backlog[0]
    worker.handle([_people("sys_a", "A")])
    backlog[0] = 0  # the ingest pauses: a second of quiet is not the end of the load
    assert not _wait_linked(store, worker, 1.0)
    assert _wait_linked(store, worker, 5.0)  # quiet for load_settle_s: the ingest may have died
    backlog[0] = 10
    worker.handle([_people("sys_b", "B")])  # held again: a second load
    assert None in _persons(store).values()
    with store.transaction() as s:
        s.execute(update(IngestRunRow).where(IngestRunRow.id == run.id).values(status="ok"))
    backlog[0] = 0
    started = time.monotonic()
    assert _wait_linked(store, worker, 5.0)  # no ingest in progress: settle_s is enough
    assert time.monotonic() - started < 1.0


def test_a_store_that_cannot_answer_while_idle_keeps_the_records_held_and_the_worker_alive(store, monkeypatch):
    worker = RecordsWorker(store, linker=IdentityLinker(load_model()), bulk_link_backlog=3, settle_s=0,
                           load_settle_s=60)
    backlog = [10]
    worker.backlog = lambda: backlog[0]
    worker.handle([_people("sys_a", "A")])
    backlog[0] = 0

    def down():
        raise OperationalError("select 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(store, "read", down)
    worker.tick()
    worker.tick()  # no error: the store is down, so an ingest may be running
    monkeypatch.undo()
    worker.wait_for_release()
    assert set(_persons(store).values()) == {None}


def test_more_than_bulk_link_max_records_are_linked_in_successive_clusterings(store):
    backlog = [10]
    worker = RecordsWorker(store, linker=IdentityLinker(load_model()), bulk_link_backlog=3, settle_s=0,
                           bulk_link_max_records=len(PEOPLE))  # 12 held: two clusterings of 6
    worker.backlog = lambda: backlog[0]
    worker.handle([_people("sys_a", "A"), _people("sys_b", "B")])
    backlog[0] = 0
    worker.handle([_involvements("sys_a", "A")])
    worker.wait_for_release()
    persons = _persons(store)
    assert None not in persons.values() and _pending(store) == []
    # the second clustering (sys_b's records) met the persons the first one wrote, through their blocks
    assert all(persons[f"sys_a/person/A{i}"] == persons[f"sys_b/person/B{i}"] for i in range(len(PEOPLE)))
    assert len(set(persons.values())) == len(PEOPLE)
    with store.transaction() as s:
        assert set(s.execute(select(IdentityLinkRow.made_by)).scalars()) == {bulk_link.MADE_BY}
        details = [a.detail for a in s.execute(select(IdentityAuditRow).where(IdentityAuditRow.action == "bulk-link")).scalars()]
    assert [(d["records"], d["chunks"], d["joined_existing"]) for d in details] == [(12, 2, 6)]


def test_behind_a_whole_chunk_held_is_linked_beside_the_load_and_announced_at_its_end(store):
    backlog = [10]
    worker = RecordsWorker(store, linker=IdentityLinker(load_model()), bulk_link_backlog=3, settle_s=0,
                           bulk_link_max_records=len(PEOPLE))
    worker.chunk_check_s = 0
    worker.backlog = lambda: backlog[0]
    worker.handle([_people("sys_a", "A"), _involvements("sys_a", "A")])  # a whole chunk held: linked now
    worker.wait_for_release()
    persons = _persons(store)
    assert None not in persons.values() and [r for r in _pending(store) if "/" in r] == []
    assert "route:IA0" in _pending(store) and _route_changes(store) == []  # announced at the load's end
    some_of_b = _people("sys_b", "B")
    some_of_b.payload["items"] = some_of_b.payload["items"][:3]
    worker.handle([some_of_b])  # fewer than a chunk: stays held
    worker.wait_for_release()
    assert [r for r in _pending(store) if "/" in r] == [f"sys_b/person/B{i}" for i in range(3)]
    backlog[0] = 0
    worker.handle([_involvements("sys_a", "A")])  # the load's end: the rest linked, every change announced
    worker.wait_for_release()
    persons = _persons(store)
    assert None not in persons.values() and _pending(store) == []
    assert all(persons[f"sys_a/person/A{i}"] == persons[f"sys_b/person/B{i}"] for i in range(3))
    assert {f"IA{i}" for i in range(len(PEOPLE))} <= set(_route_changes(store))


def test_more_held_than_placed_at_most_go_in_bulk_however_large_the_index(store, monkeypatch):
    """Placing loads the held records' blocks into a cold candidate index inside the write
    transaction; past `PLACE_AT_MOST` they are linked in bulk (which reads without the lock)."""
    monkeypatch.setattr(worker_module, "BULK_RATIO", 100.0)  # the index always "large"
    monkeypatch.setattr(worker_module, "PLACE_AT_MOST", 1)
    backlog = [0]
    worker = _worker(store, backlog)
    worker.handle([_people("sys_a", "A")])
    backlog[0] = 10
    worker.handle([_people("sys_b", "B")])
    backlog[0] = 0
    worker.handle([_involvements("sys_b", "B")])
    worker.wait_for_release()
    persons = _persons(store)
    assert all(persons[f"sys_a/person/A{i}"] == persons[f"sys_b/person/B{i}"] for i in range(len(PEOPLE)))
    with store.transaction() as s:
        made = dict(s.execute(select(IdentityLinkRow.ref_key, IdentityLinkRow.made_by)).all())
    assert {made[f"sys_b/person/B{i}"] for i in range(len(PEOPLE))} == {bulk_link.MADE_BY}
