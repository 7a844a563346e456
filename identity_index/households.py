"""Household corroboration: two records with the same name but nothing else in common
(a parent named only as a pupil's contact, and the same parent in another system) are
the same person when each is, in the same role, a relative of records of one same person
or of records living at one address (a parent of siblings).

Used after clustering: pairs held back as "names only" whose records share a relative's
person become links by the rule `shared_relative`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np

from identity_index.scoring import Decision, MadeBy, PairScore

GIVEN_AGREE = frozenset({"exact", "nickname", "jw_high", "swapped"})
FAMILY_AGREE = frozenset({"exact", "hyphen_or_previous", "jw_high", "swapped"})


# Legacy systems disagree on whether an adult is a child's parent or carer: one role here.
ROLE_GROUP = {"parent": "parent_or_carer", "carer": "parent_or_carer", "child": "child", "cared_for": "child"}
INVERSE = {"parent": "child", "child": "parent", "carer": "cared_for", "cared_for": "carer",
           "sibling": "sibling", "household_member": "household_member"}


def relatives_of(relationships: Iterable[tuple[str, str, str]]) -> dict[str, set[tuple[str, str]]]:
    """Per record, its relatives and the role the record plays to each: from (subject ref,
    related ref, kind) where kind says what `related` is to `subject` (kind=parent: a parent)."""
    out: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for subject, related, kind in relationships:
        out[related].add((subject, kind))
        out[subject].add((related, INVERSE.get(kind, kind)))
    return out


def names_agree(score: PairScore) -> bool:
    level = score.levels
    return level.get("given") in GIVEN_AGREE and level.get("family") in FAMILY_AGREE \
        and level.get("dob") != "else" and level.get("sex") != "else" and level.get("nhs") != "disagree"


def corroborate(scores: Iterable[PairScore], relatives: dict[str, set[tuple[str, str]]],
                cluster_of: dict[str, object], home_of: dict[str, str] | None = None) -> list[PairScore]:
    """The unlinked name-agreeing pairs whose records have relatives in one cluster (or, with
    `home_of` (ref → postcode), relatives living at one address: siblings), as links."""
    scores = list(scores)
    picked = candidates(scores, relatives)
    return [upgrade(scores[i]) for i in corroborated(scores, picked, relatives, cluster_of, home_of)]


def candidates(scores: Sequence[PairScore], relatives: dict[str, set[tuple[str, str]]]) -> list[int]:
    """Positions of the pairs corroboration may upgrade, whatever the clusters: both records have
    relatives, the pair is not linked, not an NHS conflict, and the names agree. Worked out once
    for all of a batch's rounds (`corroborated`), which then walk only these, not every score of
    the batch."""
    agree: dict[int, bool] = {}  # by the pair's field tuple, which pairs with the same levels share
    out = []
    for i, s in enumerate(scores):
        if s.ref_a not in relatives or s.ref_b not in relatives:
            continue  # a record without relatives has no kin: most pairs, skipped before the rest
        if s.decision == Decision.LINK or s.rule == "nhs_conflict":
            continue
        same = agree.get(id(s.raw))
        if same is None:
            same = agree[id(s.raw)] = names_agree(s)
        if same:
            out.append(i)
    return out


def corroborated(scores: Sequence[PairScore], picked: Iterable[int], relatives: dict[str, set[tuple[str, str]]],
                 cluster_of: dict[str, object], home_of: dict[str, str] | None = None) -> list[int]:
    """Those of the `picked` pairs (`candidates`) not in one cluster whose records have kin in
    common: a relative's person in the same role, or with `home_of`, a relative's address."""
    home_of = home_of or {}
    out = []
    kin: dict[str, set[object]] = {}  # each record's, once: a record is in many pairs
    for i in picked:
        s = scores[i]
        if s.decision == Decision.LINK:
            continue
        if cluster_of.get(s.ref_a) is not None and cluster_of.get(s.ref_a) == cluster_of.get(s.ref_b):
            continue
        for ref in (s.ref_a, s.ref_b):
            if ref not in kin:
                kin[ref] = _kin(ref, relatives, cluster_of, home_of)
        if kin[s.ref_a] & kin[s.ref_b]:
            out.append(i)
    return out


def reopened(picked: Iterable[int], scores: Sequence[PairScore], relatives: dict[str, set[tuple[str, str]]],
             before: dict[str, int], after: dict[str, int]) -> list[int]:
    """Of the `picked` pairs not linked, those `corroborated` may decide otherwise once the records
    are clustered again (`before` → `after`, each record's cluster): a pair with a record, or a
    relative of one, in a cluster that gained or lost records (`moved`). Any other pair has its
    clusters and its records' kin as the round before decided it, so it would not be upgraded now
    either. At 1,000,000 people each round walked every candidate pair again (~20 s a round in a
    chunk of 758,737 held records), where only the pairs near an upgrade can change."""
    touched = set(moved(before, after))
    touched.update([r for ref in list(touched) for r, _role in relatives.get(ref, ())])  # kin are symmetric
    if not touched:
        return []
    out = []
    for i in picked:
        s = scores[i]
        if s.decision != Decision.LINK and (s.ref_a in touched or s.ref_b in touched):
            out.append(i)
    return out


def moved(before: dict[str, int], after: dict[str, int]) -> list[str]:
    """The records whose cluster is not the same set of records in `after` as in `before` (the
    cluster numbers of each may differ: `cluster_batch` numbers them by their first record)."""
    refs = list(before)
    if not refs:
        return []
    old = np.fromiter(before.values(), np.int64, len(refs))
    new = np.fromiter((after[r] for r in refs), np.int64, len(refs))
    base = int(new.max()) + 1
    pair = np.unique(old * base + new)  # each (old, new) pair of cluster numbers once
    olds, news = pair // base, pair % base
    split = _repeated(olds)  # an old cluster whose records are in several new ones
    joined = _repeated(news)  # a new cluster with records of several old ones
    at = np.flatnonzero(np.isin(old, split) | np.isin(new, joined))
    return [refs[i] for i in at.tolist()]


def _repeated(values: np.ndarray) -> np.ndarray:
    distinct, counts = np.unique(values, return_counts=True)
    return distinct[counts > 1]


def upgrade(score: PairScore) -> PairScore:
    """A corroborated pair as a link by the `shared_relative` rule."""
    return replace(score, decision=Decision.LINK, made_by=MadeBy.RULE, rule="shared_relative")


def _kin(ref: str, relatives: dict[str, set[tuple[str, str]]], cluster_of: dict[str, object],
         home_of: dict[str, str]) -> set[object]:
    """(role, person) and (role, home) of every relative: a father and his namesake son are
    both relatives of the household, but not in the same role."""
    kin: set[object] = set()
    for r, role in relatives.get(ref, ()):
        role = ROLE_GROUP.get(role, role)
        if r in cluster_of:
            kin.add((role, "person", cluster_of[r]))
        if home_of.get(r):
            kin.add((role, "home", home_of[r]))
    return kin
