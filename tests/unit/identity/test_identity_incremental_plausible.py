"""The incremental linker queues a review pair only when it is plausible from both records' sides,
as a bulk link does (`hub.identity.linker.plausible_both_sides`): a stored record without a date of
birth is no more plausibly each of a dozen namesakes arriving one batch at a time than they are
each plausibly it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.identity.linker import IdentityLinker, plausible_both_sides
from hub.store.tables.identity import IdentityReviewRow
from identity_index.features import PersonFeatures
from identity_index.model import default_model
from identity_index.scoring import Decision, MadeBy, PairScore
from tests.unit.identity.identity_factory import feat

STORED = "youth_service/person/x"


@pytest.fixture
def linker() -> IdentityLinker:
    return IdentityLinker(default_model(), publish_events=False)


def _place(store, linker: IdentityLinker, feats: list[PersonFeatures]) -> dict[str, str]:
    with store.transaction() as session:
        linker.prepare_features(session, feats)
        return linker.place_many(session, feats).persons


def _pairs(store) -> list[tuple[str, str]]:
    with store.read() as s:
        return [tuple(r) for r in s.execute(select(IdentityReviewRow.ref_a, IdentityReviewRow.ref_b)
                                            .where(IdentityReviewRow.status == "open"))]


def _undated() -> PersonFeatures:
    return feat("David", "Smith", None, ref=STORED, postcode=None, sex="male")


def _namesakes(n: int) -> list[PersonFeatures]:
    return [feat("David", "Smith", f"19{60 + i:02d}-{1 + i:02d}-{10 + i}", ref=f"education/person/{i}",
                 postcode=f"NE{i + 1} {i % 9}AB", sex="male") for i in range(n)]


def test_namesakes_arriving_one_batch_at_a_time_queue_a_few_pairs_with_a_stored_record(sqlite_store, linker):
    _place(sqlite_store, linker, [_undated()])
    for f in _namesakes(12):
        _place(sqlite_store, linker, [f])
    with_stored = [p for p in _pairs(sqlite_store) if STORED in p]
    # each namesake's own side keeps its one pair (p 0.84); the stored record's side keeps the first
    # three: with odds 5.4 each the fourth's chance is 5.4 / 22.6 < REVIEW_SHARE
    assert len(with_stored) == 3


def test_and_as_few_when_each_is_placed_on_its_own(sqlite_store, linker):
    for f in [_undated()] + _namesakes(12):
        with sqlite_store.transaction() as session:
            linker.place(session, f)
    assert len([p for p in _pairs(sqlite_store) if STORED in p]) == 3


def test_namesakes_arriving_together_queue_none_whatever_their_order(sqlite_store, linker):
    _place(sqlite_store, linker, [_undated()])
    _place(sqlite_store, linker, _namesakes(12))
    assert _pairs(sqlite_store) == []


def test_nor_when_the_undated_record_arrives_in_their_batch(sqlite_store, linker):
    _place(sqlite_store, linker, [_undated()] + _namesakes(12))
    assert _pairs(sqlite_store) == []


def test_a_genuine_doubtful_pair_is_still_queued(sqlite_store, linker):
    _place(sqlite_store, linker, [_undated()])
    _place(sqlite_store, linker, _namesakes(1))
    assert _pairs(sqlite_store) == [("education/person/0", STORED)]


def test_a_record_in_a_person_linked_by_nhs_number_is_still_a_pair_with_a_new_doubtful_record(sqlite_store, linker):
    """A stored record's own link is no competitor: a pair asks whether two persons are one, and
    being surely its person does not make a record less likely to be the other's."""
    same = [feat(given, "Smith", "2015-03-02", ref=f"health/person/{i}", nhs="9434765919", postcode="NE1 4AB")
            for i, given in enumerate(("Aimee", "Amy"))]  # the second linked by the NHS number
    persons = _place(sqlite_store, linker, same)
    assert persons[same[0].ref] == persons[same[1].ref]
    arriving = feat("Amy", "Smith", "2015-03-12", ref="youth_service/person/a", postcode="NE9 9ZZ")
    _place(sqlite_store, linker, [arriving])
    assert len([p for p in _pairs(sqlite_store) if arriving.ref in p]) == 1


def _pair(a: str, b: str, p: float, decision: Decision = Decision.REVIEW) -> PairScore:
    return PairScore(a, b, 0.0, p, (), decision, MadeBy.MODEL)


def test_each_side_weighs_its_own_competitors():
    person = {"x": "X", "a": "A", "b": "B", "c": "C", "d": "D"}
    queued = [_pair("x", r, 0.84) for r in ("a", "b", "c")]
    assert plausible_both_sides([_pair("d", "x", 0.84)], person, {}, queued) == []
    assert plausible_both_sides([_pair("d", "x", 0.84)], person, {}, queued[:2]) == [_pair("d", "x", 0.84)]


def test_a_link_a_constraint_refused_is_kept_and_pairs_within_one_person_are_not():
    person = {"x": "X", "a": "A", "b": "B", "c": "C", "d": "D", "e": "X"}
    queued = [_pair("x", r, 0.84) for r in ("a", "b", "c")]
    refused = _pair("d", "x", 0.999, Decision.LINK)
    assert plausible_both_sides([refused, _pair("e", "x", 0.8)], person, {}, queued) == [refused]


def test_a_record_placed_in_the_batch_weighs_its_link():
    person = {"x": "X", "y": "X", "d": "D"}
    proposed = _pair("d", "x", 0.84)
    assert plausible_both_sides([proposed], person, {"x": _pair("x", "y", 0.99, Decision.LINK)}) == []
    assert plausible_both_sides([proposed], person, {"x": None}) == [proposed]
