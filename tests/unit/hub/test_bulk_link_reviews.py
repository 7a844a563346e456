"""A bulk link queues review pairs as the incremental linker does: the best per held record and
other person, and only where the record is plausibly that person
(`identity_index.clustering.plausible_reviews`), so a record with a common name and no date of
birth is not a review pair with every namesake."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from hub.bench.identity_rebuild import _source_row
from hub.identity import bulk_link
from hub.identity.synthetic import SyntheticRecord
from hub.store.tables.identity import IdentityReviewRow
from hub.store.tables.records import SourceRecordRow
from identity_index.model import default_model
from tests.unit.identity.identity_factory import person_json

NOW = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)


def _record(ref: str, dob: str | None) -> SyntheticRecord:
    return SyntheticRecord(ref, person_json("Oliver", "Brown", dob, postcode=None), ref)


def _link(store, records) -> None:
    with store.transaction() as s:
        s.execute(SourceRecordRow.__table__.insert(), [_source_row(r, None, NOW) for r in records])
        bulk_link.hold(s, [r.ref for r in records])
    bulk_link.link(store, default_model(), publish_events=False)


def _reviews(store) -> list[tuple[str, str]]:
    with store.read() as s:
        return [tuple(r) for r in s.execute(select(IdentityReviewRow.ref_a, IdentityReviewRow.ref_b))]


def _namesakes(n: int, system: str) -> list[SyntheticRecord]:
    return [_record(f"{system}/person/{i}", f"20{10 + i:02d}-0{1 + i % 9}-1{i % 9}") for i in range(n)]


def test_a_record_without_a_birth_date_is_a_review_pair_with_its_one_namesake(store):
    _link(store, _namesakes(1, "education"))
    _link(store, [_record("youth_service/person/x", None)])
    assert len(_reviews(store)) == 1


def test_but_not_with_each_of_twelve(store):
    _link(store, _namesakes(12, "education"))
    _link(store, [_record("youth_service/person/x", None)])
    assert _reviews(store) == []


def test_nor_within_one_run_holding_them_all(store):
    _link(store, _namesakes(12, "education") + [_record("youth_service/person/x", None)])
    assert _reviews(store) == []
