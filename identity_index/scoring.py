"""Scoring a pair: Fellegi–Sunter match weight, per-field evidence, deterministic rules
layered on top, and the decision (link, clerical review, distinct).

Every `PairScore` explains itself: the level and weight of every field, the
term-frequency adjustment, the prior, and the rule if one decided.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from identity_index.comparisons import COMPARISONS, Comparison, are_nicknames, dob_compatible
from identity_index.features import PersonFeatures
from identity_index.model import Model


class Decision(StrEnum):
    LINK = "link"
    REVIEW = "review"
    DISTINCT = "distinct"


class MadeBy(StrEnum):
    RULE = "rule"
    MODEL = "model"
    STEWARD = "steward"


@dataclass(frozen=True, slots=True)
class FieldWeight:
    comparison: str
    level: str  # a level label, or "missing"
    weight: float  # bits of evidence (log2 m/u), 0 when missing
    tf_adjustment: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"comparison": self.comparison, "level": self.level, "weight": round(self.weight, 3),
                "tf_adjustment": round(self.tf_adjustment, 3)}


@dataclass(frozen=True, slots=True)
class PairScore:
    ref_a: str
    ref_b: str
    match_weight: float
    probability: float
    raw: tuple[tuple[str, str, float, float], ...]  # (comparison, level, weight, tf adjustment) per field
    decision: Decision
    made_by: MadeBy
    rule: str | None = None

    @property
    def fields(self) -> tuple[FieldWeight, ...]:
        return tuple(FieldWeight(*r) for r in self.raw)

    @property
    def levels(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.raw}

    def explanation(self, prior_weight: float) -> dict[str, Any]:
        return {"prior": round(prior_weight, 3), "fields": [f.to_json() for f in self.fields],
                "match_weight": round(self.match_weight, 3), "probability": self.probability,
                "rule": self.rule}


LEVELS_REMEMBERED = 200_000  # `Scorer.score_levels`' combinations kept (then forgotten all at once)


def probability_of(weight: float) -> float:
    if weight > 60:
        return 1.0
    if weight < -60:
        return 0.0
    odds = 2.0 ** weight
    return odds / (1.0 + odds)


class Scorer:
    """Scores pairs of records with one model; cheap to build, safe to share."""

    def __init__(self, model: Model, comparisons: tuple[Comparison, ...] = COMPARISONS) -> None:
        self.model = model
        self.comparisons = tuple(c for c in comparisons if c.name in model.params)
        self._weights = {c.name: [model.params[c.name].weight(i) for i in range(len(c.levels))]
                         for c in self.comparisons}
        self._tf = tuple((i, c.tf_field) for i, c in enumerate(self.comparisons) if c.tf_field)
        self._by_levels: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # see `score_levels`

    def fields(self, a: PersonFeatures, b: PersonFeatures) -> tuple[FieldWeight, ...]:
        return tuple(FieldWeight(*r) for r in self._raw(a, b))

    def _raw(self, a: PersonFeatures, b: PersonFeatures,
             levels: Sequence[int | None] | None = None) -> tuple[tuple[str, str, float, float], ...]:
        # plain tuples: this runs for every candidate pair, FieldWeight objects only when explained
        out = []
        for i, c in enumerate(self.comparisons):
            level = c.level(a, b) if levels is None else levels[i]
            if level is None:
                out.append((c.name, "missing", 0.0, 0.0))
                continue
            tf = self.model.tf_adjustment(c.name, getattr(a, c.tf_field)) if level == 0 and c.tf_field else 0.0
            out.append((c.name, c.levels[level], self._weights[c.name][level], tf))
        return tuple(out)

    def score(self, a: PersonFeatures, b: PersonFeatures) -> PairScore:
        return self.score_levels(a, b, None)

    def score_levels(self, a: PersonFeatures, b: PersonFeatures,
                     levels: Sequence[int | None] | None) -> PairScore:
        """`score` with the comparison levels (in `self.comparisons` order) already computed,
        e.g. column-wise by `identity_index.vectorised`: what follows from the levels alone is
        `weighed_levels`, shared by every pair that has them; the rest is `finish`."""
        if levels is None:
            return self.finish(a, b, self._weighed(self._raw(a, b, None)))
        return self.finish(a, b, self.weighed_levels(a, levels))

    def weighed_levels(self, a: PersonFeatures, levels: Sequence[int | None]) -> tuple[Any, ...]:
        """(raw, weight, probability, the model's decision, the twin guard) of these levels, with
        `a`'s names where a frequency adjustment reads them: worked out once per combination of
        levels and of those names, and remembered (a bulk link scores millions of pairs with a few
        thousand such combinations; building each pair's weights was a fifth of a chunk at
        1,000,000 people)."""
        key = (*levels, *[getattr(a, f) if levels[i] == 0 else None for i, f in self._tf])
        known = self._by_levels.get(key)
        if known is None:
            if len(self._by_levels) >= LEVELS_REMEMBERED:
                self._by_levels.clear()
            known = self._by_levels[key] = self._weighed(self._raw(a, a, levels))
        return known

    def finish(self, a: PersonFeatures, b: PersonFeatures, known: tuple[Any, ...]) -> PairScore:
        """The pair's score from its `weighed_levels`: the deterministic rules overrule the model."""
        raw, weight, probability, decision, guard = known
        rule = deterministic_rule(a, b)
        if rule == "nhs_conflict":
            return PairScore(a.ref, b.ref, weight, probability, raw, Decision.DISTINCT, MadeBy.RULE, rule)
        if rule is not None:
            return PairScore(a.ref, b.ref, weight, probability, raw, Decision.LINK, MadeBy.RULE, rule)
        if guard is not None:
            return PairScore(a.ref, b.ref, weight, probability, raw, Decision.REVIEW, MadeBy.RULE, guard)
        return PairScore(a.ref, b.ref, weight, probability, raw, decision, MadeBy.MODEL)

    def _weighed(self, raw: tuple[tuple[str, str, float, float], ...]) -> tuple[Any, ...]:
        """(raw, weight, probability, the model's decision, the twin guard if it links) of these
        fields' levels and weights."""
        weight = self.model.prior_weight + sum(r[2] + r[3] for r in raw)
        probability = probability_of(weight)
        t = self.model.thresholds
        decision = (Decision.LINK if probability >= t.upper
                    else Decision.REVIEW if probability >= t.lower else Decision.DISTINCT)
        guard = twin_guard({r[0]: r[1] for r in raw}) if decision == Decision.LINK else None
        return raw, weight, probability, decision, guard


def deterministic_rule(a: PersonFeatures, b: PersonFeatures) -> str | None:
    """Rules that overrule the model: different NHS numbers are never the same person;
    the same NHS number (or UPN) with a compatible date of birth always is, and so is the
    same phone number with the same given name."""
    if a.nhs and b.nhs:
        if a.nhs != b.nhs:
            return "nhs_conflict"
        if dob_compatible(a, b):
            return "nhs_match"
    if a.upn and b.upn and a.upn == b.upn and dob_compatible(a, b) and not (a.nhs and b.nhs):
        return "upn_match"
    if a.phones & b.phones and _same_given(a, b) and dob_compatible(a, b) and not _sex_conflict(a, b):
        return "phone_match"  # one mobile number and one given name: a family name changed, not the person
    return None


def _same_given(a: PersonFeatures, b: PersonFeatures) -> bool:
    return bool(a.given) and (a.given == b.given or are_nicknames(a.given, b.given))


def _sex_conflict(a: PersonFeatures, b: PersonFeatures) -> bool:
    return bool(a.sex and b.sex and a.sex != b.sex)


GIVEN_CLOSE = frozenset({"exact", "nickname", "jw_high", "jw_mid", "initial", "swapped", "missing"})
GIVEN_SAME = frozenset({"exact", "nickname", "missing"})


# Evidence about the person, not the household: an address is shared by a family, so a
# father and his namesake son at one address (one date of birth unknown) stay apart.
CORROBORATING = {"dob": {"exact", "day_month_transposed", "one_part_different", "year_only"},
                 "phone": {"agree"}, "nhs": {"agree"}, "upn": {"agree"}}


def twin_guard(level: dict[str, str]) -> str | None:
    """Cases where the model, which treats fields as independent, would link people who
    are not the same; they go to a steward instead. Twins and siblings share family name,
    date of birth and address, so clearly different given names (or a different sex
    without the same given name) do not link. A parent and child can share a full name,
    so completely different dates of birth do not link, and nor do names with nothing
    personal beside them (an address is the household's)."""
    given = level.get("given", "missing")
    if given not in GIVEN_CLOSE:
        return "given_name_conflict"
    if level.get("sex") == "else" and given not in GIVEN_SAME:
        return "sex_conflict"
    if level.get("dob") == "else":
        return "birth_date_conflict"
    if not any(level.get(name) in allowed for name, allowed in CORROBORATING.items()):
        return "names_only"  # names (and perhaps the household's address) and nothing personal
    return None


def weight_of(probability: float) -> float:
    return math.log2(probability / (1.0 - probability))
