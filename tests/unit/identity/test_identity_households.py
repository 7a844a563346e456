"""Household evidence: same-name records linked through relatives in the same role."""

from __future__ import annotations

from identity_index.engine import link_batch
from identity_index.households import corroborate, relatives_of
from identity_index.model import default_model
from identity_index.scoring import Decision, Scorer
from tests.unit.identity.identity_factory import feat

SCORER = Scorer(default_model())


def _pair(a, b):
    return SCORER.score(a, b)


def test_same_name_parents_of_one_child_are_linked():
    contact = feat("Jane", "Smith", None, ref="edu/C1", postcode=None, sex="unknown")
    mother = feat("Jane", "Smith", "1985-06-01", ref="eh/M1")
    score = _pair(contact, mother)
    assert score.decision != Decision.LINK  # names alone
    relatives = relatives_of([("edu/X1", "edu/C1", "parent"), ("eh/Y1", "eh/M1", "carer")])
    upgraded = corroborate([score], relatives, {"edu/X1": "P1", "eh/Y1": "P1", "edu/C1": "P2", "eh/M1": "P3"})
    assert [(s.decision, s.rule) for s in upgraded] == [(Decision.LINK, "shared_relative")]


def test_parents_of_siblings_at_one_address_are_linked():
    a, b = feat("Jane", "Smith", None, ref="C1", postcode=None), feat("Jane", "Smith", None, ref="C2", postcode=None)
    relatives = relatives_of([("X1", "C1", "parent"), ("X2", "C2", "parent")])
    upgraded = corroborate([_pair(a, b)], relatives, {"X1": "P1", "X2": "P2", "C1": "P3", "C2": "P4"},
                           {"X1": "NE14AB", "X2": "NE14AB"})
    assert len(upgraded) == 1


def test_a_father_and_his_namesake_son_are_not_linked():
    father = feat("John", "Jordan", None, ref="edu/C1", postcode=None, sex="male")
    son = feat("John", "Jordan", "2015-01-09", ref="eh/S1", sex="male")
    # the father is the parent of a pupil; the son is the sibling of that pupil's other record
    relatives = relatives_of([("edu/X1", "edu/C1", "parent"), ("eh/S1", "eh/X2", "sibling")])
    cluster = {"edu/X1": "P1", "eh/X2": "P1", "edu/C1": "P2", "eh/S1": "P3"}
    assert corroborate([_pair(father, son)], relatives, cluster) == []


def test_different_names_or_nhs_numbers_are_never_corroborated():
    relatives = relatives_of([("X1", "C1", "parent"), ("X2", "C2", "parent")])
    cluster = {"X1": "P1", "X2": "P1", "C1": "P2", "C2": "P3"}
    assert corroborate([_pair(feat("Jane", "Smith", None, ref="C1"), feat("Mary", "Smith", None, ref="C2"))],
                       relatives, cluster) == []
    assert corroborate([_pair(feat("Jane", "Smith", None, ref="C1", nhs="9434765919"),
                              feat("Jane", "Smith", None, ref="C2", nhs="4010232137"))], relatives, cluster) == []


def test_batch_linking_uses_relationships():
    records = [feat("Amy", "Smith", "2015-03-02", ref="X1", upn="A123456789012"),
               feat("Amy", "Smith", "2015-03-02", ref="Y1", upn="A123456789012", postcode="NE9 9ZZ"),
               feat("Jane", "Smith", None, ref="C1", postcode=None, sex="unknown"),
               feat("Jane", "Smith", "1985-06-01", ref="M1", postcode="NE2 2BB")]
    plain = link_batch(records, default_model()).clusters.cluster_of
    assert plain["C1"] != plain["M1"]
    household = link_batch(records, default_model(),
                           relationships=[("X1", "C1", "parent"), ("Y1", "M1", "parent")]).clusters.cluster_of
    assert household["C1"] == household["M1"] and household["X1"] == household["Y1"]
