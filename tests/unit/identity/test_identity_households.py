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


def test_a_pair_whose_kin_were_joined_in_an_earlier_round_is_corroborated_in_the_next():
    """Round one joins two same-name parents through their children's person; round two joins
    those parents' same-name sons through them: the later rounds look again at every pair whose
    records' relatives changed cluster, not only at the pairs touched the round before."""
    records = [feat("Amy", "Smith", "2015-03-02", ref="X1", upn="A123456789012"),
               feat("Amy", "Smith", "2015-03-02", ref="Y1", upn="A123456789012", postcode="NE9 9ZZ"),
               feat("Jane", "Smith", None, ref="C1", postcode=None, sex="unknown"),
               feat("Jane", "Smith", "1985-06-01", ref="M1", postcode="NE2 2BB"),
               feat("Tom", "Smith", None, ref="G1", postcode=None, sex="unknown"),
               feat("Tom", "Smith", "2019-04-05", ref="H1", postcode="NE3 3CC")]
    relationships = [("X1", "C1", "parent"), ("Y1", "M1", "parent"), ("G1", "C1", "parent"), ("H1", "M1", "parent")]
    cluster_of = link_batch(records, default_model(), relationships=relationships).clusters.cluster_of
    assert cluster_of["C1"] == cluster_of["M1"] and cluster_of["G1"] == cluster_of["H1"]
    assert cluster_of["C1"] != cluster_of["G1"]


def _families(rng, n):
    """Households with few names (many name-only pairs), children recorded twice with a UPN."""
    given, family = ["Jane", "Mary", "Tom", "Sam", "Ann"], ["Smith", "Jones", "Brown"]
    records, relationships = [], []
    for h in range(n):
        surname = rng.choice(family)
        parents = [feat(rng.choice(given), surname, rng.choice([None, "1980-01-02", "1984-05-06"]),
                        ref=f"P{h}-{k}", postcode=rng.choice([None, f"NE{h % 7} 1AA"]), sex="unknown")
                   for k in range(rng.randint(1, 3))]
        records += parents
        for c in range(rng.randint(1, 3)):
            name, dob, upn = rng.choice(given), f"201{c}-0{c + 1}-1{h % 9}", f"A{h:06d}{c:06d}"
            for side in ("e", "h"):
                child = feat(name, surname, dob, ref=f"{side}{h}-{c}", upn=upn if rng.random() < 0.8 else None,
                             postcode=rng.choice([None, f"NE{h % 7} 1AA"]))
                records.append(child)
                relationships.append((child.ref, rng.choice(parents).ref, "parent"))
    return records, relationships


def test_later_rounds_over_the_reopened_pairs_decide_as_rounds_over_every_pair(monkeypatch):
    import random

    from identity_index import engine, households

    def every_pair(candidate, scores, relatives, before, after):  # the rounds as they were: all again
        return [i for i in candidate if scores[i].decision != Decision.LINK]

    for seed in range(4):
        records, relationships = _families(random.Random(seed), 60)
        fast = link_batch(records, default_model(), relationships=relationships)
        monkeypatch.setattr(engine, "reopened", every_pair)
        slow = link_batch(records, default_model(), relationships=relationships)
        monkeypatch.setattr(engine, "reopened", households.reopened)
        assert fast.clusters.cluster_of == slow.clusters.cluster_of
        assert [(s.ref_a, s.ref_b, s.decision, s.rule) for s in fast.scores] == \
            [(s.ref_a, s.ref_b, s.decision, s.rule) for s in slow.scores]
        assert sum(s.rule == "shared_relative" for s in fast.scores) > 0


def test_moved_names_the_records_of_clusters_that_gained_or_lost_records():
    from identity_index.households import moved

    before = {"a": 0, "b": 0, "c": 1, "d": 2, "e": 3, "f": 3}
    after = {"a": 0, "b": 0, "c": 0, "d": 1, "e": 2, "f": 3}  # c joined a+b; e and f split; d renumbered only
    assert sorted(moved(before, after)) == ["a", "b", "c", "e", "f"]
    assert moved({}, {}) == []
