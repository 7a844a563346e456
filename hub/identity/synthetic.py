"""Seeded synthetic people with the mess legacy records have, and their ground truth:
for tests, training checks and `hub bench identity` when no sample estate is at hand.

Each true person appears in 1–4 systems; each record may carry a typo, a nickname,
swapped names, a hyphenated or previous family name, a transposed or partial date
of birth, a missing NHS number, or an older address. Twins (same family name,
date of birth and address, different given name and NHS number) are the hard
negatives.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


GIVEN_F = _words("olivia amelia isla ava mia ivy lily isabella rosie sophia grace freya willow florence emily ella "
           "poppy evie elsie charlotte evelyn sienna daisy matilda harper sofia alice elizabeth jessica "
           "katherine margaret victoria abigail rebecca samantha jennifer susan deborah patricia amanda "
           "chloe megan hannah lauren zara aisha fatima maryam noor amira leah ruby phoebe esme")
GIVEN_M = _words("oliver george noah arthur muhammad leo oscar harry archie jack henry charlie freddie theodore "
           "thomas william james alexander joshua jacob daniel samuel benjamin joseph robert richard "
           "michael christopher anthony matthew andrew edward jonathan nicholas timothy stephen david "
           "peter kenneth ronald zachary ethan mason logan lucas isaac adam ibrahim yusuf omar ali")
FAMILY = _words("smith jones williams taylor brown davies evans wilson thomas johnson roberts robinson thompson "
          "wright walker white edwards hughes green hall lewis harris clarke patel jackson wood turner "
          "martin cooper hill ward morris moore clark lee king baker harrison morgan allen james scott "
          "phillips watson davis parker price bennett young griffiths mitchell kelly cook carter richardson "
          "bailey collins bell shaw murphy miller cox richards khan marshall anderson simpson ellis adams "
          "singh begum wilkinson foster chapman powell webb rogers gray mason ali hunt hussain campbell "
          "matthews owen palmer holmes mills barnes knight lloyd butler russell barker fisher stevens "
          "jenkins murray dixon harvey graham pearson ahmed fletcher walsh kaur gibson howard andrews "
          "stewart elliott reynolds saunders payne fox ford pearce day brooks west lawrence cole atkinson "
          "bradley spencer gill dawson ball burton o'brien watts rose booth perry ryan grant wells "
          "armstrong francis rees hayes hart hudson newman barrett webster hunter gregory carr lowe "
          "page marsh riley dennis ferguson fitzgerald okafor nowak kowalski abara achterberg quennell "
          "zielinski thistlethwaite featherstonehaugh")
NICKNAMES = {"elizabeth": "beth", "jonathan": "jon", "william": "bill", "robert": "bob", "katherine": "kate",
             "margaret": "maggie", "thomas": "tom", "james": "jim", "alexander": "alex", "joshua": "josh",
             "samuel": "sam", "benjamin": "ben", "joseph": "joe", "richard": "dick", "michael": "mike",
             "christopher": "chris", "anthony": "tony", "matthew": "matt", "andrew": "andy",
             "edward": "ed", "nicholas": "nick", "timothy": "tim", "daniel": "dan", "abigail": "abby",
             "rebecca": "becky", "samantha": "sam", "jennifer": "jenny", "victoria": "vicky",
             "charlotte": "lottie", "jessica": "jess", "deborah": "debbie", "patricia": "pat",
             "stephen": "steve", "david": "dave", "peter": "pete", "kenneth": "ken", "henry": "harry",
             "zachary": "zach", "isabella": "bella", "florence": "flo", "matilda": "tilly"}
SYSTEMS = ("social_care", "early_help", "education", "youth_service", "childrens_centres", "youth_justice")
AREAS = ("NE1", "NE2", "NE3", "NE4", "NE5", "NE6", "NE7", "NE8", "NE9", "NE10", "NE11", "NE12", "NE13",
         "NE15", "NE16", "NE20", "NE21", "NE23", "NE25", "NE26", "NE27", "NE28", "NE29", "NE30")


@dataclass(frozen=True)
class Messiness:
    typo: float = 0.04
    nickname: float = 0.04
    swapped: float = 0.01
    hyphenated: float = 0.02
    previous_family: float = 0.02
    dob_transposed: float = 0.015
    dob_one_part: float = 0.02
    dob_year_only: float = 0.01
    dob_missing: float = 0.02
    nhs_present: float = 0.55
    upn_present: float = 0.5
    moved: float = 0.12
    sex_missing: float = 0.05
    twins: float = 0.02


@dataclass(frozen=True)
class SyntheticRecord:
    ref: str
    person: dict[str, Any]  # canonical Person as JSON
    truth: str


def nhs_number(rng: random.Random) -> str:
    while True:
        digits = [rng.randrange(10) for _ in range(9)]
        check = 11 - sum(d * (10 - i) for i, d in enumerate(digits)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            return "".join(map(str, digits)) + str(check)


def _upn(rng: random.Random) -> str:
    return rng.choice("ABCDEFGHJKLMNPQRTUVWXYZ") + "".join(str(rng.randrange(10)) for _ in range(11)) + \
        rng.choice("ABCDEFGHJKLMNPQRTUVWXYZ")


def _postcode(rng: random.Random) -> str:
    return f"{rng.choice(AREAS)} {rng.randrange(1, 10)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}" \
           f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"


FAMILY_WEIGHTS = tuple(1.0 / (rank + 1) ** 0.9 for rank in range(len(FAMILY)))


def _family(rng: random.Random) -> str:
    # Zipf-like: the first names of the list are much more common, as real surnames are
    return rng.choices(FAMILY, weights=FAMILY_WEIGHTS)[0]


def _typo(rng: random.Random, name: str) -> str:
    if len(name) < 3:
        return name
    i = rng.randrange(1, len(name))
    kind = rng.randrange(3)
    if kind == 0:
        return name[:i] + name[i + 1:]
    if kind == 1 and i < len(name) - 1:
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    return name[:i] + rng.choice("aeiourstnl") + name[i + 1:]


def people(count: int, *, seed: int = 1, messiness: Messiness = Messiness(),
           as_of: dt.date = dt.date(2026, 9, 1)) -> Iterator[SyntheticRecord]:
    """Records of `count` true people (ids T0000001 …), streamed."""
    rng = random.Random(seed)
    serial = 0
    made = 0
    while made < count:
        base = _true_person(rng, as_of)
        group = [base]
        if rng.random() < messiness.twins and made + 1 < count:
            twin = dict(base)
            pool = GIVEN_F if rng.random() < 0.5 else GIVEN_M
            twin["given"] = rng.choice([g for g in pool if g != base["given"]])
            twin["sex"] = "female" if pool is GIVEN_F else "male"
            twin["nhs"] = nhs_number(rng)
            twin["upn"] = _upn(rng)
            group.append(twin)
        for true in group:
            made += 1
            true_id = f"T{made:07d}"
            for system in rng.sample(SYSTEMS, rng.choice((1, 1, 2, 2, 2, 3, 3, 4))):
                serial += 1
                yield SyntheticRecord(f"{system}/person/{serial}", _record(rng, true, messiness), true_id)


def _true_person(rng: random.Random, as_of: dt.date) -> dict[str, Any]:
    female = rng.random() < 0.5
    child = rng.random() < 0.7
    start = as_of - dt.timedelta(days=18 * 365) if child else dt.date(1965, 1, 1)
    end = as_of if child else dt.date(2004, 12, 31)
    dob = start + dt.timedelta(days=rng.randrange((end - start).days))
    return {"given": rng.choice(GIVEN_F if female else GIVEN_M), "family": _family(rng),
            "middle": rng.choice(GIVEN_F if female else GIVEN_M) if rng.random() < 0.3 else None,
            "sex": "female" if female else "male", "dob": dob, "postcode": _postcode(rng),
            "old_postcode": _postcode(rng), "nhs": nhs_number(rng),
            "upn": _upn(rng) if child and dob.year < as_of.year - 3 else None,
            "previous_family": _family(rng)}


def _record(rng: random.Random, t: dict[str, Any], mess: Messiness) -> dict[str, Any]:
    given, family = t["given"], t["family"]
    names: list[dict[str, Any]] = []
    if given in NICKNAMES and rng.random() < mess.nickname * 4:
        given = NICKNAMES[given]
    if rng.random() < mess.typo:
        given = _typo(rng, given)
    if rng.random() < mess.typo:
        family = _typo(rng, family)
    if rng.random() < mess.hyphenated:
        family = f"{family}-{t['previous_family']}"
    if rng.random() < mess.previous_family:
        names.append({"given": given.title(), "family": t["previous_family"].title(), "type": "previous"})
    if rng.random() < mess.swapped:
        given, family = family, given
    names.insert(0, {"given": given.title(), "family": family.title(), "middle": (t["middle"] or "").title() or None,
                     "type": "legal"})
    person: dict[str, Any] = {"names": names, "sex": t["sex"] if rng.random() > mess.sex_missing else "unknown"}
    dob: dt.date = t["dob"]
    roll = rng.random()
    precision = "day"
    if roll < mess.dob_transposed and dob.day <= 12 and dob.day != dob.month:
        dob = dob.replace(day=dob.month, month=dob.day)
    elif roll < mess.dob_transposed + mess.dob_one_part:
        dob = _one_part(rng, dob)
    elif roll < mess.dob_transposed + mess.dob_one_part + mess.dob_year_only:
        dob, precision = dob.replace(month=1, day=1), "year"
    if rng.random() > mess.dob_missing:
        person["birth_date"] = {"value": dob.isoformat(), "precision": precision}
    identifiers = []
    if rng.random() < mess.nhs_present:
        identifiers.append({"scheme": "nhs_number", "value": t["nhs"], "issuer": None})
    if t["upn"] and rng.random() < mess.upn_present:
        identifiers.append({"scheme": "upn", "value": t["upn"], "issuer": None})
    person["identifiers"] = identifiers
    postcode = t["old_postcode"] if rng.random() < mess.moved else t["postcode"]
    person["addresses"] = [{"lines": [], "postcode": postcode, "type": "home"}]
    return person


def _one_part(rng: random.Random, dob: dt.date) -> dt.date:
    for _ in range(10):
        part = rng.randrange(3)
        try:
            if part == 0:
                return dob.replace(day=rng.randrange(1, 29))
            if part == 1:
                return dob.replace(month=rng.randrange(1, 13))
            return dob.replace(year=dob.year + rng.choice((-1, 1)))
        except ValueError:
            continue
    return dob
