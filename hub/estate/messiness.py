"""How one legacy record sees a true person: typos, diminutives, stale addresses, gaps.

`observe` is called once per record a system holds about a person, so the same
person reads differently in each system (and in a duplicate within one system).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from hub.estate.identifiers import break_nhs_number
from hub.estate.pools import DIMINUTIVES
from hub.estate.population import Address, Household, TruePerson

VOWELS = "aeiou"


@dataclass(frozen=True)
class Profile:
    """How carefully a system keys people: the probability of each kind of variation."""

    keeps_nhs: float  # the NHS number is recorded at all
    typo: float = 0.03
    diminutive: float = 0.08
    swap_names: float = 0.01
    transpose_dob: float = 0.02
    stale_address: float = 0.3  # uses the previous address when the household moved
    uses_previous_surname: float = 0.15
    year_only_dob: float = 0.0  # adults only
    missing_adult_dob: float = 0.05
    initial: float = 0.0  # the given name keyed as an initial only ('J' or 'J.')
    defects: tuple[str, ...] = ("missing_surname",)


@dataclass
class View:
    given: str
    middle: str | None
    family: str | None
    previous_family: str | None
    known_as: str | None
    dob: dt.date | None
    dob_year_only: bool
    nhs: str | None
    address: Address
    sex: str
    defect: str = ""


def typo(rng: random.Random, word: str) -> str:
    """One keying slip: swapped neighbours, dropped, doubled or wrong vowel."""
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    vowel = rng.choice(VOWELS)
    return word[:i] + (vowel if word[i] in VOWELS else word[i]) + word[i + 1:]


def transpose(d: dt.date) -> dt.date:
    """Day and month swapped, as a keyer reading a US-style date would; same date if impossible."""
    if d.day <= 12 and d.day != d.month:
        return d.replace(month=d.day, day=d.month)
    return d


def observe(rng: random.Random, person: TruePerson, household: Household, profile: Profile,
            malformed_rate: float, as_of: dt.date, force_defect: bool = False) -> View:
    given, family = person.given, person.family
    known_as = None
    if rng.random() < profile.diminutive and given in DIMINUTIVES:
        short = rng.choice(DIMINUTIVES[given])
        if rng.random() < 0.5:
            given = short
        else:
            known_as = short
    if rng.random() < profile.initial:
        given = given[0] + rng.choice(("", "."))
    elif rng.random() < profile.typo:
        given = typo(rng, given)
    if rng.random() < profile.typo:
        family = typo(rng, family)
    if "-" in family and rng.random() < 0.3:
        family = family.split("-")[rng.randrange(2)]
    previous = person.previous_family
    if previous and rng.random() < profile.uses_previous_surname:
        family, previous = previous, None  # the record predates the marriage
    if rng.random() < profile.swap_names:
        given, family = family, given
    dob: dt.date | None = person.dob
    year_only = False
    if rng.random() < profile.transpose_dob:
        dob = transpose(person.dob)
    if not person.is_child:
        if rng.random() < profile.missing_adult_dob:
            dob = None
        elif rng.random() < profile.year_only_dob:
            year_only = True
    nhs = person.nhs if rng.random() < profile.keeps_nhs else None
    address = household.address
    if household.previous_address and rng.random() < profile.stale_address:
        address = household.previous_address
    view = View(given=given, middle=person.middle if rng.random() < 0.7 else None, family=family,
                previous_family=previous, known_as=known_as, dob=dob, dob_year_only=year_only,
                nhs=nhs, address=address, sex=person.sex)
    if force_defect or (malformed_rate and rng.random() < malformed_rate):
        _break(rng, view, profile.defects, as_of)
    return view


def _break(rng: random.Random, view: View, defects: tuple[str, ...], as_of: dt.date) -> None:
    defect = rng.choice(defects)
    if defect == "bad_nhs_checksum" and not view.nhs:
        defect = "missing_surname"
    view.defect = defect
    if defect == "missing_surname":
        view.family = None
    elif defect == "bad_nhs_checksum":
        view.nhs = break_nhs_number(view.nhs or "")
    elif defect == "future_date":
        view.dob, view.dob_year_only = as_of + dt.timedelta(days=rng.randrange(800, 1500)), False
    elif defect == "impossible_date" and view.dob is None:
        view.dob = as_of  # writers render an impossible date in the system's own format


def impossible_date_parts(rng: random.Random, year: int) -> tuple[int, int, int]:
    """(day, month, year) of a date that does not exist: 31 February, 31 April, 30 February …"""
    return rng.choice(((31, 2), (30, 2), (31, 4), (31, 6), (31, 9), (31, 11))) + (year,)
