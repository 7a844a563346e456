"""`link_batch(distinct_scores=False)`, as `rebuild` calls it: distinct pairs are dropped
unless both records have relatives, and the clusters stay those of keeping them all."""

from __future__ import annotations

from hub.identity import synthetic
from identity_index.engine import link_batch
from identity_index.features import features_from_canonical
from identity_index.model import default_model
from identity_index.scoring import Decision
from tests.unit.identity.identity_factory import feat

RECORDS = [feat("Amy", "Smith", "2015-03-02", ref="X1", upn="A123456789012"),
           feat("Amy", "Smith", "2015-03-02", ref="Y1", upn="A123456789012", postcode="NE9 9ZZ"),
           feat("Jane", "Smith", None, ref="C1", postcode=None, sex="unknown"),
           feat("Jane", "Smith", "1985-06-01", ref="M1", postcode="NE2 2BB"),
           feat("Jane", "Smith", "1990-11-12", ref="Z1", postcode="NE2 2BB"),
           feat("Tom", "Smith", "1985-06-01", ref="Z2", postcode="NE2 2BB"),
           feat("Peter", "Jones", "1985-06-01", ref="Z3", postcode="SW1A 1AA")]
RELATIONSHIPS = [("X1", "C1", "parent"), ("Y1", "M1", "parent")]


def _related(ref: str) -> bool:
    return any(ref in (a, b) for a, b, _k in RELATIONSHIPS)


def test_lean_scores_give_the_same_clusters_and_keep_only_usable_distinct_pairs():
    full = link_batch(RECORDS, default_model(), relationships=RELATIONSHIPS)
    lean = link_batch(RECORDS, default_model(), relationships=RELATIONSHIPS, distinct_scores=False)
    assert lean.clusters.cluster_of == full.clusters.cluster_of
    assert lean.clusters.cluster_of["C1"] == lean.clusters.cluster_of["M1"]
    dropped = {(s.ref_a, s.ref_b) for s in full.scores} - {(s.ref_a, s.ref_b) for s in lean.scores}
    assert all(s.decision == Decision.DISTINCT and not (_related(s.ref_a) and _related(s.ref_b))
               for s in full.scores if (s.ref_a, s.ref_b) in dropped)


def test_lean_scores_on_synthetic_people_drop_distinct_pairs_and_nothing_else():
    records = [features_from_canonical(r.ref, r.person) for r in synthetic.people(600, seed=3)]
    relationships = [(records[i].ref, records[i + 1].ref, "parent") for i in range(0, len(records) - 1, 10)]
    related = {ref for a, b, _k in relationships for ref in (a, b)}
    full = link_batch(records, default_model(), relationships=relationships)
    lean = link_batch(records, default_model(), relationships=relationships, distinct_scores=False)
    assert lean.clusters.cluster_of == full.clusters.cluster_of
    kept = {(s.ref_a, s.ref_b) for s in lean.scores}
    dropped = [s for s in full.scores if (s.ref_a, s.ref_b) not in kept]
    assert dropped
    assert all(s.decision == Decision.DISTINCT and not (s.ref_a in related and s.ref_b in related) for s in dropped)
