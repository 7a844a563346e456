"""Pairwise precision/recall/F1 and B-cubed on hand-checked examples."""

from __future__ import annotations

import pytest

from identity_index import evaluation as ev

TRUTH = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "b2": "B"}


def test_perfect_clustering():
    predicted = {"a1": "x", "a2": "x", "a3": "x", "b1": "y", "b2": "y"}
    scores = ev.pairwise(predicted, TRUTH)
    assert (scores.precision, scores.recall, scores.f1) == (1.0, 1.0, 1.0)
    assert ev.b_cubed(predicted, TRUTH).f1 == 1.0


def test_one_false_link_and_one_missed_record():
    predicted = {"a1": "x", "a2": "x", "a3": "z", "b1": "x", "b2": "y"}
    scores = ev.pairwise(predicted, TRUTH)
    # predicted pairs: (a1,a2) (a1,b1) (a2,b1) → 1 true of 3; true pairs 4 (3 of A, 1 of B)
    assert scores.true_positive == 1 and scores.predicted_pairs == 3 and scores.true_pairs == 4
    assert scores.precision == pytest.approx(1 / 3) and scores.recall == pytest.approx(1 / 4)
    b3 = ev.b_cubed(predicted, TRUTH)
    assert b3.precision == pytest.approx((2 / 3 + 2 / 3 + 1 + 1 / 3 + 1) / 5)
    assert b3.recall == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 / 2 + 1 / 2) / 5)


def test_review_pairs_against_truth():
    assert ev.review_pairs_truth([("a1", "a2"), ("a1", "b1")], TRUTH) == (2, 1)
