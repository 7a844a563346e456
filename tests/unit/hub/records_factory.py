"""Builds canonical source records for tests of the hub path."""

from __future__ import annotations

import datetime as dt

from canonical import (
    EntityKind, Identifier, Involvement, PartialDate, Person, PersonName, Provenance, SourceRecord, SourceRef,
    content_hash,
)
from canonical.messages import Envelope, MessageType

NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.timezone.utc)


def person_record(system: str, source_id: str, given: str, family: str, dob: dt.date | None,
                  nhs: str | None = None, version: int = 1, postcode: str | None = None) -> SourceRecord:
    raw = {"id": source_id, "given": given, "family": family, "dob": dob.isoformat() if dob else None,
           "nhs": nhs, "v": version}
    person = Person(names=(PersonName(given=given, family=family),),
                    birth_date=PartialDate(value=dob) if dob else None,
                    identifiers=(Identifier(scheme="nhs_number", value=nhs),) if nhs else (),
                    addresses=({"postcode": postcode},) if postcode else ())
    return SourceRecord(ref=SourceRef(system=system, entity=EntityKind.PERSON, source_id=source_id),
                        content_hash=content_hash(raw), observed_at=NOW + dt.timedelta(minutes=version),
                        version=version, provenance=Provenance(adapter="test", location="factory", extracted_at=NOW),
                        raw=raw, canonical=person.model_dump(mode="json"))


def involvement_record(system: str, source_id: str, subject_id: str, category: str = "social_care",
                       kind: str = "referral", started: dt.date = dt.date(2026, 1, 5)) -> SourceRecord:
    raw = {"id": source_id, "subject": subject_id, "kind": kind}
    inv = Involvement(subject=SourceRef(system=system, entity=EntityKind.PERSON, source_id=subject_id),
                      service_category=category, kind=kind, started_on=started)
    return SourceRecord(ref=SourceRef(system=system, entity=EntityKind.INVOLVEMENT, source_id=source_id),
                        content_hash=content_hash(raw), observed_at=NOW, version=1,
                        provenance=Provenance(adapter="test", location="factory", extracted_at=NOW),
                        raw=raw, canonical=inv.model_dump(mode="json"))


def upserted(record: SourceRecord) -> Envelope:
    return Envelope(type=MessageType.RECORD_UPSERTED, source_system=record.ref.system,
                    payload=record.model_dump(mode="json"))


def deleted(record: SourceRecord, version: int) -> Envelope:
    return Envelope(type=MessageType.RECORD_DELETED, source_system=record.ref.system,
                    payload={"ref": record.ref.model_dump(mode="json"), "version": version})
