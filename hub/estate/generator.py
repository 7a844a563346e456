"""Generate a whole sample estate, streaming household by household.

Memory stays bounded whatever `people` is: a household is made, every system that
knows it writes its rows (and the ground truth its lines) at once, and the
household is dropped.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import faker

from hub.estate.childrens_centres import ChildrensCentresWriter
from hub.estate.context import EstateContext, TruthRecorder
from hub.estate.early_help import EarlyHelpWriter
from hub.estate.education import EducationWriter, academic_year, age_at_31_august
from hub.estate.pools import build_pools
from hub.estate.population import Household, PopulationBuilder, TruePerson
from hub.estate.social_care import SocialCareWriter
from hub.estate.truth_index import INDEX_NAME
from hub.estate.youth_justice import YouthJusticeWriter
from hub.estate.youth_service import YouthServiceWriter

GENERATOR_VERSION = "1"
DEFAULT_AS_OF = dt.date(2026, 9, 1)
SYSTEMS = ("social_care", "early_help", "education", "youth_service", "childrens_centres", "youth_justice")
MAX_SYSTEMS_PER_PERSON = 4


@dataclass
class Manifest:
    seed: int
    people: int
    households: int
    as_of: str
    malformed_rate: float
    systems: dict[str, dict[str, int]]
    malformed: dict[str, dict[str, int]]
    people_by_system_count: dict[str, int]
    files: dict[str, list[str]]
    generator: str = "hub.estate"
    version: str = GENERATOR_VERSION
    faker_version: str = field(default_factory=lambda: faker.VERSION)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def load(cls, estate_dir: str | Path) -> Manifest:
        return cls(**json.loads((Path(estate_dir) / "manifest.json").read_text(encoding="utf-8")))

    def total_rows(self) -> int:
        return sum(sum(e.values()) for e in self.systems.values())


def _choose_systems(rng: random.Random, household: Household, as_of: dt.date,
                    unseen: set[str]) -> dict[str, set[str]]:
    """Which systems know each member of the household (at least one, at most four). Until
    every system holds someone (`unseen`), an eligible household is given to the empty ones,
    so even a tiny estate has all six systems to work with."""
    year = academic_year(as_of)
    chosen: dict[str, set[str]] = {m.person_id: set() for m in household.members}
    everyone = {"social_care": rng.random() < 0.09 or not household.adults,
                "early_help": rng.random() < 0.12}
    for system, yes in everyone.items():
        if yes:
            for systems in chosen.values():
                systems.add(system)
    under_fives = [c for c in household.children if c.age(as_of) < 5]
    if under_fives and rng.random() < 0.7:
        for person in under_fives + household.adults:
            chosen[person.person_id].add("childrens_centres")
    in_school = False
    for child in household.children:
        age, school_age = child.age(as_of), age_at_31_august(child.dob, year)
        if child.upn and (4 <= school_age <= 15 and rng.random() < 0.95 or
                          school_age in (3, 16, 17) and rng.random() < 0.4):
            chosen[child.person_id].add("education")
            in_school = True
        if 11 <= age <= 18 and rng.random() < 0.25:
            chosen[child.person_id].add("youth_service")
        if 10 <= age <= 17 and rng.random() < 0.04:
            chosen[child.person_id].add("youth_justice")
    if in_school:  # parents are the pupils' contacts
        for adult in household.adults:
            chosen[adult.person_id].add("education")
    _fallback(household, chosen, as_of)
    if unseen:
        _fill_empty_systems(household, chosen, as_of, unseen)
    for systems in chosen.values():
        for optional in ("youth_service", "early_help", "childrens_centres"):
            if len(systems) > MAX_SYSTEMS_PER_PERSON and optional in systems:
                systems.discard(optional)
    return chosen


def _fill_empty_systems(household: Household, chosen: dict[str, set[str]], as_of: dt.date,
                        unseen: set[str]) -> None:
    ages = {c.person_id: c.age(as_of) for c in household.children}
    eligible = {
        "social_care": household.members, "early_help": household.members,
        "education": [c for c in household.children if c.upn and 5 <= ages[c.person_id] <= 15],
        "youth_service": [c for c in household.children if 11 <= ages[c.person_id] <= 18][:1],
        "youth_justice": [c for c in household.children if 10 <= ages[c.person_id] <= 17][:1],
        "childrens_centres": [c for c in household.children if ages[c.person_id] < 5],
    }
    for system in sorted(unseen):
        people = eligible[system]
        if system in ("education", "childrens_centres") and people:
            people = people + household.adults  # parents come with their children there
        for person in people:
            chosen[person.person_id].add(system)


def _fallback(household: Household, chosen: dict[str, set[str]], as_of: dt.date) -> None:
    """Everyone the estate holds is known to some system: a child under five to a children's
    centre, a child of school age to a school, anyone left to early help."""
    if all(chosen.values()):
        return
    unknown_children = [c for c in household.children if not chosen[c.person_id]]
    if any(c.age(as_of) < 5 for c in unknown_children):
        for person in [c for c in unknown_children if c.age(as_of) < 5] + household.adults:
            chosen[person.person_id].add("childrens_centres")
    school = [c for c in unknown_children if c.upn and 5 <= c.age(as_of) <= 17]
    if school:
        for person in school + household.adults:
            chosen[person.person_id].add("education")
    if not all(chosen.values()):
        for systems in chosen.values():
            systems.add("early_help")


def _write_household(writers: dict[str, Any], household: Household, chosen: dict[str, set[str]]) -> None:
    def members(system: str) -> list[TruePerson]:
        return [m for m in household.members if system in chosen[m.person_id]]

    schools: dict[str, str] = {}
    if pupils := [c for c in members("education") if c.is_child]:
        schools = writers["education"].add(household, pupils)
    if who := members("social_care"):
        writers["social_care"].add(household, who)
    if who := members("early_help"):
        writers["early_help"].add(household, who, schools)
    if who := members("youth_service"):
        writers["youth_service"].add(household, who, schools)
    if (who := members("childrens_centres")) and any(m.is_child for m in who):
        writers["childrens_centres"].add(household, who)
    if who := members("youth_justice"):
        writers["youth_justice"].add(household, who)


def generate(out_dir: str | Path, people: int = 2000, seed: int = 1, malformed_rate: float = 0.01,
             as_of: dt.date | None = None) -> Manifest:
    """Write a sample estate of `people` true people to `out_dir` (replacing one already there)."""
    if people < 1:
        raise ValueError("an estate needs at least one person")
    as_of = as_of or DEFAULT_AS_OF
    root = Path(out_dir)
    for system in SYSTEMS:
        shutil.rmtree(root / system, ignore_errors=True)
    for stale in ("mutations.jsonl", INDEX_NAME):
        (root / stale).unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pools = build_pools(seed, school_count=max(6, min(300, people // 1500)))
    truth = TruthRecorder(root / "truth.csv")
    ctx = EstateContext(rng=rng, pools=pools, as_of=as_of, malformed_rate=malformed_rate, truth=truth)
    writers = {"social_care": SocialCareWriter(root, ctx), "early_help": EarlyHelpWriter(root, ctx),
               "education": EducationWriter(root, ctx), "youth_service": YouthServiceWriter(root, ctx),
               "childrens_centres": ChildrensCentresWriter(root, ctx),
               "youth_justice": YouthJusticeWriter(root, ctx)}
    spread: Counter = Counter()
    households = 0
    unseen = set(SYSTEMS)
    for household in PopulationBuilder(rng, pools, as_of, people).households():
        households += 1
        chosen = _choose_systems(rng, household, as_of, unseen)
        if unseen:
            unseen -= set().union(*chosen.values())
        spread.update(str(len(s)) for s in chosen.values())

        _write_household(writers, household, chosen)
    for writer in writers.values():
        writer.close()
    truth.close()
    manifest = Manifest(seed=seed, people=people, households=households, as_of=as_of.isoformat(),
                        malformed_rate=malformed_rate,
                        systems={s: dict(sorted(truth.counts[s].items())) for s in SYSTEMS},
                        malformed={s: dict(sorted(truth.malformed[s].items())) for s in SYSTEMS},
                        people_by_system_count=dict(sorted(spread.items())), files=dict(sorted(ctx.files.items())))
    (root / "manifest.json").write_text(json.dumps(manifest.as_dict(), indent=2) + "\n", encoding="utf-8")
    return manifest
