"""A small family across every service, loaded through the real path (outbox → bus → worker →
store), for the access tests: Amy Smith (known to all seven services), her mother Jane, and the
twins Tom and Tim Twin who differ only in that Tom is also known to youth justice."""

from __future__ import annotations

import datetime as dt
from typing import Any

from canonical import (
    EntityKind,
    Identifier,
    Involvement,
    PartialDate,
    Person,
    PersonName,
    Provenance,
    Relationship,
    SourceRecord,
    SourceRef,
    content_hash,
)
from canonical.codes import ServiceCategory
from canonical.messages import Envelope, MessageType
from hub.bootstrap import Hub, bootstrap
from hub.config import HubConfig
from hub.outbox import add_to_outbox
from hub.worker import run_worker

NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 20)
AMY_NHS = "9434765919"
JANE_NHS = "9434765870"
CATEGORIES = [c.value for c in ServiceCategory]
KIND = {"social_care": "looked_after", "youth_justice": "order", "early_help": "plan", "education": "exclusion",
        "youth_service": "session", "childrens_centres": "registration", "health": "episode"}
SUMMARY_TEXT = "Detail only a full-level role may read"


def _prov() -> Provenance:
    return Provenance(adapter="test", location="access_estate", extracted_at=NOW)


def person(system: str, source_id: str, given: str, family: str, dob: dt.date, *, nhs: str | None = None,
           line: str = "1 High Street", postcode: str = "DE1 1AA", ethnicity: str | None = "White British",
           health: tuple[str, ...] = ("asthma",), phone: str | None = "07700900123") -> SourceRecord:
    p = Person(names=(PersonName(given=given, family=family),), birth_date=PartialDate(value=dob),
               identifiers=((Identifier(scheme="nhs_number", value=nhs),) if nhs else ())
               + (Identifier(scheme="local", value=source_id, issuer=system),),
               addresses=({"lines": (line,), "town": "Derby", "postcode": postcode},),
               contacts=({"kind": "mobile", "value": phone},) if phone else (),
               ethnicity=ethnicity, first_language="English", health_conditions=health)
    raw = {"id": source_id, "given": given, "family": family}
    return SourceRecord(ref=SourceRef(system=system, entity=EntityKind.PERSON, source_id=source_id),
                        content_hash=content_hash(raw), observed_at=NOW, version=1, provenance=_prov(), raw=raw,
                        canonical=p.model_dump(mode="json"))


def involvement(system: str, source_id: str, subject: str, category: str, *, worker: str | None = None,
                team: str | None = None, started: dt.date = dt.date(2026, 9, 1), ended: dt.date | None = None,
                sensitivity: str = "normal") -> SourceRecord:
    inv = Involvement(subject=SourceRef(system=system, entity=EntityKind.PERSON, source_id=subject),
                      service_category=category, kind=KIND[category], started_on=started, ended_on=ended,
                      status="closed" if ended else "open", allocated_worker=worker, team=team,
                      sensitivity=sensitivity, summary=SUMMARY_TEXT)
    raw = {"id": source_id, "subject": subject}
    return SourceRecord(ref=SourceRef(system=system, entity=EntityKind.INVOLVEMENT, source_id=source_id),
                        content_hash=content_hash(raw), observed_at=NOW, version=1, provenance=_prov(), raw=raw,
                        canonical=inv.model_dump(mode="json"))


def relationship(system: str, source_id: str, subject: str, related: str, kind: str) -> SourceRecord:
    rel = Relationship(subject=SourceRef(system=system, entity=EntityKind.PERSON, source_id=subject),
                       related=SourceRef(system=system, entity=EntityKind.PERSON, source_id=related), kind=kind)
    raw = {"id": source_id}
    return SourceRecord(ref=SourceRef(system=system, entity=EntityKind.RELATIONSHIP, source_id=source_id),
                        content_hash=content_hash(raw), observed_at=NOW, version=1, provenance=_prov(), raw=raw,
                        canonical=rel.model_dump(mode="json"))


def estate_records() -> list[SourceRecord]:
    amy_dob = dt.date(2015, 3, 2)
    records = []
    for category in CATEGORIES:  # one system per service, named after its category
        records.append(person(category, f"{category[:2].upper()}-AMY", "Amy", "Smith", amy_dob, nhs=AMY_NHS))
        records.append(involvement(category, f"{category[:2].upper()}-INV-AMY", f"{category[:2].upper()}-AMY",
                                   category, worker="Sam Worker" if category == "social_care" else None,
                                   team="Team North" if category == "social_care" else f"{category} team"))
    records.append(person("social_care", "SO-JANE", "Jane", "Smith", dt.date(1988, 6, 1), nhs=JANE_NHS, health=()))
    records.append(person("early_help", "EA-JANE", "Jane", "Smith", dt.date(1988, 6, 1), nhs=JANE_NHS, health=()))
    records.append(involvement("early_help", "EA-INV-JANE", "EA-JANE", "early_help", worker="Erin Helper"))
    records.append(relationship("social_care", "SO-REL-1", "SO-AMY", "SO-JANE", "parent"))
    twin_dob = dt.date(2012, 5, 5)
    for given, nhs in (("Tom", "9434765838"), ("Tim", "9434765846")):
        records.append(person("education", f"ED-{given.upper()}", given, "Twin", twin_dob, nhs=nhs,
                              line="9 Low Road", postcode="DE2 2BB"))
        records.append(involvement("education", f"ED-INV-{given.upper()}", f"ED-{given.upper()}", "education"))
    records.append(person("youth_justice", "YO-TOM", "Tom", "Twin", twin_dob, nhs="9434765838",
                          line="9 Low Road", postcode="DE2 2BB"))
    records.append(involvement("youth_justice", "YO-INV-TOM", "YO-TOM", "youth_justice"))
    return records


def make_hub(store_url: str, systems_dir: str) -> Hub:
    config = HubConfig.model_validate({"store": {"url": store_url},
                                       "bus": {"base_delay_s": 0.01, "max_attempts": 2},
                                       "systems": {"dir": systems_dir}})
    return bootstrap(config, migrate=False)


def load(hub: Hub, records: list[SourceRecord]) -> int:
    envelopes = [Envelope(type=MessageType.RECORD_UPSERTED, source_system=r.ref.system,
                          payload=r.model_dump(mode="json")) for r in records]
    with hub.store.transaction() as s:
        add_to_outbox(s, envelopes)
    hub.relay.relay_all()
    return run_worker(hub.bus, hub.worker, batch_size=200, idle_timeout_s=0.3)


def person_id(hub: Hub, nhs: str) -> str:
    from sqlalchemy import select

    from hub.store.tables.records import PersonIdentifierRow

    with hub.store.transaction() as s:
        return s.execute(select(PersonIdentifierRow.person_id).where(PersonIdentifierRow.value == nhs)).scalars().first()


def ids(hub: Hub) -> dict[str, Any]:
    return {"amy": person_id(hub, AMY_NHS), "jane": person_id(hub, JANE_NHS), "tom": person_id(hub, "9434765838"),
            "tim": person_id(hub, "9434765846")}
