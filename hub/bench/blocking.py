"""`hub bench blocking --people N --people M`: the pairs each blocking rule gives a record at
each scale, through the very `candidate_pair_array` a bulk link calls, so growth with the estate
shows before a load of hours does. Close to linear means the partners per record hardly move
with N; a rule whose figure grows with N is a quadratic on the load's path.

The records are the estate's true population (`hub.estate.population`), each person filed
1–3 times as the estate spreads them over its systems (62 / 34 / 4 %), and for each school-age
child a contact record of up to two of its household's adults: given and family name and (85 %)
a phone, no date of birth, as schools list parents. Those contacts fill the blocks refining
cannot split, where the sliding window (`blocking.WINDOW`) bounds the pairs.
"""

from __future__ import annotations

import datetime as dt
import random
import time

import click

from hub.bench.table import render
from hub.estate.pools import build_pools
from hub.estate.population import PopulationBuilder
from identity_index.blocking import DEFAULT_RULES, WINDOW, candidate_pair_array, rules_named
from identity_index.features import (
    PersonFeatures,
    compact_postcode,
    normalise_name,
    normalise_phone,
)

AS_OF = dt.date(2026, 9, 1)


def population_features(people: int, seed: int = 7) -> list[PersonFeatures]:
    """Person records of `people` true people, shaped as described above."""
    rng = random.Random(seed)
    pools = build_pools(seed, school_count=max(6, min(300, people // 1500)))
    out: list[PersonFeatures] = []
    for household in PopulationBuilder(rng, pools, AS_OF, people).households():
        postcode = compact_postcode(household.address.postcode)
        for p in household.members:
            for copy in range(rng.choices((1, 2, 3), (62, 34, 4))[0]):
                out.append(PersonFeatures(
                    ref=f"{p.person_id}/{copy}", given=normalise_name(p.given), family=normalise_name(p.family),
                    family_alts=frozenset({normalise_name(p.previous_family)} if p.previous_family else ()),
                    dob=p.dob if rng.random() > 0.03 else None,
                    dob_precision="day" if rng.random() > 0.05 else "month", sex=p.sex, postcode=postcode,
                    nhs=p.nhs if rng.random() < 0.5 else "", upn=p.upn or "",
                    phones=frozenset({normalise_phone(p.phone)}) if p.role != "child" and rng.random() < 0.5
                    else frozenset()))
        for child in household.children:
            if child.upn and 4 <= child.age(AS_OF) <= 16 and rng.random() < 0.9:
                for adult in household.adults[:2]:
                    out.append(PersonFeatures(
                        ref=f"{adult.person_id}/contact-of-{child.person_id}", given=normalise_name(adult.given),
                        family=normalise_name(adult.family),
                        phones=frozenset({normalise_phone(adult.phone)}) if rng.random() < 0.85 else frozenset()))
    return out


def partners_per_record(records: list[PersonFeatures], rule_names: tuple[str, ...] = DEFAULT_RULES,
                        window: int | None = WINDOW) -> dict[str, float]:
    """Per rule, the records each record is compared with (2 × pairs / records), blocks sized,
    split, windowed and dropped as a bulk link does it (`window` None: no window, the baseline)."""
    out = {}
    for rule in rules_named(rule_names):
        left, _right = candidate_pair_array(records, [rule], window=window)
        out[rule.name] = 2 * len(left) / len(records) if records else 0.0
    return out


@click.command("blocking")
@click.option("--people", "scales", multiple=True, type=int, default=(100_000, 1_000_000), show_default=True,
              help="people at each scale (repeat the option)")
@click.option("--seed", default=7, show_default=True)
@click.option("--window/--no-window", default=True, show_default=True,
              help="--no-window: every pair of a block too large at its finest level (the baseline; needs "
                   "~4 GB more at 1,000,000 people)")
def command(scales: tuple[int, ...], seed: int, window: bool) -> None:
    """Pairs per record by blocking rule at each scale, and the growth from the smallest."""
    scales = tuple(sorted(scales))
    figures, sizes, seconds = [], [], []
    for people in scales:
        records = population_features(people, seed)
        started = time.perf_counter()
        figures.append(partners_per_record(records, window=WINDOW if window else None))
        seconds.append(time.perf_counter() - started)
        sizes.append(len(records))
        del records
    headers = [f"rule ({'window' if window else 'no window'})"] + [f"partners / record, {p:,} people" for p in scales] + ["growth (largest / smallest)"]
    rows = []
    for name in DEFAULT_RULES:
        values = [f[name] for f in figures]
        rows.append([name, *values, values[-1] / values[0] if values[0] else float("nan")])
    totals = [sum(f.values()) for f in figures]
    rows.append(["all rules (before pairs shared by rules are merged)", *totals, totals[-1] / totals[0]])
    rows.append(["person records", *sizes, sizes[-1] / sizes[0]])
    rows.append(["seconds to build the pairs", *seconds, seconds[-1] / seconds[0]])
    click.echo(render(headers, rows))
