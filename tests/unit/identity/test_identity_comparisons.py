"""Every level of every comparison, and the features they read."""

from __future__ import annotations

import pytest

from identity_index import comparisons as c
from identity_index.features import features_from_canonical, normalise_name
from tests.unit.identity.identity_factory import feat, person_json


def _given(a, b):
    return c.GIVEN_LEVELS[c.given_level(a, b)]


def _family(a, b):
    return c.FAMILY_LEVELS[c.family_level(a, b)]


def _dob(a, b):
    return c.DOB_LEVELS[c.dob_level(a, b)]


@pytest.mark.parametrize(("x", "y", "level"), [
    ("Jonathan", "Jonathan", "exact"),
    ("Jonathan", "Jon", "nickname"),
    ("Elizabeth", "Beth", "nickname"),
    ("Bill", "William", "nickname"),
    ("Charlotte", "Charlote", "jw_high"),
    ("Elsle", "Elsie", "jw_mid"),
    ("J", "Jonathan", "initial"),
    ("Jonathan", "Peter", "else"),
])
def test_given_name_levels(x, y, level):
    assert _given(feat(x, "Smith"), feat(y, "Smith")) == level


def test_given_and_family_swapped():
    a, b = feat("Amy", "Taylor"), feat("Taylor", "Amy")
    assert _given(a, b) == "swapped"
    assert _family(a, b) == "swapped"


@pytest.mark.parametrize(("x", "y", "level"), [
    ("Smith", "Smith", "exact"),
    ("Smith-Jones", "Jones", "hyphen_or_previous"),
    ("Thompson", "Thomson", "jw_high"),
    ("Smith", "Smyth", "jw_mid"),
    ("Macdonald", "Mcdowall", "jw_mid"),
    ("Smith", "Okafor", "else"),
])
def test_family_name_levels(x, y, level):
    assert _family(feat("Amy", x), feat("Amy", y)) == level


def test_previous_family_name_counts_as_same():
    married = feat("Amy", "Jones", previous_family="Smith")
    assert _family(married, feat("Amy", "Smith")) == "hyphen_or_previous"


@pytest.mark.parametrize(("x", "y", "level"), [
    ("2015-03-02", "2015-03-02", "exact"),
    ("2015-03-02", "2015-02-03", "day_month_transposed"),
    ("2015-03-02", "2015-03-09", "one_part_different"),
    ("2015-03-02", "2016-03-02", "one_part_different"),
    ("2015-03-02", "2017-08-19", "else"),
])
def test_date_of_birth_levels(x, y, level):
    assert _dob(feat(dob=x), feat(dob=y)) == level


def test_year_only_date_of_birth():
    assert _dob(feat(dob="2015-01-01", precision="year"), feat(dob="2015-07-19")) == "year_only"
    assert _dob(feat(dob="2014-01-01", precision="year"), feat(dob="2015-07-19")) == "else"


def test_missing_values_are_no_evidence():
    assert c.dob_level(feat(dob=None), feat()) is None
    assert c.sex_level(feat(sex="unknown"), feat()) is None
    assert c.address_level(feat(postcode=None), feat()) is None
    assert c.nhs_level(feat(), feat(nhs="9434765919")) is None


def test_sex_levels():
    assert c.SEX_LEVELS[c.sex_level(feat(sex="male"), feat(sex="male"))] == "exact"
    assert c.SEX_LEVELS[c.sex_level(feat(sex="male"), feat(sex="female"))] == "else"


@pytest.mark.parametrize(("a", "b", "level"), [
    ({"postcode": "NE1 4AB"}, {"postcode": "NE1 4AB"}, "exact"),
    ({"postcode": "NE1 4AB", "extra_postcodes": ("NE9 9ZZ",)}, {"postcode": "NE9 9ZZ"}, "any_postcode"),
    ({"postcode": "NE1 4AB"}, {"postcode": "NE1 7XY"}, "district"),
    ({"postcode": "NE1 4AB"}, {"postcode": "SW1A 1AA"}, "else"),
])
def test_address_levels(a, b, level):
    assert c.ADDRESS_LEVELS[c.address_level(feat(**a), feat(**b))] == level


def test_identifier_levels():
    assert c.ID_LEVELS[c.nhs_level(feat(nhs="9434765919"), feat(nhs="9434765919"))] == "agree"
    assert c.ID_LEVELS[c.nhs_level(feat(nhs="9434765919"), feat(nhs="4010232137"))] == "disagree"
    assert c.ID_LEVELS[c.upn_level(feat(upn="A123456789012"), feat(upn="a123456789012"))] == "agree"


def test_features_normalise_and_round_trip():
    f = features_from_canonical("s/person/1", person_json("Zoë", "O'Brien-Smith", postcode="ne1 4ab"))
    assert (f.given, f.family, f.postcode) == ("zoe", "obriensmith", "NE14AB")
    assert {"obrien", "smith"} <= f.family_alts
    assert type(f).from_json(f.to_json()) == f
    assert normalise_name(None) == ""


def test_every_comparison_is_named_with_an_else_level():
    for comparison in c.COMPARISONS:
        assert comparison.levels[-1] in ("else", "disagree")
