"""The true population: households of children and the adults who care for them.

This is what the legacy systems only partially and imperfectly record; the
ground truth maps every legacy row back to one of these people.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from hub.estate.identifiers import new_nhs_number, upn
from hub.estate.pools import (
    ACCENTED_GIVEN,
    LANGUAGE_BY_ETHNICITY,
    LOCALITIES,
    TOWNS,
    Pools,
    postcode,
)


@dataclass(frozen=True)
class Address:
    line1: str
    locality: str  # '' when none
    town: str
    postcode: str
    since: dt.date

    @property
    def lines(self) -> list[str]:
        return [p for p in (self.line1, self.locality, self.town) if p]


@dataclass
class TruePerson:
    person_id: str
    given: str
    middle: str | None
    family: str
    sex: str  # 'M' | 'F'
    dob: dt.date
    role: str  # child | mother | father | stepmother | stepfather | grandmother | grandfather | carer
    nhs: str
    ethnicity: str
    language: str
    previous_family: str | None = None
    upn: str | None = None
    sen: str = "N"  # N | K | E
    health_flag: bool = False
    phone: str = ""
    parent_ids: tuple[str, ...] = ()  # the adults of the household who are this child's parents

    def age(self, on: dt.date) -> int:
        return on.year - self.dob.year - ((on.month, on.day) < (self.dob.month, self.dob.day))

    @property
    def is_child(self) -> bool:
        return self.role == "child"


@dataclass
class Household:
    number: int
    adults: list[TruePerson]
    children: list[TruePerson]
    address: Address
    previous_address: Address | None = None
    systems: dict[str, set[str]] = field(default_factory=dict)  # person_id -> systems

    @property
    def members(self) -> list[TruePerson]:
        return self.adults + self.children

    def relation(self, child: TruePerson, adult: TruePerson) -> str:
        """How `adult` stands to `child`: mother, father, stepfather, grandmother, carer …"""
        if adult.person_id in child.parent_ids:
            return "mother" if adult.sex == "F" else "father"
        return adult.role if adult.role in ("grandmother", "grandfather", "carer") else (
            "stepmother" if adult.sex == "F" else "stepfather")


def _date_between(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    days = (end - start).days
    return start + dt.timedelta(days=rng.randrange(max(days, 1)))


def _birth(rng: random.Random, as_of: dt.date, age: int) -> dt.date:
    latest = as_of.replace(year=as_of.year - age) if not (as_of.month == 2 and as_of.day == 29) else \
        as_of.replace(year=as_of.year - age, day=28)
    return latest - dt.timedelta(days=rng.randrange(365))


class PopulationBuilder:
    """Streams households until exactly `people` true people have been made."""

    def __init__(self, rng: random.Random, pools: Pools, as_of: dt.date, people: int) -> None:
        self.rng, self.pools, self.as_of, self.people = rng, pools, as_of, people
        self.made = 0
        self.upn_serial = 0

    def households(self) -> Iterator[Household]:
        number = 0
        while self.made < self.people:
            number += 1
            yield self._household(number, self.people - self.made)

    def _person(self, role: str, sex: str, family: str, age: int, ethnicity: str) -> TruePerson:
        rng = self.rng
        self.made += 1
        if rng.random() < 0.004:
            given = rng.choice(ACCENTED_GIVEN[sex])
        else:
            given = self.pools.given[sex].draw(rng)
        middle = self.pools.given[sex].draw(rng) if rng.random() < 0.45 else None
        language = rng.choice(LANGUAGE_BY_ETHNICITY[ethnicity]) if ethnicity in LANGUAGE_BY_ETHNICITY \
            and rng.random() < 0.6 else "ENG"
        p = TruePerson(person_id=f"P{self.made:07d}", given=given, middle=middle, family=family,
                       sex=sex, dob=_birth(rng, self.as_of, age), role=role,
                       nhs=new_nhs_number(rng), ethnicity=ethnicity, language=language,
                       phone=f"07{rng.randrange(100, 999)} {rng.randrange(100000, 999999)}")
        if role == "child":
            r = rng.random()
            p.sen = "E" if r < 0.04 else "K" if r < 0.16 else "N"
            p.health_flag = rng.random() < 0.08
            if age >= 3:
                self.upn_serial += 1
                school_start = p.dob.year + 4
                p.upn = upn("830", f"{rng.randrange(2000, 2200):04d}", school_start, self.upn_serial)
        return p

    def _address(self, since: dt.date) -> Address:
        rng = self.rng
        town, districts = rng.choice(TOWNS)
        return Address(line1=f"{rng.randrange(1, 180)} {rng.choice(self.pools.streets)}",
                       locality=rng.choice(LOCALITIES) if rng.random() < 0.4 else "",
                       town=town, postcode=postcode(rng, rng.choice(districts)), since=since)

    def _household(self, number: int, room: int) -> Household:
        rng = self.rng
        shape = rng.random()
        n_children = min(rng.choices((1, 2, 3, 4, 5), (35, 38, 18, 7, 2))[0], max(room - 1, 1))
        ethnicity = self.pools.ethnicity.draw(rng)
        if room == 1:
            shape = -1.0  # the last person: a looked-after child with no adult at home
        ages = sorted((rng.randrange(0, 19) for _ in range(n_children)), reverse=True)
        eldest = ages[0] if ages else 0
        father_name = self.pools.surnames.draw(rng)
        adults: list[TruePerson] = []
        children: list[TruePerson] = []
        if shape < 0:
            children.append(self._person("child", rng.choice("MF"), father_name, ages[0], ethnicity))
        elif shape < 0.05 and room >= 2:  # grandparents bringing up their grandchildren
            gran = self._person("grandmother", "F", father_name, eldest + rng.randrange(40, 60), ethnicity)
            adults.append(gran)
            if room - 1 - n_children >= 1 and rng.random() < 0.6:
                adults.append(self._person("grandfather", "M", father_name, gran.age(self.as_of) + 2, ethnicity))
            children += [self._person("child", rng.choice("MF"), father_name, a, ethnicity)
                         for a in ages[: max(1, min(n_children, room - len(adults)))]]
        else:
            mother_age = eldest + rng.randrange(19, 40)
            two_parent = shape < 0.6 and room - n_children >= 2
            blended = 0.85 <= shape < 0.95 and room - n_children >= 2 and n_children >= 2
            lone_father = 0.95 <= shape
            if lone_father:
                adults.append(self._person("father", "M", father_name, mother_age + 2, ethnicity))
                kids_name = father_name
            else:
                birth_name = self.pools.surnames.draw(rng)
                married = two_parent and rng.random() < 0.7
                mother = self._person("mother", "F", father_name if married else birth_name, mother_age, ethnicity)
                if married:
                    mother.previous_family = birth_name
                adults.append(mother)
                kids_name = father_name if (two_parent or rng.random() < 0.5) else mother.family
                if (two_parent or blended) and room - n_children >= 2:
                    role = "stepfather" if blended else "father"
                    partner_name = father_name if not blended else self.pools.surnames.draw(rng)
                    adults.append(self._person(role, "M", partner_name, mother_age + rng.randrange(-3, 8), ethnicity))
            for i, age in enumerate(ages[: room - len(adults)]):
                family = kids_name
                if blended and i >= len(ages) // 2:
                    family = adults[-1].family  # younger half-siblings carry the stepfather's name
                elif rng.random() < 0.05 and adults[0].sex == "F" and adults[0].previous_family:
                    family = f"{adults[0].previous_family}-{kids_name}"
                children.append(self._person("child", rng.choice("MF"), family, age, ethnicity))
        for child in children:
            parents = [a.person_id for a in adults if a.role in ("mother", "father")]
            if adults and adults[-1].role == "stepfather" and child.family == adults[-1].family:
                parents.append(adults[-1].person_id)  # the stepfather is the younger ones' father
            child.parent_ids = tuple(parents)
        eldest_dob = max((c.dob for c in children), default=self.as_of - dt.timedelta(days=3650))
        moved = rng.random() < 0.25
        since = _date_between(rng, eldest_dob, self.as_of) if moved else eldest_dob
        previous = self._address(_date_between(rng, since - dt.timedelta(days=3000), since)) if moved else None
        return Household(number=number, adults=adults, children=children,
                         address=self._address(since), previous_address=previous)
