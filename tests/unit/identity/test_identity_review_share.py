"""Review pairs compete: a record is one person at most, so a pair is queued for a steward only
when the record is plausibly that pair's person (`identity_index.clustering.plausible_reviews`)."""

from __future__ import annotations

from identity_index.clustering import REVIEW_SHARE, plausible_reviews
from identity_index.engine import IncrementalIndex, link_batch
from identity_index.model import default_model
from identity_index.scoring import Decision, MadeBy, PairScore
from tests.unit.identity.identity_factory import feat


def pair(other: str, p: float, decision: Decision = Decision.REVIEW) -> PairScore:
    return PairScore("mine", other, 0.0, p, (), decision, MadeBy.MODEL)


def test_a_lone_review_pair_is_kept():
    assert plausible_reviews([pair("x", 0.75)]) == [pair("x", 0.75)]


def test_two_strong_candidates_are_both_kept():
    kept = plausible_reviews([pair("x", 0.9), pair("y", 0.9)])
    assert [p.ref_b for p in kept] == ["x", "y"]


def test_many_namesakes_leave_nothing_to_review():
    assert plausible_reviews([pair(f"x{i}", 0.75) for i in range(20)]) == []


def test_a_record_linked_with_confidence_is_not_reviewed_against_a_weaker_candidate():
    link = pair("own", 0.99, Decision.LINK)
    assert plausible_reviews([pair("x", 0.75)], link) == []
    assert plausible_reviews([pair("x", 0.75)], pair("own", 0.6)) == [pair("x", 0.75)]


def test_a_refused_link_is_always_kept_and_at_most_three_review_pairs_are():
    refused = pair("nhs-conflict", 0.999, Decision.LINK)
    assert plausible_reviews([pair(f"x{i}", 0.75) for i in range(5)] + [refused]) == [refused]
    many = [pair(f"x{i}", 0.9) for i in range(3)]
    assert len(plausible_reviews(many)) == 3  # 9 / 28 each
    assert plausible_reviews([pair(f"x{i}", 0.9) for i in range(4)]) == []  # 9 / 37 < 0.25
    assert REVIEW_SHARE == 0.25


def _namesakes(n: int) -> list:
    return [feat("Oliver", "Brown", f"20{10 + i:02d}-0{1 + i % 9}-1{i % 9}", ref=f"s/person/{i}", postcode=None)
            for i in range(n)]


def test_incremental_placement_queues_one_namesake_but_not_twelve():
    model = default_model()
    for n, expected in ((1, 1), (12, 0)):
        index = IncrementalIndex(model)
        for f in _namesakes(n):
            index.place(f)
        placed = index.place(feat("Oliver", "Brown", None, ref="s/person/new", postcode=None))
        assert placed.created
        assert len(placed.assignment.reviews) == expected, n


def test_a_review_pair_with_one_namesake_survives_a_batch_run_too():
    result = link_batch(_namesakes(1) + [feat("Oliver", "Brown", None, ref="s/person/new", postcode=None)],
                        default_model())
    assert [(r.ref_a, r.ref_b) for r in result.clusters.reviews] in ([("s/person/0", "s/person/new")],
                                                                     [("s/person/new", "s/person/0")])
