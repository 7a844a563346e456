"""The records worker takes `source.record.batch` messages: every record applied as if it came
alone, an invalid item quarantined with its reason while the rest of the batch is applied, a
redelivered batch a no-op, and a delivery applied in transactions of about
`records_per_transaction` records."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from canonical.messages import Envelope, MessageType
from hub.bus.journal import StoreJournal
from hub.identity.linker import IdentityLinker
from hub.identity.model_file import load_model
from hub.store.tables.messaging import InboxRow, MessageJournalRow
from hub.store.tables.records import QuarantineRow, SourceRecordRow
from hub.worker import RecordsWorker, _transactions
from hub.worker_batch import parse_message
from tests.unit.hub.records_factory import involvement_record, person_record

DOB = dt.date(2014, 6, 1)


def _batch(*items: dict) -> Envelope:
    return Envelope(type=MessageType.RECORD_BATCH, source_system="sys_a", payload={"items": list(items)})


def _person(source_id: str, given: str, version: int = 1) -> dict:
    return {"record": person_record("sys_a", source_id, given, "Okafor", DOB, version=version).model_dump(mode="json")}


def _live(store) -> dict[str, int]:
    with store.transaction() as s:
        return dict(s.execute(select(SourceRecordRow.ref_key, SourceRecordRow.version)
                              .where(SourceRecordRow.deleted.is_(False))).all())


def test_a_batch_applies_every_record_and_quarantines_only_the_invalid_item(store):
    worker = RecordsWorker(store, linker=IdentityLinker(load_model()), journal=StoreJournal(store))
    inv = {"record": involvement_record("sys_a", "I1", "P1").model_dump(mode="json")}
    bad = {"record": {**_person("P9", "Ada")["record"], "version": "not a number"}}
    env = _batch(_person("P1", "Ada"), bad, inv, {"nonsense": 1})
    worker.handle([env])
    assert _live(store) == {"sys_a/person/P1": 1, "sys_a/involvement/I1": 1}
    with store.transaction() as s:
        entries = s.execute(select(QuarantineRow).order_by(QuarantineRow.id)).scalars().all()
        assert [(q.system, q.status, q.source_id) for q in entries] == [("sys_a", "open", None)] * 2
        assert "version" in entries[0].reasons[0] and entries[0].raw["item"] == bad
        assert entries[0].location == f"message {env.message_id}, item 1"
        assert "record" in entries[1].reasons[0]
        detail = s.execute(select(MessageJournalRow.detail).where(
            MessageJournalRow.message_id == str(env.message_id), MessageJournalRow.event == "processed")).scalar()
    assert detail == "2 record(s), 2 quarantined (invalid)"


def test_a_redelivered_batch_is_a_no_op_and_deletions_apply_in_order(store):
    worker = RecordsWorker(store, linker=IdentityLinker(load_model()))
    first = _batch(_person("P1", "Ada"), _person("P2", "Bea"))
    worker.handle([first])
    worker.handle([first])  # redelivered: the inbox has it
    later = _batch(_person("P1", "Ada", version=2),
                   {"deleted": {"ref": {"system": "sys_a", "entity": "person", "source_id": "P2"}, "version": 2}})
    worker.handle([later])
    assert _live(store) == {"sys_a/person/P1": 2}
    with store.transaction() as s:
        assert s.execute(select(InboxRow.message_id)).scalars().all().__len__() == 2
        assert s.execute(select(QuarantineRow.id)).first() is None


def test_a_delivery_is_applied_in_transactions_of_about_records_per_transaction(store):
    envs = [_batch(*[_person(f"P{b}{i}", f"N{b}{i}") for i in range(3)]) for b in range(4)]
    parsed = [(e, *parse_message(e)) for e in envs]
    assert [len(g) for g in _transactions(parsed, 6)] == [2, 2]
    assert [len(g) for g in _transactions(parsed, 2)] == [1, 1, 1, 1]  # a message is never split
    commits = []
    worker = RecordsWorker(store, linker=IdentityLinker(load_model()), records_per_transaction=6)
    original = worker._handle
    worker._handle = lambda group, **kw: (commits.append(len(group)), original(group, **kw))
    worker.handle(envs)
    assert commits == [2, 2] and len(_live(store)) == 12
