"""`Envelope.from_json` parses a body into Python objects and then validates it (cheaper than
JSON-mode validation of a `dict[str, Any]` payload): it must accept exactly the bodies JSON-mode
validation accepts, give the same envelope, and raise the same errors. And a record batch read
that way still names every malformed item with its reason, while an invalid one-record message
still raises."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from pydantic import ValidationError

from canonical.messages import Envelope, MessageType
from hub.worker_batch import parse_message
from tests.unit.hub.records_factory import person_record

DOB = dt.date(2015, 3, 9)


def _record(source_id: str = "P1") -> dict:
    return person_record("sys_a", source_id, "Ada", "Okafor", DOB, version=2).model_dump(mode="json")


def _body(**changes: object) -> dict:
    body = json.loads(Envelope(type=MessageType.RECORD_BATCH, source_system="sys_a",
                               payload={"items": [{"record": _record()}]}).to_json())
    body.update(changes)
    return body


VALID = [
    _body(),
    _body(correlation_id=str(uuid.uuid4())),
    _body(occurred_at="2026-12-06T09:59:06+01:00"),
    _body(occurred_at=1765015146),  # a unix time, as JSON-mode validation accepts
    _body(payload={}),
    {k: v for k, v in _body().items() if k not in ("message_id", "schema_version", "occurred_at")},
]

INVALID = [
    "not json at all",
    "{\"type\": ",
    "[]",
    "\"a string\"",
    "null",
    json.dumps(_body(type="no.such.type")),
    json.dumps(_body(message_id="not-a-uuid")),
    json.dumps(_body(message_id=12)),
    json.dumps(_body(occurred_at="yesterday")),
    json.dumps(_body(source_system=5)),
    json.dumps(_body(schema_version=1.0)),
    json.dumps(_body(payload=[1, 2])),
    json.dumps(_body(extra_field=True)),
    json.dumps({k: v for k, v in _body().items() if k != "payload"}),
]


@pytest.mark.parametrize("body", VALID)
@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_valid_body_gives_the_envelope_json_mode_validation_gives(body, as_bytes):
    data = json.dumps(body).encode() if as_bytes else json.dumps(body)
    defaulted = {"message_id", "occurred_at"} - body.keys()  # a fresh uuid and the time now: not compared
    env, expected = Envelope.from_json(data), Envelope.model_validate_json(data)
    assert env.model_dump(exclude=defaulted) == expected.model_dump(exclude=defaulted)
    if not defaulted:
        assert env.to_json() == expected.to_json()


@pytest.mark.parametrize("data", INVALID + [b"\xff\xfe not utf-8"])
def test_an_invalid_body_raises_the_error_json_mode_validation_raises(data):
    with pytest.raises(ValidationError) as expected:
        Envelope.model_validate_json(data)
    with pytest.raises(ValidationError) as got:
        Envelope.from_json(data)
    assert got.value.errors() == expected.value.errors()
    assert str(got.value) == str(expected.value)
    assert got.value.__context__ is None and got.value.__cause__ is None  # one error, as before


def test_every_malformed_item_of_a_batch_is_named_with_its_reason():
    good = {"record": _record("P1")}
    items = [
        good,
        {"record": {**_record("P2"), "version": "two"}},
        {"record": {**_record("P3"), "raw": ["not", "an", "object"]}},
        {"record": {**_record("P4"), "canonical": None}},
        {"record": {**_record("P5"), "surplus": 1}},
        {"record": good["record"], "deleted": {"ref": good["record"]["ref"]}},
        {"nonsense": 1},
        ["not", "a", "dict"],
        {"deleted": {"version": 3}},
        {"deleted": {"ref": {**good["record"]["ref"], "entity": "spaceship"}, "version": 3}},
        {"deleted": {"ref": good["record"]["ref"], "version": 3}},
    ]
    env = Envelope.from_json(Envelope(type=MessageType.RECORD_BATCH, source_system="sys_a",
                                      payload={"items": items}).to_json())
    ops, bad = parse_message(env)
    assert [(op.key, op.version, op.record is None) for op in ops] == [
        ("sys_a/person/P1", 2, False), ("sys_a/person/P1", 3, True)]
    assert ops[0].record.raw == good["record"]["raw"] and ops[0].record.canonical == good["record"]["canonical"]
    assert [b.index for b in bad] == list(range(1, 10))
    reasons = [b.reason for b in bad]
    assert reasons[0].startswith("version: ")
    assert reasons[1].startswith("raw: ")
    assert reasons[2].startswith("canonical: ")
    assert reasons[3].startswith("surplus: ")
    assert reasons[4:7] == ["ValueError: an item is {\"record\": …} or {\"deleted\": …}"] * 3
    assert reasons[7] == "KeyError: 'ref'"
    assert reasons[8].startswith("entity: ")
    assert [b.item for b in bad] == items[1:10]


def test_an_invalid_one_record_message_still_raises():
    env = Envelope.from_json(Envelope(type=MessageType.RECORD_UPSERTED, source_system="sys_a",
                                      payload={**_record(), "version": "two"}).to_json())
    with pytest.raises(ValidationError):
        parse_message(env)
    ok = Envelope.from_json(Envelope(type=MessageType.RECORD_UPSERTED, source_system="sys_a",
                                     payload=_record()).to_json())
    ops, bad = parse_message(ok)
    assert [(op.key, op.version) for op in ops] == [("sys_a/person/P1", 2)] and bad == []
