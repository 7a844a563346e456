"""Comparison levels per field: how closely two records agree on one field.

Each comparison names its levels from strongest agreement to plain disagreement
("else"); `level(a, b)` returns the index of the first level that holds, or None
when either side lacks the field (a missing value is no evidence either way).
The model turns each level into a match weight.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from nicknames import NickNamer
from rapidfuzz.distance import JaroWinkler

from identity_index.features import PersonFeatures

JW_HIGH = 0.92
JW_MID = 0.80


@dataclass(frozen=True)
class Comparison:
    """A named field comparison: `levels` from strongest to weakest, `level` picks one."""

    name: str
    levels: tuple[str, ...]
    level: Callable[[PersonFeatures, PersonFeatures], int | None]
    tf_field: str | None = None  # the feature whose value frequency adjusts the exact level

    def index(self, label: str) -> int:
        return self.levels.index(label)


@lru_cache(maxsize=1)
def _namer() -> NickNamer:
    return NickNamer()


@lru_cache(maxsize=50_000)
def _name_family(name: str) -> frozenset[str]:
    """The name, its canonical forms and their diminutives (Bill ↔ William ↔ Will)."""
    namer = _namer()
    group = {name} | namer.nicknames_of(name) | namer.canonicals_of(name)
    for canonical in namer.canonicals_of(name):
        group |= namer.nicknames_of(canonical)
    return frozenset(group)


def are_nicknames(a: str, b: str) -> bool:
    """True when one name is a recorded diminutive or canonical form of the other."""
    if not a or not b or a == b:
        return False
    return b in _name_family(a) or a in _name_family(b)


def jaro_winkler(a: str, b: str) -> float:
    return JaroWinkler.similarity(a, b)


def _swapped(a: PersonFeatures, b: PersonFeatures) -> bool:
    if not (a.given and a.family and b.given and b.family):
        return False
    return (jaro_winkler(a.given, b.family) >= JW_HIGH and jaro_winkler(a.family, b.given) >= JW_HIGH
            and a.given != b.given)


GIVEN_LEVELS = ("exact", "nickname", "jw_high", "jw_mid", "initial", "swapped", "else")


def given_level(a: PersonFeatures, b: PersonFeatures) -> int | None:
    x, y = a.given, b.given
    if not x or not y:
        return None
    if x == y or x in b.given_alts or y in a.given_alts:
        return 0
    if are_nicknames(x, y):
        return 1
    if _swapped(a, b):
        return 5
    sim = jaro_winkler(x, y)
    if sim >= JW_HIGH:
        return 2
    if sim >= JW_MID:
        return 3
    if (len(x) == 1 or len(y) == 1) and x[0] == y[0]:
        return 4
    return 6


FAMILY_LEVELS = ("exact", "hyphen_or_previous", "jw_high", "jw_mid", "swapped", "else")


def family_level(a: PersonFeatures, b: PersonFeatures) -> int | None:
    x, y = a.family, b.family
    if not x or not y:
        return None
    if x == y:
        return 0
    if x in b.family_alts or y in a.family_alts or (a.family_alts & b.family_alts):
        return 1
    if _swapped(a, b):
        return 4
    sim = jaro_winkler(x, y)
    if sim >= JW_HIGH:
        return 2
    if sim >= JW_MID:
        return 3
    return 5


DOB_LEVELS = ("exact", "day_month_transposed", "one_part_different", "year_only", "else")


def dob_level(a: PersonFeatures, b: PersonFeatures) -> int | None:
    x, y = a.dob, b.dob
    if x is None or y is None:
        return None
    if a.dob_precision != "day" or b.dob_precision != "day":
        coarse = "year" if "year" in (a.dob_precision, b.dob_precision) else "month"
        same = x.year == y.year and (coarse == "year" or x.month == y.month)
        return 3 if same else 4
    if x == y:
        return 0
    if x.year == y.year and x.day == y.month and x.month == y.day:
        return 1
    differing = (x.year != y.year) + (x.month != y.month) + (x.day != y.day)
    return 2 if differing == 1 else 4


def dob_compatible(a: PersonFeatures, b: PersonFeatures) -> bool:
    """Dates of birth that a typo could explain (or one is missing)."""
    level = dob_level(a, b)
    return level is None or level < 4


SEX_LEVELS = ("exact", "else")


def sex_level(a: PersonFeatures, b: PersonFeatures) -> int | None:
    if not a.sex or not b.sex:
        return None
    return 0 if a.sex == b.sex else 1


ADDRESS_LEVELS = ("exact", "any_postcode", "district", "else")


def address_level(a: PersonFeatures, b: PersonFeatures) -> int | None:
    if a.uprn and b.uprn and a.uprn == b.uprn:
        return 0
    if not a.postcode or not b.postcode:
        return None
    if a.postcode == b.postcode:
        return 0
    if a.postcodes & b.postcodes:
        return 1
    if _district(a.postcode) == _district(b.postcode):
        return 2
    return 3


def _district(compact: str) -> str:
    return compact[:-3]


ID_LEVELS = ("agree", "disagree")


def _identifier(attr: str) -> Callable[[PersonFeatures, PersonFeatures], int | None]:
    def level(a: PersonFeatures, b: PersonFeatures) -> int | None:
        x, y = getattr(a, attr), getattr(b, attr)
        if not x or not y:
            return None
        return 0 if x == y else 1

    level.__name__ = f"{attr}_level"
    return level


PHONE_LEVELS = ("agree", "disagree")


def phone_level(a: PersonFeatures, b: PersonFeatures) -> int | None:
    if not a.phones or not b.phones:
        return None
    return 0 if a.phones & b.phones else 1


nhs_level = _identifier("nhs")
upn_level = _identifier("upn")

COMPARISONS: tuple[Comparison, ...] = (
    Comparison("given", GIVEN_LEVELS, given_level, tf_field="given"),
    Comparison("family", FAMILY_LEVELS, family_level, tf_field="family"),
    Comparison("dob", DOB_LEVELS, dob_level),
    Comparison("sex", SEX_LEVELS, sex_level),
    Comparison("address", ADDRESS_LEVELS, address_level),
    Comparison("nhs", ID_LEVELS, nhs_level),
    Comparison("upn", ID_LEVELS, upn_level),
    Comparison("phone", PHONE_LEVELS, phone_level),
)

BY_NAME = {c.name: c for c in COMPARISONS}


def comparison_vector(a: PersonFeatures, b: PersonFeatures,
                      comparisons: tuple[Comparison, ...] = COMPARISONS) -> list[int | None]:
    """The level of every comparison for one pair (None where a value is missing)."""
    return [c.level(a, b) for c in comparisons]

