"""Match weights, deterministic rules, the twin guard and explanations."""

from __future__ import annotations

import pytest

from identity_index.model import default_model
from identity_index.scoring import Decision, MadeBy, Scorer, probability_of
from tests.unit.identity.identity_factory import feat

SCORER = Scorer(default_model())
NHS_A, NHS_B = "9434765919", "4010232137"


def test_name_and_date_of_birth_link_by_the_model():
    s = SCORER.score(feat("Amy", "Smith", "2015-03-02"), feat("Amy", "Smith", "2015-03-02"))
    assert s.decision == Decision.LINK and s.made_by == MadeBy.MODEL


def test_name_alone_is_not_enough():
    s = SCORER.score(feat("Amy", "Smith", None, postcode=None), feat("Amy", "Smith", "2015-03-02", postcode=None))
    assert s.decision != Decision.LINK


def test_same_nhs_number_with_compatible_dob_links_by_rule():
    s = SCORER.score(feat("Amy", "Smith", "2015-03-02", nhs=NHS_A), feat("Aimee", "Jones", "2015-02-03", nhs=NHS_A))
    assert (s.decision, s.made_by, s.rule) == (Decision.LINK, MadeBy.RULE, "nhs_match")


def test_same_nhs_number_with_incompatible_dob_is_left_to_the_model():
    s = SCORER.score(feat("Amy", "Smith", "2015-03-02", nhs=NHS_A), feat("Bob", "Ng", "1970-11-30", nhs=NHS_A))
    assert s.rule is None


def test_different_nhs_numbers_are_never_the_same_person():
    s = SCORER.score(feat(nhs=NHS_A), feat(nhs=NHS_B))
    assert (s.decision, s.rule) == (Decision.DISTINCT, "nhs_conflict")
    nhs = next(f for f in s.fields if f.comparison == "nhs")
    assert nhs.level == "disagree" and nhs.weight < -5


def test_twins_go_to_review_not_auto_link():
    a = feat("Amy", "Smith", "2015-03-02", postcode="NE1 4AB")
    b = feat("Peter", "Smith", "2015-03-02", postcode="NE1 4AB", sex="male")
    s = SCORER.score(a, b)
    assert s.decision in (Decision.REVIEW, Decision.DISTINCT)
    assert s.decision != Decision.LINK


def test_explanation_lists_every_field_with_its_weight():
    s = SCORER.score(feat("Jon", "Smith", "2015-03-02"), feat("Jonathan", "Smith", "2015-02-03", postcode=None))
    explained = s.explanation(SCORER.model.prior_weight)
    levels = {f["comparison"]: f["level"] for f in explained["fields"]}
    assert levels == {"given": "nickname", "family": "exact", "dob": "day_month_transposed", "sex": "exact",
                      "address": "missing", "nhs": "missing", "upn": "missing", "phone": "missing"}
    total = explained["prior"] + sum(f["weight"] + f["tf_adjustment"] for f in explained["fields"])
    assert total == pytest.approx(s.match_weight, abs=0.01)
    assert s.probability == pytest.approx(probability_of(s.match_weight))


def test_thresholds_decide_between_link_review_and_distinct():
    a, b = feat("Amy", "Smith", "2015-03-02"), feat("Amy", "Smith", "2015-03-09", postcode="SW1A 1AA")
    p = SCORER.score(a, b).probability
    assert Scorer(default_model().with_thresholds(min(0.999, p + 0.0001), max(0.001, p - 0.0001 ))).score(
        a, b).decision == Decision.REVIEW
    assert Scorer(default_model().with_thresholds(max(0.001, p - 0.0001), 0.0001)).score(a, b).decision == Decision.LINK
