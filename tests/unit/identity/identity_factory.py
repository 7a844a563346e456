"""Building features, canonical persons and source records for identity tests."""

from __future__ import annotations

import datetime as dt
import itertools

from canonical import Person, Provenance, SourceRecord, SourceRef, content_hash
from canonical.codes import EntityKind
from canonical.messages import Envelope, MessageType
from identity_index.features import PersonFeatures, features_from_canonical

_serial = itertools.count(1)


def person_json(given: str | None = "Amy", family: str | None = "Smith", dob: str | None = "2015-03-02", *,
                sex: str = "female", postcode: str | None = "NE1 4AB", nhs: str | None = None,
                upn: str | None = None, precision: str = "day", previous_family: str | None = None,
                extra_postcodes: tuple[str, ...] = ()) -> dict:
    names = [{"given": given, "family": family, "type": "legal"}]
    if previous_family:
        names.append({"given": given, "family": previous_family, "type": "previous"})
    person: dict = {"names": names, "sex": sex, "identifiers": [], "addresses": []}
    if dob:
        person["birth_date"] = {"value": dob, "precision": precision}
    if nhs:
        person["identifiers"].append({"scheme": "nhs_number", "value": nhs})
    if upn:
        person["identifiers"].append({"scheme": "upn", "value": upn})
    for pc in ((postcode,) if postcode else ()) + extra_postcodes:
        person["addresses"].append({"postcode": pc, "lines": []})
    return person


def feat(given: str | None = "Amy", family: str | None = "Smith", dob: str | None = "2015-03-02", *,
         ref: str | None = None, **kw) -> PersonFeatures:
    return features_from_canonical(ref or f"test/person/{next(_serial)}", person_json(given, family, dob, **kw))


def day(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
_version = itertools.count(1)


def record(system: str, source_id: str, *args, **kw) -> SourceRecord:
    person = person_json(*args, **kw)
    Person.model_validate(person)
    return SourceRecord(ref=SourceRef(system=system, entity=EntityKind.PERSON, source_id=source_id),
                        content_hash=content_hash(person), observed_at=NOW, version=next(_version),
                        provenance=Provenance(adapter="test", location="identity", extracted_at=NOW),
                        raw=person, canonical=person)


def relationship(system: str, source_id: str, child: str, parent: str) -> SourceRecord:
    rel = {"subject": {"system": system, "entity": "person", "source_id": child},
           "related": {"system": system, "entity": "person", "source_id": parent}, "kind": "parent", "period": None}
    return SourceRecord(ref=SourceRef(system=system, entity=EntityKind.RELATIONSHIP, source_id=source_id),
                        content_hash=content_hash(rel), observed_at=NOW, version=next(_version),
                        provenance=Provenance(adapter="test", location="identity", extracted_at=NOW),
                        raw=rel, canonical=rel)


def upserted_envelope(r: SourceRecord) -> Envelope:
    return Envelope(type=MessageType.RECORD_UPSERTED, source_system=r.ref.system, payload=r.model_dump(mode="json"))
