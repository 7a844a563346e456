"""The records worker's outgoing events as batches: `route.changed.batch` (one per system and
transaction) and `identity.batch`, capped per message, their items parsed one by one (an invalid
item set aside with its reason), and the records they name noted for the console."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from canonical.messages import (
    EVENTS_PER_MESSAGE,
    Envelope,
    MessageType,
    batch_envelopes,
    carried_ref_keys,
    identity_item,
)
from hub.identity.linker import IdentityLinker
from hub.identity.model_file import load_model
from hub.outbox import add_to_outbox
from hub.routing_batch import change_items
from hub.routing_worker import note_change, publish_changes
from hub.store.tables.messaging import MessageRecordRow, OutboxRow
from hub.worker import RecordsWorker
from tests.unit.bus.bus_records import valid_nhs_number
from tests.unit.hub.records_factory import involvement_record, person_record, upserted

DOB = dt.date(2015, 3, 2)


def change(system: str, source_id: str, entity: str = "involvement", **extra) -> dict:
    return {"ref": {"system": system, "entity": entity, "source_id": source_id}, "version": 1, "created": True,
            "changed": {}, **extra}


def batch(*items) -> Envelope:
    return Envelope(type=MessageType.ROUTE_CHANGED_BATCH, source_system="social_care", payload={"items": list(items)})


def outbox(store) -> list[tuple[str, str, dict]]:
    with store.transaction() as s:
        return [(t, system, json.loads(body)["payload"]) for t, system, body in s.execute(
            select(OutboxRow.type, OutboxRow.source_system, OutboxRow.body).order_by(OutboxRow.id))]


def carried(store, message_id: str) -> set[str]:
    with store.transaction() as s:
        return set(s.execute(select(MessageRecordRow.ref_key).where(MessageRecordRow.message_id == message_id))
                   .scalars())


def test_batch_envelopes_cap_the_items_per_message_in_order():
    items = [change("social_care", f"ep-{i}") for i in range(5)]
    envelopes = batch_envelopes(MessageType.ROUTE_CHANGED_BATCH, "social_care", items, per_message=2)
    assert [len(e.payload["items"]) for e in envelopes] == [2, 2, 1]
    assert [i for e in envelopes for i in e.payload["items"]] == items
    assert {e.routing_key for e in envelopes} == {"route.changed.batch.social_care"}
    assert len({e.message_id for e in envelopes}) == 3
    assert batch_envelopes(MessageType.IDENTITY_BATCH, "identity", []) == []
    assert EVENTS_PER_MESSAGE == 500


def test_the_records_a_batch_names_are_its_refs_each_once():
    routes = batch(change("social_care", "ep-1"), change("social_care", "C1", "person"), change("social_care", "ep-1"),
                   {"ref": "not an object"}, 7)
    assert carried_ref_keys(routes) == ("social_care/involvement/ep-1", "social_care/person/C1")
    identity = Envelope(type=MessageType.IDENTITY_BATCH, source_system="identity", payload={"items": [
        identity_item(MessageType.IDENTITY_LINKED, {"person_id": "p1", "ref": "sys_a/person/A1"}),
        identity_item(MessageType.IDENTITY_MERGED, {"person_id": "p1", "retired": "p2",
                                                    "refs": ["sys_b/person/B1", "sys_a/person/A1"]}),
        {"type": "identity.linked"}, "junk"]})
    assert carried_ref_keys(identity) == ("sys_a/person/A1", "sys_b/person/B1")
    one = Envelope(type=MessageType.ROUTE_CHANGED, source_system="social_care", payload=change("social_care", "ep-1"))
    assert carried_ref_keys(one) == ()  # the journal names the record of a one-change message


def test_change_items_keep_the_valid_items_and_name_the_invalid_ones():
    env = batch(change("social_care", "ep-1"), {"ref": {"system": "social_care", "entity": "involvement"}},
                "not an object", change("social_care", "ep-2", created="yes"), change("social_care", "ep-3", changed=[1]),
                change("social_care", "C1", "person", created=False, changed={"address.postcode": "ZZ9 9ZZ"}))
    items, bad = change_items(env)
    assert [(i.index, i.key, i.created, i.changed) for i in items] == [
        (0, "social_care/involvement/ep-1", True, {}),
        (5, "social_care/person/C1", False, {"address.postcode": "ZZ9 9ZZ"})]
    assert all(i.message is env for i in items)
    assert [(b.index, b.reason) for b in bad] == [
        (1, "ref.source_id: missing or not a string"), (2, "a change is an object, not str"),
        (3, "created: 'yes' is not true or false"), (4, "changed: an object of paths, not list")]
    no_list = Envelope(type=MessageType.ROUTE_CHANGED_BATCH, source_system="social_care", payload={"items": {}})
    items, bad = change_items(no_list)
    assert items == [] and [(b.index, b.reason) for b in bad] == [(0, "a batch message carries a list under 'items'")]


def test_a_one_change_message_is_one_item_and_an_invalid_one_raises():
    env = Envelope(type=MessageType.ROUTE_CHANGED, source_system="social_care", payload=change("social_care", "ep-1"))
    (item,), bad = change_items(env)
    assert (item.index, item.key, bad) == (None, "social_care/involvement/ep-1", [])
    with pytest.raises(TypeError, match="ref: missing"):
        change_items(Envelope(type=MessageType.ROUTE_CHANGED, source_system="social_care", payload={"version": 1}))
    linked = Envelope(type=MessageType.IDENTITY_LINKED, source_system="identity", payload={"person_id": "p"})
    assert change_items(linked) == ([], [])


def test_publish_changes_sends_one_batch_per_system_capped_and_notes_its_records(sqlite_store):
    class Row:
        def __init__(self, system, entity, source_id, canonical):
            self.system, self.entity, self.source_id, self.canonical, self.version = (
                system, entity, source_id, canonical, 1)
            self.ref_key = f"{system}/{entity}/{source_id}"

    with sqlite_store.transaction() as s:
        for i in range(3):
            note_change(s, Row("social_care", "involvement", f"ep-{i}", {"team": "x"}), None)
        note_change(s, Row("education", "involvement", "ep-9", {"team": "y"}), None)
        note_change(s, Row("hub", "involvement", "ep-0", {"team": "z"}), None)  # the hub's own: not announced
        note_change(s, Row("social_care", "relationship", "r-1", {"kind": "parent"}), None)  # not routed
        assert publish_changes(s, per_message=2) == 4
        assert "route_changes" not in s.info
    sent = outbox(sqlite_store)
    assert [(t, system, len(p["items"])) for t, system, p in sent] == [
        ("route.changed.batch", "social_care", 2), ("route.changed.batch", "social_care", 1),
        ("route.changed.batch", "education", 1)]
    assert [i["ref"]["source_id"] for _t, _s, p in sent for i in p["items"]] == ["ep-0", "ep-1", "ep-2", "ep-9"]
    assert sent[0][2]["items"][0] == {"ref": {"system": "social_care", "entity": "involvement", "source_id": "ep-0"},
                                      "version": 1, "created": True, "changed": {}}
    with sqlite_store.transaction() as s:
        ids = list(s.execute(select(OutboxRow.message_id).order_by(OutboxRow.id)).scalars())
    assert carried(sqlite_store, ids[0]) == {"social_care/involvement/ep-0", "social_care/involvement/ep-1"}
    assert carried(sqlite_store, ids[2]) == {"education/involvement/ep-9"}
    with sqlite_store.transaction() as s:
        assert publish_changes(s) == 0  # nothing noted: no message
    assert len(outbox(sqlite_store)) == 3


def test_a_worker_transaction_publishes_one_message_of_each_kind(sqlite_store):
    worker = RecordsWorker(sqlite_store, linker=IdentityLinker(load_model()))
    records = [person_record("social_care", f"C{i}", f"Given{i}", f"Family{i}", DOB + dt.timedelta(days=i),
                             nhs=valid_nhs_number(i)) for i in range(12)]
    records.append(person_record("education", "U1", "Given0", "Family0", DOB, nhs=valid_nhs_number(0)))  # C0's match
    episodes = [involvement_record("social_care", f"R{i}", f"C{i}") for i in range(3)]
    worker.handle([upserted(r) for r in records + episodes])
    sent = outbox(sqlite_store)
    kinds = [(t, system) for t, system, _p in sent]
    assert kinds == [("route.changed.batch", "social_care"), ("route.changed.batch", "education"),
                     ("identity.batch", "identity")]  # the identity events are written as the transaction commits
    identity = sent[2][2]["items"]
    assert [i["type"] for i in identity] == ["identity.linked"] * 13
    assert {i["payload"]["ref"] for i in identity} == {r.ref.key for r in records}
    assert identity[-1]["payload"]["made_by"] == "rule" and identity[-1]["payload"]["previous_person_id"] is None
    with sqlite_store.transaction() as s:
        last = s.execute(select(OutboxRow.message_id).order_by(OutboxRow.id.desc())).scalars().first()
    assert carried(sqlite_store, last) == {r.ref.key for r in records}
    assert len(sent[0][2]["items"]) == 15 and len(sent[1][2]["items"]) == 1


def test_events_written_as_single_messages_are_noted_as_before(sqlite_store):
    """Other publishers (stewardship, rebuild) keep one event per message: the journal names it,
    no `message_record` rows are written for them."""
    one = Envelope(type=MessageType.IDENTITY_MERGED, source_system="identity",
                   payload={"person_id": "p1", "retired": "p2", "refs": ["sys_a/person/A1"]})
    with sqlite_store.transaction() as s:
        add_to_outbox(s, [one])
    assert carried(sqlite_store, str(one.message_id)) == set()
    assert [t for t, _s, _p in outbox(sqlite_store)] == ["identity.merged"]
