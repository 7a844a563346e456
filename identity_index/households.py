"""Household corroboration: two records with the same name but nothing else in common
(a parent named only as a pupil's contact, and the same parent in another system) are
the same person when each is, in the same role, a relative of records of one same person
or of records living at one address (a parent of siblings).

Used after clustering: pairs held back as "names only" whose records share a relative's
person become links by the rule `shared_relative`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace

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
    home_of = home_of or {}
    upgraded = []
    kin: dict[str, set[object]] = {}  # each record's, once: a record is in many pairs
    for s in scores:
        if s.ref_a not in relatives or s.ref_b not in relatives:
            continue  # a record without relatives has no kin: most pairs, skipped before the rest
        if s.decision == Decision.LINK or s.rule == "nhs_conflict" or not names_agree(s):
            continue
        if cluster_of.get(s.ref_a) is not None and cluster_of.get(s.ref_a) == cluster_of.get(s.ref_b):
            continue
        for ref in (s.ref_a, s.ref_b):
            if ref not in kin:
                kin[ref] = _kin(ref, relatives, cluster_of, home_of)
        if kin[s.ref_a] & kin[s.ref_b]:
            upgraded.append(replace(s, decision=Decision.LINK, made_by=MadeBy.RULE, rule="shared_relative"))
    return upgraded


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
