"""Clusters and their constraints: two NHS numbers never in one person, stewards' decisions
never overridden, stable person ids through merges; accuracy on synthetic people."""

from __future__ import annotations

from hub.identity.synthetic import people
from identity_index import evaluation as ev
from identity_index.engine import IncrementalIndex, link_batch
from identity_index.features import features_from_canonical
from identity_index.model import default_model
from tests.unit.identity.identity_factory import feat

NHS_A, NHS_B = "9434765919", "4010232137"


def test_a_record_bridging_two_persons_merges_them_and_the_larger_id_survives():
    index = IncrementalIndex(default_model())
    p1 = index.place(feat("Amy", "Smith", "2015-03-02", ref="a", nhs=NHS_A)).person_id
    index.place(feat("Amy", "Smith", "2015-03-02", ref="a2", nhs=NHS_A))
    p2 = index.place(feat("Amelia", "Smyth", None, ref="b", upn="A123456789012", postcode=None)).person_id
    assert p1 != p2
    bridge = index.place(feat("Amy", "Smith", "2015-03-02", ref="c", upn="A123456789012", nhs=NHS_A))
    assert bridge.person_id == p1
    assert bridge.assignment.merge == (p2,)
    assert index.person_of["b"] == p1
    assert index.retired[p2] == p1


def test_two_nhs_numbers_are_never_merged_incrementally():
    index = IncrementalIndex(default_model())
    p1 = index.place(feat("Amy", "Smith", "2015-03-02", ref="a", nhs=NHS_A)).person_id
    p2 = index.place(feat("Amy", "Smith", "2015-03-02", ref="b", nhs=NHS_B)).person_id
    assert p1 != p2
    # a record without NHS number that matches both joins one of them, never merges the two
    third = index.place(feat("Amy", "Smith", "2015-03-02", ref="c"))
    assert third.assignment.merge == ()
    assert index.person_of["a"] != index.person_of["b"]
    assert third.assignment.reviews  # the other one is left for a steward


def test_two_nhs_numbers_are_never_merged_in_batch():
    records = [feat("Amy", "Smith", "2015-03-02", ref="a", nhs=NHS_A),
               feat("Amy", "Smith", "2015-03-02", ref="b"),
               feat("Amy", "Smith", "2015-03-02", ref="c", nhs=NHS_B)]
    result = link_batch(records, default_model())
    clusters = result.clusters.cluster_of
    assert clusters["a"] != clusters["c"]
    assert clusters["b"] in (clusters["a"], clusters["c"])


def test_steward_not_the_same_is_respected_on_relink():
    index = IncrementalIndex(default_model())
    index.place(feat("Amy", "Smith", "2015-03-02", ref="a"))
    index.load_constraint("a", "b", same=False)
    placed = index.place(feat("Amy", "Smith", "2015-03-02", ref="b"))
    assert placed.created and index.person_of["a"] != index.person_of["b"]
    again = index.place(feat("Amy", "Smith", "2015-03-02", ref="b"))  # a new version of b arrives
    assert again.person_id != index.person_of["a"]
    # nor may a third record pull the two together
    index.place(feat("Amy", "Smith", "2015-03-02", ref="c"))
    assert index.person_of["a"] != index.person_of["b"]


def test_steward_same_person_links_what_the_model_would_not():
    index = IncrementalIndex(default_model())
    pa = index.place(feat("Amy", "Smith", "2015-03-02", ref="a")).person_id
    index.load_constraint("a", "b", same=True)
    assert index.place(feat("Amy", "Jones", "2015-03-02", ref="b", postcode=None, sex="unknown")).person_id == pa


def test_batch_respects_constraints():
    records = [feat("Amy", "Smith", "2015-03-02", ref="a"), feat("Amy", "Smith", "2015-03-02", ref="b"),
               feat("Zed", "Quennell", "1980-01-01", ref="z", postcode=None)]
    result = link_batch(records, default_model(), cannot_link=[("a", "b")], must_link=[("a", "z")])
    c = result.clusters.cluster_of
    assert c["a"] != c["b"] and c["a"] == c["z"]


def test_person_id_stays_when_a_record_is_updated():
    index = IncrementalIndex(default_model())
    pid = index.place(feat("Amy", "Smith", "2015-03-02", ref="a")).person_id
    index.place(feat("Amy", "Smith", "2015-03-02", ref="a2"))
    assert index.place(feat("Amy", "Smith-Jones", "2015-03-02", ref="a")).person_id == pid


def test_incremental_and_batch_accuracy_on_synthetic_people():
    records = list(people(1500, seed=5))
    truth = {r.ref: r.truth for r in records}
    feats = [features_from_canonical(r.ref, r.person) for r in records]
    model = default_model()
    batch = link_batch(feats, model)
    scores = ev.pairwise({r: str(c) for r, c in batch.clusters.cluster_of.items()}, truth)
    assert scores.precision >= 0.99 and scores.recall >= 0.95, scores
    index = IncrementalIndex(model)
    for f in feats:
        index.place(f)
    scores = ev.pairwise(dict(index.person_of), truth)
    assert scores.precision >= 0.99 and scores.recall >= 0.95, scores


def test_ranked_orders_scores_as_a_stable_sort_by_rank_does():
    import random

    from identity_index.clustering import _rank, ranked
    from identity_index.scoring import Decision, MadeBy, PairScore

    rng = random.Random(5)
    scores = [PairScore(f"a{i}", f"b{i}", 0.0, rng.choice([0.0, 0.25, 0.5, 0.999, 1.0]), (),
                        rng.choice(list(Decision)), rng.choice(list(MadeBy))) for i in range(2000)]
    assert [(s.ref_a, s.ref_b) for s in ranked(scores)] == \
        [(s.ref_a, s.ref_b) for s in sorted(scores, key=_rank, reverse=True)]
    model_only = [s for s in scores if s.made_by != MadeBy.RULE]
    assert ranked(model_only) == sorted(model_only, key=_rank, reverse=True)
