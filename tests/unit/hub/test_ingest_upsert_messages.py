"""The ingest's upsert messages are serialised in one pass per record, byte for byte what the
envelope `announce` builds would serialise to."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from canonical.codes import EntityKind
from canonical.messages import Envelope, MessageType
from canonical.records import Provenance, SourceRecord, SourceRef
from hub.ingest import UpsertMessages, _versioned, announce


def _record(source_id: str) -> SourceRecord:
    at = dt.datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=dt.UTC)
    return SourceRecord(ref=SourceRef(system="early_help", entity=EntityKind.PERSON, source_id=source_id),
                        content_hash="ab" * 32, observed_at=dt.datetime(2025, 1, 2, 3, 4, 5), version=0,
                        provenance=Provenance(adapter="sql", location="clients[7]", mapping_version="m1",
                                              extracted_at=at),
                        raw={"Name": "Zoë \"Q\" O'Neil\n", "score": 1.5, "n": 3, "none": None, "list": ["a", 2]},
                        canonical={"names": [{"given": "Zoë", "family": "O'Neil"}], "sex": "female"})


def test_bodies_are_byte_for_byte_the_envelopes_json():
    occurred = dt.datetime(2026, 11, 25, 18, 0, 0, 123456, tzinfo=dt.UTC)
    records = [_record("7"), _record("7-b")]
    messages = UpsertMessages("early_help", occurred).announce(records, 4, [])
    assert [m.ref_key for m in messages] == ["early_help/person/7", "early_help/person/7-b"]
    for message, record in zip(messages, records, strict=True):
        expected = Envelope(message_id=uuid.UUID(message.message_id), type=MessageType.RECORD_UPSERTED,
                            source_system="early_help", occurred_at=occurred, payload=_versioned(record, 4))
        assert message.body == expected.to_json()
        assert (message.type, message.source_system) == ("source.record.upserted", "early_help")
        assert json.loads(message.body)["payload"]["version"] == 4


def test_keys_the_row_no_longer_produces_are_announced_deleted_as_announce_does():
    occurred = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    previous = ["early_help/person/7", "early_help/involvement/old"]
    messages = UpsertMessages("early_help", occurred).announce([_record("7")], 2, previous)
    envelopes = announce("early_help", [_record("7")], 2, previous)
    assert [m.type for m in messages] == [e.type.value for e in envelopes]
    deleted = json.loads(messages[1].body)
    assert deleted["payload"] == envelopes[1].payload and messages[1].ref_key == "early_help/involvement/old"
