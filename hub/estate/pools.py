"""Value pools drawn from once per estate: names with real frequencies, streets, towns.

Faker is called only here, a few thousand times, when the pools are built; every
record is then drawn from the pools with the generator's own `random.Random`, which
is what keeps a million-person estate fast and a seed reproducible.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from faker import Faker
from faker.providers.person.en_GB import Provider as PersonProvider

# Towns of a county and their postcode districts.
TOWNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Chesterfield", ("S40", "S41", "S43")), ("Derby", ("DE1", "DE21", "DE22", "DE23", "DE24")),
    ("Matlock", ("DE4",)), ("Bakewell", ("DE45",)), ("Buxton", ("SK17",)), ("Glossop", ("SK13",)),
    ("Ilkeston", ("DE7",)), ("Long Eaton", ("NG10",)), ("Belper", ("DE56",)), ("Ripley", ("DE5",)),
    ("Alfreton", ("DE55",)), ("Ashbourne", ("DE6",)), ("Swadlincote", ("DE11",)),
    ("Dronfield", ("S18",)), ("Heanor", ("DE75",)), ("Bolsover", ("S44",)), ("Clay Cross", ("S45",)),
    ("New Mills", ("SK22",)), ("Staveley", ("S43",)), ("Shirebrook", ("NG20",)),
)
LOCALITIES = ("Wirksworth", "Tansley", "Darley Dale", "Brimington", "Hasland", "Chaddesden",
              "Allestree", "Mickleover", "Cotmanhay", "Sawley", "Codnor", "Somercotes", "Tupton",
              "Whaley Bridge", "Hadfield", "Woodville", "Newhall", "Mastin Moor", "Pinxton", "")
STREET_WORDS = ("Mill", "Church", "Station", "Park", "Chapel", "Bridge", "High", "Victoria",
                "Queen's", "King's", "Manor", "School", "Hall", "Green", "Oak", "Ash", "Beech",
                "Elm", "Derby", "Matlock", "Meadow", "Orchard", "Spring", "Well", "Wood", "Valley")
STREET_SUFFIXES = ("Road", "Street", "Lane", "Close", "Avenue", "Drive", "Way", "Crescent", "Grove",
                   "Gardens", "Terrace", "Place", "Court", "View", "Rise", "Hill", "Walk", "Mews")
POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the letters used in inward codes

# Given names with accents, written the way some systems keep them (cp1252-safe).
ACCENTED_GIVEN = {"F": ("Zoë", "Siân", "Renée", "Chloë", "Anaïs", "Inès"), "M": ("José", "Rhodrí", "Zoltán")}

DIMINUTIVES: dict[str, tuple[str, ...]] = {
    "Jonathan": ("Jon", "Jonny"), "Elizabeth": ("Beth", "Liz", "Lizzie"), "William": ("Will", "Bill"),
    "Robert": ("Rob", "Bob"), "Thomas": ("Tom", "Tommy"), "James": ("Jim", "Jamie"),
    "Margaret": ("Maggie", "Meg"), "Katherine": ("Kate", "Katie"), "Catherine": ("Cath", "Kate"),
    "Alexander": ("Alex", "Sandy"), "Christopher": ("Chris",), "Matthew": ("Matt",),
    "Daniel": ("Dan", "Danny"), "Samuel": ("Sam",), "Joseph": ("Joe",), "Michael": ("Mike", "Mick"),
    "Benjamin": ("Ben",), "Nicholas": ("Nick",), "Jessica": ("Jess",), "Rebecca": ("Becky", "Becca"),
    "Victoria": ("Vicky", "Tori"), "Abigail": ("Abbie", "Abi"), "Charlotte": ("Lottie", "Charlie"),
    "Oliver": ("Ollie",), "Henry": ("Harry",), "Edward": ("Ed", "Ted"), "Anthony": ("Tony",),
    "Stephen": ("Steve",), "Richard": ("Rich", "Dick"), "Samantha": ("Sam",),
    "Alexandra": ("Alex",), "Jennifer": ("Jen", "Jenny"), "Amelia": ("Millie",),
    "Isabella": ("Bella", "Izzy"), "Olivia": ("Liv",), "David": ("Dave",), "Andrew": ("Andy",),
    "Peter": ("Pete",), "Susan": ("Sue",), "Deborah": ("Debbie",), "Patricia": ("Trish", "Pat"),
    "Joshua": ("Josh",), "Nathan": ("Nate",), "Kimberley": ("Kim",), "Gemma": ("Gem",),
    "Frederick": ("Fred", "Freddie"), "Eleanor": ("Ellie", "Nell"), "Jacqueline": ("Jackie",),
    "Zachary": ("Zach",), "Timothy": ("Tim",), "Gregory": ("Greg",), "Philip": ("Phil",),
}

# Ethnicity (DfE codes) with a county-like distribution, and the free text other systems use.
ETHNICITY = (("WBRI", 78), ("WIRI", 1), ("WOTH", 5), ("WROM", 1), ("MWBC", 2), ("MWBA", 1),
             ("MWAS", 1), ("MOTH", 1), ("AIND", 2), ("APKN", 3), ("ABAN", 1), ("AOTH", 1),
             ("BCRB", 1), ("BAFR", 1), ("CHNE", 1), ("OOTH", 1), ("REFU", 1))
ETHNICITY_TEXT = {"WBRI": "White British", "WIRI": "White Other", "WOTH": "White Other",
                  "WROM": "White Other", "MWBC": "Mixed", "MWBA": "Mixed", "MWAS": "Mixed",
                  "MOTH": "Mixed", "AIND": "Asian", "APKN": "Asian", "ABAN": "Asian",
                  "AOTH": "Asian", "BCRB": "Black", "BAFR": "Black", "BOTH": "Black",
                  "CHNE": "Chinese", "OOTH": "Other", "REFU": "Prefer not to say", "NOBT": ""}
ETHNICITY_CENTRES = {"WBRI": "White - British", "WIRI": "White - Irish", "WOTH": "White - Other",
                     "WROM": "White - Gypsy/Roma", "MWBC": "Mixed - White and Black Caribbean",
                     "MWBA": "Mixed - White and Black African", "MWAS": "Mixed - White and Asian",
                     "MOTH": "Mixed - Other", "AIND": "Asian - Indian", "APKN": "Asian - Pakistani",
                     "ABAN": "Asian - Bangladeshi", "AOTH": "Asian - Other",
                     "BCRB": "Black - Caribbean", "BAFR": "Black - African", "BOTH": "Black - Other",
                     "CHNE": "Chinese", "OOTH": "Other", "REFU": "", "NOBT": ""}
LANGUAGES = {"ENG": "English", "POL": "Polish", "URD": "Urdu", "PAN": "Punjabi", "BEN": "Bengali",
             "ARA": "Arabic", "SOM": "Somali", "PRS": "Persian", "ROM": "Romanian", "TUR": "Turkish"}
LANGUAGE_BY_ETHNICITY = {"APKN": ("URD", "PAN", "ENG"), "ABAN": ("BEN", "ENG"), "AIND": ("PAN", "ENG"),
                         "WOTH": ("POL", "ROM", "ENG"), "WROM": ("ROM", "ENG"), "BAFR": ("SOM", "ENG"),
                         "OOTH": ("ARA", "PRS", "TUR", "ENG")}


@dataclass(frozen=True)
class WeightedPool:
    """Values with cumulative weights: `draw` is one bisect, whatever the pool's size."""

    values: tuple[str, ...]
    cum_weights: tuple[float, ...]

    @classmethod
    def of(cls, pairs: list[tuple[str, float]]) -> WeightedPool:
        values = tuple(v for v, _ in pairs)
        return cls(values, tuple(itertools.accumulate(w for _, w in pairs)))

    def draw(self, rng: random.Random) -> str:
        return rng.choices(self.values, cum_weights=self.cum_weights)[0]


@dataclass(frozen=True)
class Pools:
    surnames: WeightedPool
    given: dict[str, WeightedPool]  # by sex 'M' / 'F'
    streets: tuple[str, ...]
    ethnicity: WeightedPool
    schools: tuple[tuple[str, str, str], ...]  # (LAEstab, name, phase)
    centres: tuple[str, ...]
    workers: tuple[tuple[int, str, int], ...]  # (worker_id, name, team_id)
    teams: tuple[tuple[int, str], ...]


def _ranked(names: tuple[str, ...]) -> list[tuple[str, float]]:
    """Faker lists given names most popular first; weight them Zipf-like by rank."""
    return [(n, 1.0 / (rank + 8)) for rank, n in enumerate(names)]


def build_pools(seed: int, school_count: int) -> Pools:
    """Build every pool once for a seed; `school_count` primary and secondary schools in all."""
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    rng = random.Random(seed ^ 0x5EED)
    surnames = WeightedPool.of(list(PersonProvider.last_names.items()))
    given = {"M": WeightedPool.of(_ranked(PersonProvider.first_names_male)),
             "F": WeightedPool.of(_ranked(PersonProvider.first_names_female))}
    streets = sorted({f"{w} {rng.choice(STREET_SUFFIXES)}" for w in
                      list(STREET_WORDS) + [fake.last_name() for _ in range(400)]})
    schools = []
    for i in range(school_count):
        phase = "Primary" if i % 3 else "Secondary"
        town = TOWNS[i % len(TOWNS)][0]
        place = rng.choice((town, fake.last_name(), rng.choice(STREET_WORDS)))
        name = f"{place} {'Primary School' if phase == 'Primary' else rng.choice(('Academy', 'School', 'High School'))}"
        schools.append((f"830{2000 + i if phase == 'Primary' else 4000 + i:04d}", name, phase))
    centres = tuple(f"{town} Children's Centre" for town, _ in TOWNS[:12])
    teams = tuple((i + 1, t) for i, t in enumerate(
        ("Duty and Assessment North", "Duty and Assessment South", "Child Protection East",
         "Child Protection West", "Children in Care", "Disabled Children", "Leaving Care",
         "Family Intervention")))
    workers = tuple((100 + i, f"{fake.first_name()} {fake.last_name()}", teams[i % len(teams)][0])
                    for i in range(60))
    return Pools(surnames=surnames, given=given, streets=tuple(streets),
                 ethnicity=WeightedPool.of([(c, float(w)) for c, w in ETHNICITY]),
                 schools=tuple(schools), centres=centres, workers=workers, teams=teams)


def postcode(rng: random.Random, district: str) -> str:
    return f"{district} {rng.randrange(1, 10)}{rng.choice(POSTCODE_LETTERS)}{rng.choice(POSTCODE_LETTERS)}"
