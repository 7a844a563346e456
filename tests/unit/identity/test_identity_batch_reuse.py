"""What the records worker's linking reuses instead of reading again (hub/identity/slice_cache.py
`remember`/`stored`, live_index `_refresh`, repository `open_review_pairs`/`resolve_reviews`,
persons `refresh_persons`): the same stored state and decisions, fewer reads and writes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from sqlalchemy import Text, cast, insert, select

from hub.identity import repository as repo
from hub.identity import synthetic
from hub.identity.linker import BATCH_STATE, IdentityLinker
from hub.identity.model_file import load_model
from hub.persons import refresh_persons
from hub.store.tables.identity import IdentityRecordRow, IdentityReviewRow
from hub.store.tables.records import PersonIdentifierRow, SourceRecordRow
from identity_index.engine import IncrementalIndex
from identity_index.features import PersonFeatures, features_from_canonical


@pytest.fixture(scope="module")
def people() -> list[PersonFeatures]:
    return [features_from_canonical(r.ref, r.person) for r in synthetic.people(300, seed=11)]


@pytest.fixture(scope="module")
def model():
    return load_model()


def _place(store, linker: IdentityLinker, feats: list[PersonFeatures]) -> dict[str, str]:
    with store.transaction() as session:
        linker.prepare_features(session, feats)
        return linker.place_many(session, feats).persons


def test_the_next_batch_rereads_a_batchs_own_records_without_decoding_them(sqlite_store, model, people):
    linker = IdentityLinker(model, publish_events=False)
    first = people[:120]
    _place(sqlite_store, linker, first)
    cache = linker.caches.get()
    with sqlite_store.transaction() as session:  # the text remembered is the text stored
        stored = dict(session.execute(select(IdentityRecordRow.ref_key, cast(IdentityRecordRow.features, Text))).all())
    assert all(cache.derived_of(f).text == stored[f.ref] for f in first)
    misses = cache.misses
    with sqlite_store.transaction() as session:
        linker.prepare_features(session, people[120:200])
        live, index = cache.live, session.info[BATCH_STATE].index
        kept = [f for f in first if f.ref in live.records]
        assert kept and cache.misses == misses  # re-read from the log, every one a hit
        assert all(live.records[f.ref] is f for f in kept)
        fresh = IncrementalIndex(model)
        repo.load_blocks(session, fresh, people[120:200])
        assert index.person_of == fresh.person_of
        for f in people[120:200]:
            assert {r: index.records[r] for r in index.candidates(f)} == {r: fresh.records[r]
                                                                           for r in fresh.candidates(f)}
        linker.place_many(session, people[120:200])


def test_a_record_changed_by_another_writer_is_read_as_stored(sqlite_store, model, people):
    ours, other = IdentityLinker(model, publish_events=False), IdentityLinker(model, publish_events=False)
    _place(sqlite_store, ours, people[:100])
    moved = [dataclasses.replace(f, postcode="ZZ9 9ZZ", postcodes=frozenset({"ZZ99ZZ"})) for f in people[:10]]
    _place(sqlite_store, other, moved)
    with sqlite_store.transaction() as session:
        ours.prepare_features(session, people[100:160])
        live = ours.caches.get().live
        for f in moved:
            if f.ref in live.records:
                assert live.records[f.ref] == f and live.records[f.ref] is not people[moved.index(f)]
        ours.place_many(session, people[100:160])


def test_stored_features_come_from_the_cache_only_for_the_same_text(model, people):
    linker = IdentityLinker(model, publish_events=False)
    cache = linker.caches.get()
    f = people[0]
    text = json.dumps(f.to_json())
    cache.remember(f, IncrementalIndex._keys(IncrementalIndex(model), f), text)
    assert cache.stored(f.ref, text) is f
    other = dataclasses.replace(f, given="zebedee")
    decoded = cache.stored(f.ref, json.dumps(other.to_json()))
    assert decoded == other and decoded is not other


def _review(a: str, b: str, status: str = "open") -> dict:
    return {"ref_a": a, "ref_b": b, "match_weight": 1.0, "probability": 0.5, "explanation": {},
            "model_version": "m", "status": status, "created_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}


def test_open_review_pairs_and_their_resolution(store):
    with store.transaction() as session:
        session.execute(insert(IdentityReviewRow), [_review("a", "b"), _review("c", "a"), _review("a", "d", "linked"),
                                                    _review("e", "f")])
    with store.transaction() as session:
        pairs = repo.open_review_pairs(session, ["a"])
        assert [(p.ref_a, p.ref_b) for p in pairs] == [("a", "b"), ("c", "a")]
        assert [(r.ref_a, r.ref_b) for r in repo.open_reviews_touching(session, ["a"])] == \
            [(p.ref_a, p.ref_b) for p in pairs]
        repo.resolve_reviews(session, [pairs[0].id], decided_by="identity-index", reason="because")
    with store.transaction() as session:
        rows = {(r.ref_a, r.ref_b): r for r in session.execute(select(IdentityReviewRow)).scalars()}
        assert (rows[("a", "b")].status, rows[("a", "b")].reason) == ("resolved", "because")
        assert rows[("a", "b")].decided_at is not None and rows[("a", "b")].decided_by == "identity-index"
        assert rows[("c", "a")].status == "open" and rows[("a", "d")].status == "linked"
        assert [(p.ref_a, p.ref_b) for p in repo.open_review_pairs(session, ["a", "f"])] == [("c", "a"), ("e", "f")]


def _person(source_id: str, pid: str, identifiers: list[tuple[str, str]]) -> dict:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    canonical = {"names": [{"given": "Ann", "family": "Lee", "type": "legal"}],
                 "identifiers": [{"scheme": s, "value": v} for s, v in identifiers]}
    return {"ref_key": f"sys/person/{source_id}", "system": "sys", "entity": "person", "source_id": source_id,
            "content_hash": source_id, "version": 1, "observed_at": now, "raw": {}, "canonical": canonical,
            "provenance": {}, "person_id": pid, "deleted": False, "updated_at": now}


def _identifiers(session) -> dict[int, tuple[str, str, str, str]]:
    return {r.id: (r.person_id, r.scheme, r.value, r.record_key)
            for r in session.execute(select(PersonIdentifierRow)).scalars()}


def test_a_refresh_rewrites_only_the_identifier_rows_that_changed(store):
    with store.transaction() as session:
        session.execute(insert(SourceRecordRow), [_person("1", "P1", [("nhs_number", "9434765919"), ("upn", "A1")]),
                                                  _person("2", "P2", [("nhs_number", "9434765870")])])
        refresh_persons(session, ["P1", "P2"])
    with store.transaction() as session:
        before = _identifiers(session)
        refresh_persons(session, ["P1", "P2"])  # nothing changed: the same rows, untouched
        assert _identifiers(session) == before
        session.execute(insert(SourceRecordRow), [_person("3", "P1", [("nhs_number", "9434765919")])])
        session.execute(SourceRecordRow.__table__.update().where(SourceRecordRow.ref_key == "sys/person/2")
                        .values(deleted=True))
        refresh_persons(session, ["P1", "P2"])
        after = _identifiers(session)
    kept = {i: row for i, row in before.items() if row[0] == "P1"}
    assert all(after.get(i) == row for i, row in kept.items())  # P1's rows stay where they were
    assert sorted(after.values()) == sorted([
        ("P1", "nhs_number", "9434765919", "sys/person/1"), ("P1", "upn", "A1", "sys/person/1"),
        ("P1", "nhs_number", "9434765919", "sys/person/3")])  # P2 has no live record: no identifier


def test_candidate_nhs_numbers_are_the_persons_nhs_numbers_only(store, model, people):
    linker = IdentityLinker(model, publish_events=False)
    placed = _place(store, linker, people[:40])
    pid = placed[people[0].ref]
    with store.transaction() as session:
        session.execute(insert(PersonIdentifierRow), [
            {"person_id": pid, "scheme": "upn", "value": "X123", "record_key": "other/person/9"},
            {"person_id": pid, "scheme": "nhs_number", "value": "9434765919", "record_key": "other/person/9"}])
    twin = dataclasses.replace(people[0], ref=people[0].ref + "-twin")
    with store.transaction() as session:
        linker.prepare_features(session, [twin])
        index = session.info[BATCH_STATE].index
        assert "9434765919" in index.person_nhs[pid] and "X123" not in index.person_nhs[pid]
