"""Blocking keys, and the reduction ratio and pairs completeness they are measured by."""

from __future__ import annotations

from collections import Counter

import pytest

from hub.identity import synthetic
from identity_index.blocking import (
    DEFAULT_RULES,
    RULES,
    SPLIT_AT,
    WINDOW,
    UnknownBlockingRule,
    block_keys,
    blocking_report,
    candidate_pair_array,
    candidate_pairs,
    context_blocks,
    filed_keys,
    level_key,
    rules_named,
)
from identity_index.features import features_from_canonical
from tests.unit.identity.identity_factory import feat

ALL = rules_named(DEFAULT_RULES)


def _meet(a, b, rules=ALL) -> bool:
    return bool(set(block_keys(a, rules)) & set(block_keys(b, rules)))


def test_sound_alike_surnames_meet_on_surname_and_year():
    rule = [RULES["surname_year"]]
    assert _meet(feat("Amy", "Smith", "2015-03-02"), feat("Amy", "Smyth", "2015-11-30"), rule)
    assert not _meet(feat("Amy", "Smith", "2015-03-02"), feat("Amy", "Smith", "2016-03-02"), rule)


def test_transposed_date_of_birth_still_meets():
    assert _meet(feat("Amy", "Smith", "2015-03-02"), feat("Zoe", "Okafor", "2015-02-03"), [RULES["dob"]])


def test_swapped_names_meet():
    assert _meet(feat("Amy", "Taylor", "2015-03-02"), feat("Taylor", "Amy", "2015-07-01"), [RULES["surname_year"]])


def test_postcode_with_initial_and_strong_identifiers():
    assert _meet(feat("Amy", postcode="NE1 4AB"), feat("Annie", "Okafor", postcode="NE1 4AB"),
                 [RULES["postcode_initial"]])
    assert _meet(feat("A", "B", None, nhs="9434765919"), feat("C", "D", None, nhs="9434765919"), [RULES["nhs"]])
    assert _meet(feat(upn="A123456789012"), feat("X", "Y", None, upn="A123456789012"), [RULES["upn"]])


def test_missing_fields_give_no_keys():
    assert block_keys(feat(None, "Smith", None, postcode=None), [RULES["dob"], RULES["postcode_initial"]]) == []


def test_unknown_rule_is_named():
    with pytest.raises(UnknownBlockingRule, match="no_such_rule"):
        rules_named(["dob", "no_such_rule"])


def test_reduction_ratio_and_pairs_completeness():
    records = [feat("Amy", "Smith", "2015-03-02", ref="a1"), feat("Amy", "Smyth", "2015-03-02", ref="a2"),
               feat("Ben", "Jones", "2012-07-09", ref="b1"), feat("Benjamin", "Jones", "2012-09-07", ref="b2"),
               feat("Cara", "Okafor", "2001-01-05", ref="c1"), feat("Kara", "Nowak", "1999-12-12", ref="c2")]
    truth = {"a1": "A", "a2": "A", "b1": "B", "b2": "B", "c1": "C", "c2": "C"}
    pairs = candidate_pairs(records, ALL)
    report = blocking_report(records, pairs, truth)
    assert report.total_pairs == 15
    assert report.candidate_pairs == len(pairs) < 15
    assert report.reduction_ratio == pytest.approx(1 - len(pairs) / 15)
    assert report.true_pairs == 3
    assert report.true_pairs_kept == 2  # the C pair shares nothing: blocking loses it
    assert report.pairs_completeness == pytest.approx(2 / 3)


def test_oversized_blocks_are_skipped():
    records = [feat("Amy", "Smith", "2015-03-02") for _ in range(5)]
    assert len(candidate_pairs(records, [RULES["dob"]], max_block=10)) == 10
    assert candidate_pairs(records, [RULES["dob"]], max_block=4) == set()


def test_filed_keys_carry_the_values_refining_each_key_under_the_rules_that_split():
    f = feat("Amy", "Smith", "2015-03-02")
    filed = filed_keys(f, ALL)
    assert [(r, k) for r, k, _d in filed] == block_keys(f, ALL)
    assert ("surname_year", "SM0|2015", "03#02") in filed
    assert all(d == "" for r, _k, d in filed if r == "postcode_initial")  # no refinement


def _in_blocks(f, rules, blocks) -> bool:
    """Whether `f` (a stored record) is filed under one of these (rule, key, refining values) blocks."""
    depth = {r.name: len(r.refine) for r in rules}
    for rule, key, detail in filed_keys(f, rules):
        values = tuple(detail.split("#")) if depth[rule] else ()
        if any((rule, key, values[:i]) in blocks for i in range(len(values) + 1)):
            return True
    return False


def _stored_members(batch, focus, rules, blocks) -> dict:
    """What `repository.block_rows` gives a bulk link: per rule, the context records (indices in
    `batch`, after the first `focus`) filed in these blocks, and each one's block as a key string."""
    depth = {r.name: len(r.refine) for r in rules}
    out: dict = {}
    for i in range(focus, len(batch)):
        for rule, key, detail in filed_keys(batch[i], rules):
            values = tuple(detail.split("#")) if depth[rule] else ()
            for d in range(len(values) + 1):
                if (rule, key, values[:d]) in blocks:
                    at, names = out.setdefault(rule, ([], []))
                    at.append(i)
                    names.append(level_key((rule, key, values[:d]))[1])
                    break
    return out


@pytest.mark.parametrize("max_block", [1000, 80])
def test_the_context_blocks_give_exactly_the_pairs_of_the_whole_store(max_block):
    """A bulk link reading only the blocks `context_blocks` names, sized by the store's counts,
    compares the very pairs it would with every stored record at hand."""
    rules = list(RULES.values())
    feats = [features_from_canonical(r.ref, r.person) for r in synthetic.people(4000, seed=3)]
    new, stored = feats[:200], feats[200:]
    counts = Counter(k for f in stored for k in filed_keys(f, rules))
    assert max(Counter(k for f in stored for k in block_keys(f, rules)).values()) > 2 * SPLIT_AT  # blocks that split

    def ref_pairs(records, **kw):
        left, right = candidate_pair_array(records, rules, max_block=max_block, focus=len(new), **kw)
        return {(records[a].ref, records[b].ref) for a, b in zip(left.tolist(), right.tolist(), strict=True)}

    whole = ref_pairs(new + stored)
    plan = context_blocks(new, rules, counts, max_block=max_block)
    context = [f for f in stored if _in_blocks(f, rules, plan.blocks)]
    assert len(context) < len(stored) / 2
    assert ref_pairs(new + context, sizes=plan.sizes) == whole
    assert ref_pairs(new + context) != whole  # sized by its members alone, blocks would not split so
    # the context's blocks as the store files them: its keys are not worked out again, same pairs
    stored = _stored_members(new + context, len(new), rules, plan.blocks)
    assert ref_pairs(new + context, sizes=plan.sizes, stored=stored) == whole


def test_blocks_without_a_stored_record_are_not_read():
    """Into an empty index nothing is read nor sized (the new records are every block's whole);
    beside a store, only blocks holding stored records, and every block of their keys is sized
    with the new records."""
    rules = list(RULES.values())
    feats = [features_from_canonical(r.ref, r.person) for r in synthetic.people(600, seed=5)]
    empty = context_blocks(feats, rules, {})
    assert empty.blocks == frozenset() and empty.sizes == {}
    new, stored = feats[:100], feats[100:]
    counts = Counter(k for f in stored for k in filed_keys(f, rules))
    plan = context_blocks(new, rules, counts)
    held = {(rule, key, tuple(detail.split("#")) if detail else ()) for rule, key, detail in counts}
    for rule, key, values in plan.blocks:
        assert any(h[:2] == (rule, key) and h[2][:len(values)] == values for h in held)
    sized = {(rule, key.split("#")[0]) for rule, keys in plan.sizes.items() for key in keys}
    assert sized and sized <= {h[:2] for h in held}


def _namesakes_without_a_birth_date(people: int) -> list:
    """Three records each of `people` David Smiths with no date of birth (parents named only as a
    pupil's contact), one person's records told apart from the others' by their postcode."""
    return [feat("David", "Smith", None, postcode=f"DE{p // 400} {p % 9 + 1}{'ABDEFGHJLN'[p // 9 % 10]}{'PQRSTUWXYZ'[p // 90 % 4]}",
                 ref=f"t/person/{p}-{copy}") for p in range(people) for copy in range(3)]


def test_a_block_too_large_at_its_finest_level_is_compared_in_a_window():
    """Refining cannot split records without a date of birth: their block is compared in a sliding
    window (pairs grow with its size, not its square), and one person's records, side by side in
    the window's order, still meet."""
    records = _namesakes_without_a_birth_date(100)
    rules = [RULES["family_initial"]]
    left, right = candidate_pair_array(records, rules)
    assert len(left) == sum(min(WINDOW - 1, len(records) - 1 - k) for k in range(len(records)))
    assert len(left) < len(records) * (len(records) - 1) // 2 / 5
    partners = Counter(left.tolist() + right.tolist())
    assert max(partners.values()) <= 2 * (WINDOW - 1)
    pairs = set(zip(left.tolist(), right.tolist(), strict=True))
    assert all((3 * p, 3 * p + 1) in pairs and (3 * p + 1, 3 * p + 2) in pairs and (3 * p, 3 * p + 2) in pairs
               for p in range(100))
    small = records[:3 * (SPLIT_AT // 3)]
    assert len(candidate_pairs(small, rules)) == len(small) * (len(small) - 1) // 2  # no window under SPLIT_AT


def test_a_windowed_block_gives_a_bulk_link_the_pairs_of_the_whole_store():
    """The window runs over the whole block, stored records and new ones together, so the bulk
    link's context gives the very pairs the whole store would."""
    rules = list(RULES.values())
    records = _namesakes_without_a_birth_date(100)
    new, stored = records[150:170], records[:150] + records[170:]
    counts = Counter(k for f in stored for k in filed_keys(f, rules))

    def ref_pairs(batch, **kw):
        left, right = candidate_pair_array(batch, rules, focus=len(new), **kw)
        return {frozenset((batch[a].ref, batch[b].ref)) for a, b in zip(left.tolist(), right.tolist(), strict=True)}

    plan = context_blocks(new, rules, counts)
    context = [f for f in stored if _in_blocks(f, rules, plan.blocks)]
    whole = ref_pairs(new + stored)
    assert ref_pairs(new + context, sizes=plan.sizes) == whole
    assert ref_pairs(new + context, sizes=plan.sizes,
                     stored=_stored_members(new + context, len(new), rules, plan.blocks)) == whole
    assert len(whole) < len(new) * 2 * (WINDOW - 1) * len(rules)
