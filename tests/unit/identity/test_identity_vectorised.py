"""Column-wise levels and scores equal the scalar comparisons and `Scorer.score`, pair by
pair, on synthetic messy people; the numpy blocking gives the same pairs as per-key sets."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from itertools import combinations

import numpy as np
import pytest

from hub.identity import synthetic
from identity_index.blocking import RULES, candidate_pair_array
from identity_index.comparisons import comparison_vector
from identity_index.engine import IncrementalIndex, link_batch
from identity_index.features import PersonFeatures, features_from_canonical
from identity_index.households import names_agree
from identity_index.model import default_model
from identity_index.scoring import Decision, Scorer
from identity_index.vectorised import MISSING, Encoder, K, PairScorer, pair_levels


@pytest.fixture(scope="module")
def feats() -> list[PersonFeatures]:
    return [features_from_canonical(r.ref, r.person) for r in synthetic.people(600, seed=7)]


def _set_pairs(records, rules, max_block=1000):
    pairs = set()
    for rule in rules:
        blocks: dict[str, list[int]] = {}
        for i, rec in enumerate(records):
            for key in rule.keys(rec):
                blocks.setdefault(key, []).append(i)
        for members in blocks.values():
            if 1 < len(members) <= max_block:
                pairs.update(combinations(members, 2))
    return pairs


def test_numpy_blocking_equals_per_key_sets(feats):
    left, right = candidate_pair_array(feats, list(RULES.values()))
    assert set(zip(left.tolist(), right.tolist())) == _set_pairs(feats, RULES.values())
    assert (left < right).all()
    small_l, _ = candidate_pair_array(feats, list(RULES.values()), max_block=2)
    assert len(small_l) == len(_set_pairs(feats, RULES.values(), max_block=2))


def test_levels_equal_scalar_levels(feats):
    left, right = candidate_pair_array(feats, list(RULES.values()))
    encoder = Encoder()
    levels = pair_levels(encoder, encoder.table(feats), feats, left, right)
    assert len(left) > 1000
    for k, (i, j) in enumerate(zip(left.tolist(), right.tolist())):
        expected = [MISSING if v is None else v for v in comparison_vector(feats[i], feats[j])]
        assert levels[k].tolist() == expected, (feats[i], feats[j])


def test_every_level_and_overflow_agree_on_crafted_pairs():
    base = PersonFeatures("a", given="william", family="smith", dob=dt.date(2010, 3, 4),
                          sex="male", postcode="NE11AA", postcodes=frozenset({"NE11AA"}), nhs="1", upn="U",
                          phones=frozenset({"0770000001"}))
    variants = [
        {"given": "bill"}, {"given": "willaim"}, {"given": "w"}, {"given": "smith", "family": "william"},
        {"given": "zed"}, {"given": ""}, {"family": "smyth"}, {"family": "jones", "family_alts": frozenset({"smith"})},
        {"dob": dt.date(2010, 4, 3)}, {"dob": dt.date(2011, 3, 4)}, {"dob": dt.date(2010, 1, 1), "dob_precision": "year"},
        {"dob": None}, {"sex": "female"}, {"postcode": "NE12BB", "postcodes": frozenset({"NE12BB", "NE11AA"})},
        {"postcode": "NE12BB", "postcodes": frozenset({"NE12BB"})}, {"postcode": "", "postcodes": frozenset()},
        {"uprn": "9", "postcode": ""}, {"nhs": "2"}, {"upn": "V"}, {"phones": frozenset()},
        {"phones": frozenset({f"07700000{i:02d}" for i in range(K + 2)})},  # more than a row holds
        {"given_alts": frozenset({"william"}), "given": "liam"},
    ]
    others = [dataclasses.replace(base, ref=f"b{i}", **v) for i, v in enumerate(variants)]
    records = [dataclasses.replace(base, uprn="9")] + others
    encoder = Encoder()
    table = encoder.table(records)
    left = np.zeros(len(others), dtype=np.int64)
    right = np.arange(1, len(records))
    levels = pair_levels(encoder, table, records, left, right)
    for k, other in enumerate(others):
        expected = [MISSING if v is None else v for v in comparison_vector(records[0], other)]
        assert levels[k].tolist() == expected, variants[k]


def test_scores_equal_scalar_scores_and_only_distinct_pairs_are_dropped(feats):
    model = default_model()
    left, right = candidate_pair_array(feats, list(RULES.values()))
    scorer = PairScorer(model)
    table = scorer.encoder.table(feats)
    got = {(s.ref_a, s.ref_b): s for _i, s in scorer.score_rows(
        table[left], table[right], [feats[i] for i in left], [feats[j] for j in right])}
    scalar = Scorer(model)
    for i, j in zip(left.tolist(), right.tolist()):
        expected = scalar.score(feats[i], feats[j])
        mine = got.get((expected.ref_a, expected.ref_b))
        if mine is None:
            assert expected.decision == Decision.DISTINCT and not names_agree(expected)
        else:
            assert mine == expected


def test_batch_and_incremental_link_the_same_records(feats):
    model = default_model()
    batch = link_batch(feats, model)
    index = IncrementalIndex(model)
    for f in feats:
        index.place(f)
    truth = {r.ref: r.truth for r in synthetic.people(600, seed=7)}
    same_batch = {(a, b) for a, b in combinations(sorted(truth), 2)
                  if batch.clusters.cluster_of[a] == batch.clusters.cluster_of[b]}
    same_incr = {(a, b) for a, b in combinations(sorted(truth), 2) if index.person_of[a] == index.person_of[b]}
    assert len(same_batch) > 200
    assert len(same_batch ^ same_incr) <= 0.05 * len(same_batch)


def test_a_block_larger_than_split_at_is_split_by_birth_month_in_batch_and_index():
    from identity_index.blocking import SPLIT_AT, candidate_pairs, rules_named

    rules = rules_named(["surname_year"])
    records = [PersonFeatures(f"r{i}", given=f"g{i}", family="smith", dob=dt.date(2015, 1 + i % 12, 1 + i % 28))
               for i in range(SPLIT_AT + 12)]
    pairs = candidate_pairs(records, rules)
    assert pairs and all(records[i].dob.month == records[j].dob.month for i, j in pairs)
    small = records[:SPLIT_AT - 1]
    assert len(candidate_pairs(small, rules)) == len(small) * (len(small) - 1) // 2

    model = dataclasses.replace(default_model(), blocking_rules=("surname_year",))
    index = IncrementalIndex(model)
    for f in records[1:]:
        index.load(f, f"P{f.ref}")
    assert index.candidates(records[0]) == {f.ref for f in records[1:] if f.dob.month == 1}


def test_one_against_many_equals_the_column_wise_and_scalar_scores(feats):
    model = default_model()
    scorer = PairScorer(model)
    table = scorer.encoder.table(feats)
    left, right = candidate_pair_array(feats, list(RULES.values()))
    levels = scorer.encoder.levels(table[left], table[right])
    rows = table.tolist()
    for k, (i, j) in enumerate(zip(left.tolist(), right.tolist())):
        assert scorer.encoder.levels_one(rows[i], rows[j]) == levels[k].tolist()
    scalar = Scorer(model)
    for i in range(0, len(feats), 7):
        others = list(range(len(feats)))
        got = dict(scorer.score_one(feats[i], rows[i], [rows[j] for j in others], [feats[j] for j in others]))
        for j in others:
            expected = scalar.score(feats[i], feats[j])
            if j in got:
                assert got[j] == expected
            else:
                assert expected.decision == Decision.DISTINCT and not names_agree(expected)


def test_missed_pairs_are_put_down_to_blocking_or_the_score():
    from identity_index.diagnosis import cause_counts, explain_misses

    a = PersonFeatures("s/person/1", given="helen", family="taylor", phones=frozenset({"07870710005"}))
    b = PersonFeatures("e/person/2", given="helen", family="donnelly")
    c = PersonFeatures("e/person/3", given="helen", family="taylor", dob=dt.date(1980, 1, 1))
    truth = {"s/person/1": "T1", "e/person/2": "T1", "e/person/3": "T1"}
    model = default_model()
    batch = link_batch([a, b, c], model)
    misses = explain_misses([a, b, c], batch.clusters.cluster_of, truth, batch.scores, Scorer(model),
                            {frozenset((a.ref, c.ref))})
    causes = {frozenset((m.ref_a, m.ref_b)): m.cause for m in misses}
    assert causes[frozenset((a.ref, b.ref))] == "blocking"
    assert causes[frozenset((a.ref, c.ref))].startswith(("guard:", "review", "distinct"))
    assert cause_counts(misses)["blocking"] >= 1


def test_scores_from_remembered_levels_equal_fresh_scores(feats, monkeypatch):
    """`Scorer.score_levels` shares what follows from a pair's levels (and the names its frequency
    adjustments read) between pairs: every score equals one worked out afresh, whatever the
    order, and also once the remembered combinations have been forgotten."""
    from identity_index import scoring

    monkeypatch.setattr(scoring, "LEVELS_REMEMBERED", 50)  # forgotten many times over
    left, right = candidate_pair_array(feats, list(RULES.values()))
    given, family = Counter(f.given for f in feats if f.given), Counter(f.family for f in feats if f.family)
    model = dataclasses.replace(default_model(), tf={  # exact matches on rare names weigh more
        "given": {g: n / len(feats) for g, n in given.items()}, "family": {f: n / len(feats) for f, n in family.items()}})
    assert model.tf_adjustment("given", given.most_common()[0][0]) != model.tf_adjustment("given", given.most_common()[-1][0])
    remembering, fresh = Scorer(model), Scorer(model)
    for i, j in list(zip(left.tolist(), right.tolist())) * 2:  # the second time round from memory
        a, b = feats[i], feats[j]
        levels = comparison_vector(a, b)
        assert remembering.score_levels(a, b, levels) == fresh.score(a, b), (a, b)
    assert 0 < len(remembering._by_levels) <= 50
