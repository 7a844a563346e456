"""The ingest announces records in `source.record.batch` messages: each body parses as an
`Envelope`, its items are the records (as `announce` would send them one by one) and the
deletions of keys a row no longer produces, in order, at most `per_message` per message."""

from __future__ import annotations

import datetime as dt
import json

from canonical.codes import EntityKind
from canonical.messages import Envelope, MessageType, batch_items
from canonical.records import Provenance, SourceRecord, SourceRef
from hub.ingest import RecordMessages, _versioned, announce


def _record(source_id: str) -> SourceRecord:
    at = dt.datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=dt.UTC)
    return SourceRecord(ref=SourceRef(system="early_help", entity=EntityKind.PERSON, source_id=source_id),
                        content_hash="ab" * 32, observed_at=dt.datetime(2025, 1, 2, 3, 4, 5), version=0,
                        provenance=Provenance(adapter="sql", location="clients[7]", mapping_version="m1",
                                              extracted_at=at),
                        raw={"Name": "Zoë \"Q\" O'Neil\n", "score": 1.5, "n": 3, "none": None, "list": ["a", 2]},
                        canonical={"names": [{"given": "Zoë", "family": "O'Neil"}], "sex": "female"})


def test_a_batch_body_is_an_envelope_whose_items_are_the_records_as_announce_sends_them():
    occurred = dt.datetime(2026, 11, 25, 18, 0, 0, 123456, tzinfo=dt.UTC)
    records = [_record("7"), _record("7-b")]
    announced = RecordMessages("early_help", occurred)
    announced.announce(records, 4, [])
    [message] = announced.messages()
    envelope = Envelope.from_json(message.body)
    assert (envelope.type, envelope.source_system, envelope.occurred_at) == (MessageType.RECORD_BATCH,
                                                                             "early_help", occurred)
    assert str(envelope.message_id) == message.message_id and message.type == "source.record.batch"
    assert [i["record"] for i in batch_items(envelope.payload)] == [_versioned(r, 4) for r in records]
    assert message.ref_keys == ("early_help/person/7", "early_help/person/7-b") and message.ref_key is None
    assert len(announced) == 2


def test_keys_the_row_no_longer_produces_are_deleted_in_the_same_batch_as_announce_does():
    occurred = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    previous = ["early_help/person/7", "early_help/involvement/old"]
    announced = RecordMessages("early_help", occurred)
    announced.announce([_record("7")], 2, previous)
    envelopes = announce("early_help", [_record("7")], 2, previous)
    items = batch_items(json.loads(announced.messages()[0].body)["payload"])
    assert [next(iter(i)) for i in items] == ["record", "deleted"]
    assert items[1]["deleted"] == envelopes[1].payload


def test_deleted_rows_and_the_limit_per_message():
    announced = RecordMessages("early_help", dt.datetime(2026, 11, 25, tzinfo=dt.UTC), per_message=2)
    announced.announce([_record(str(i)) for i in range(3)], 1, [])
    announced.delete(["early_help/person/9"], 5)
    messages = announced.messages()
    assert [len(m.ref_keys) for m in messages] == [2, 2]
    assert len({m.message_id for m in messages}) == 2
    last = batch_items(Envelope.from_json(messages[1].body).payload)
    assert last[1] == {"deleted": {"ref": {"system": "early_help", "entity": "person", "source_id": "9"},
                                   "version": 5}}
