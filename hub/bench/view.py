"""`hub bench view`: search and person-view latency of the consolidated view at scale, through the
real query layer (`hub.services.view`: policy, redaction and one audit entry per call), with a
primary-key read of one person row as the same-run baseline.

Synthetic people are written straight into the store (person, identifiers, one person record and
one involvement each) until it holds `--people`; later runs reuse them.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import click
from sqlalchemy import func, insert, select

from hub.bench.table import render
from hub.persons import name_key
from hub.services import view as views
from hub.services.persons import SearchQuery
from hub.store.engine import Store
from hub.store.tables.access import UserRow
from hub.store.tables.records import PersonIdentifierRow, PersonRow, SourceRecordRow
from hub.users import add_user

SYSTEMS = ("social_care", "education", "health", "early_help", "youth_justice")
CATEGORY = {"social_care": "social_care", "education": "education", "health": "health", "early_help": "early_help",
            "youth_justice": "youth_justice"}
BATCH = 5000
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
TARGETS_MS = {"search": 50.0, "view": 100.0}


def _names() -> tuple[list[str], list[str]]:
    from faker.providers.person.en_GB import Provider

    given = sorted(set(Provider.first_names_male) | set(Provider.first_names_female))
    return given, sorted(set(Provider.last_names))


def _person_rows(start: int, count: int, given: list[str], family: list[str]) -> dict[str, list[dict[str, Any]]]:
    persons, idents, records = [], [], []
    for n in range(start, start + count):
        rng = random.Random(n)
        g, f = rng.choice(given), rng.choice(family)
        dob = (dt.date(2006, 1, 1) + dt.timedelta(days=rng.randrange(18 * 365))).isoformat()
        postcode = f"DE{rng.randrange(1, 75)} {rng.randrange(1, 10)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}" \
                   f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
        pid, nhs, system = f"B{n:011d}", f"{9000000000 + n:010d}", SYSTEMS[n % len(SYSTEMS)]
        name = {"given": g, "family": f, "type": "legal"}
        address = {"lines": [f"{rng.randrange(1, 200)} {rng.choice(family)} Road"], "town": "Derby",
                   "postcode": postcode, "type": "home"}
        canonical = {"names": [name], "birth_date": {"value": dob, "precision": "day"}, "sex": "unknown",
                     "identifiers": [{"scheme": "nhs_number", "value": nhs, "issuer": None}],
                     "addresses": [address], "contacts": [], "ethnicity": None, "first_language": "English",
                     "health_conditions": []}
        ref = f"{system}/person/S{n}"
        prov = {"system": system, "source_id": f"S{n}", "observed_at": NOW.isoformat(), "rule": "most_recent"}
        golden = {"values": {"name": name, "birth_date": canonical["birth_date"], "address": address,
                             "identifiers": [{**canonical["identifiers"][0], "system": system, "source_id": f"S{n}"}]},
                  "provenance": {"name": prov, "birth_date": prov, "address": prov}, "members": [ref]}
        persons.append({"id": pid, "version": 1, "golden": golden, "display_name": f"{g} {f}",
                        "family_key": name_key(f), "given_key": name_key(g), "birth_date": dob,
                        "postcode": postcode, "merged_into": None, "created_at": NOW, "updated_at": NOW})
        idents.append({"person_id": pid, "scheme": "nhs_number", "value": nhs, "record_key": ref})
        common = {"content_hash": "0" * 64, "version": 1, "observed_at": NOW, "raw": {"n": n}, "deleted": False,
                  "provenance": {"adapter": "bench", "location": "synthetic", "mapping_version": None,
                                 "extracted_at": NOW.isoformat()}, "updated_at": NOW}
        records.append({**common, "ref_key": ref, "system": system, "entity": "person", "source_id": f"S{n}",
                        "canonical": canonical, "subject_key": None, "person_id": pid})
        started = (NOW.date() - dt.timedelta(days=rng.randrange(700))).isoformat()
        involvement = {"subject": {"system": system, "entity": "person", "source_id": f"S{n}"},
                       "service_category": CATEGORY[system], "kind": "referral", "started_on": started,
                       "ended_on": None, "status": "open", "allocated_worker": f"Worker {n % 500}",
                       "team": f"Team {n % 40}", "sensitivity": "normal", "summary": "synthetic"}
        records.append({**common, "ref_key": f"{system}/involvement/I{n}", "system": system, "entity": "involvement",
                        "source_id": f"I{n}", "canonical": involvement, "subject_key": ref, "person_id": None})
    return {"person": persons, "ident": idents, "record": records}


def populate(store: Store, people: int, echo: Callable[[str], None] = click.echo) -> int:
    """Add synthetic people until the store holds `people`; returns how many were added."""
    with store.transaction() as s:
        have = s.execute(select(func.count()).select_from(PersonRow)).scalar_one()
    given, family = _names()
    if store.dialect == "postgresql":
        return _populate_pg(store, have, people, given, family, echo)
    added, t0 = 0, time.perf_counter()
    for start in range(have, people, BATCH):
        count = min(BATCH, people - start)
        rows = _person_rows(start, count, given, family)
        with store.transaction() as s:
            s.execute(insert(PersonRow), rows["person"])
            s.execute(insert(PersonIdentifierRow), rows["ident"])
            s.execute(insert(SourceRecordRow), rows["record"])
        added += count
        if added % 100_000 < BATCH:
            echo(f"  {start + count:,} people ({(start + count - have) / (time.perf_counter() - t0):,.0f}/s)")
    if added and store.dialect == "postgresql":
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE person")
            conn.exec_driver_sql("ANALYZE person_identifier")
            conn.exec_driver_sql("ANALYZE source_record")
    return added


_PG_CHUNK = 100_000
_PG_PEOPLE = """
INSERT INTO person (id, version, golden, display_name, family_key, given_key, birth_date, postcode, merged_into,
                    created_at, updated_at)
SELECT 'B' || lpad(n::text, 11, '0'), 1,
       jsonb_build_object('values', jsonb_build_object(
           'name', jsonb_build_object('given', g, 'family', f, 'type', 'legal'),
           'birth_date', jsonb_build_object('value', dob, 'precision', 'day'),
           'address', jsonb_build_object('lines', jsonb_build_array((n % 199 + 1) || ' ' || f2 || ' Road'),
                                         'town', 'Derby', 'postcode', pc, 'type', 'home'),
           'identifiers', jsonb_build_array(jsonb_build_object('scheme', 'nhs_number', 'value', nhs,
                                            'system', sys, 'source_id', 'S' || n))),
         'provenance', jsonb_build_object('name', jsonb_build_object('system', sys, 'source_id', 'S' || n,
                                                                     'rule', 'most_recent')),
         'members', jsonb_build_array(sys || '/person/S' || n)),
       g || ' ' || f, fk, gk, dob, pc, NULL, now(), now()
FROM (SELECT n, g, f, f2, lower(regexp_replace(f, '[^a-zA-Z]', '', 'g')) AS fk,
             lower(regexp_replace(g, '[^a-zA-Z]', '', 'g')) AS gk,
             to_char(date '2006-01-01' + (n * 37 % 6570)::int, 'YYYY-MM-DD') AS dob,
             'DE' || (n % 74 + 1) || ' ' || (n % 9 + 1) || chr((65 + n % 26)::int) || chr((65 + (n / 26) % 26)::int) AS pc,
             lpad((9000000000 + n)::text, 10, '0') AS nhs, (CAST(:systems AS text[]))[(n % 5 + 1)::int] AS sys
      FROM (SELECT n, (CAST(:given AS text[]))[((n * 7919) % :ng + 1)::int] AS g, (CAST(:family AS text[]))[((n * 104729 + n / 7) % :nf + 1)::int] AS f,
                   (CAST(:family AS text[]))[((n * 31) % :nf + 1)::int] AS f2
            FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS n) AS base) AS p
"""
_PG_IDENTS = """
INSERT INTO person_identifier (person_id, scheme, value, record_key)
SELECT 'B' || lpad(n::text, 11, '0'), 'nhs_number', lpad((9000000000 + n)::text, 10, '0'),
       (CAST(:systems AS text[]))[(n % 5 + 1)::int] || '/person/S' || n
FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS n
"""
_PG_RECORDS = """
INSERT INTO source_record (ref_key, system, entity, source_id, content_hash, version, observed_at, raw, canonical,
                           provenance, subject_key, person_id, deleted, updated_at)
SELECT sys || '/' || entity || '/' || sid, sys, entity, sid, repeat('0', 64), 1, now(), jsonb_build_object('n', n),
       CASE WHEN entity = 'person' THEN p.golden_person ELSE jsonb_build_object(
           'subject', jsonb_build_object('system', sys, 'entity', 'person', 'source_id', 'S' || n),
           'service_category', sys, 'kind', 'referral',
           'started_on', to_char(date '2026-11-01' - (n % 700)::int, 'YYYY-MM-DD'), 'ended_on', NULL, 'status', 'open',
           'allocated_worker', 'Worker ' || (n % 500), 'team', 'Team ' || (n % 40), 'sensitivity', 'normal',
           'summary', 'synthetic') END,
       jsonb_build_object('adapter', 'bench', 'location', 'synthetic'),
       CASE WHEN entity = 'person' THEN NULL ELSE sys || '/person/S' || n END,
       CASE WHEN entity = 'person' THEN 'B' || lpad(n::text, 11, '0') END, false, now()
FROM (SELECT n, (CAST(:systems AS text[]))[(n % 5 + 1)::int] AS sys, e.entity,
             CASE WHEN e.entity = 'person' THEN 'S' || n ELSE 'I' || n END AS sid
      FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS n CROSS JOIN (VALUES ('person'), ('involvement')) AS e(entity)) AS r
JOIN LATERAL (SELECT jsonb_build_object(
        'names', jsonb_build_array(pr.golden -> 'values' -> 'name'),
        'birth_date', pr.golden -> 'values' -> 'birth_date', 'sex', 'unknown',
        'identifiers', jsonb_build_array(jsonb_build_object('scheme', 'nhs_number',
                                         'value', lpad((9000000000 + r.n)::text, 10, '0'), 'issuer', NULL)),
        'addresses', jsonb_build_array(pr.golden -> 'values' -> 'address'), 'contacts', '[]'::jsonb,
        'ethnicity', NULL, 'first_language', 'English', 'health_conditions', '[]'::jsonb) AS golden_person
      FROM person pr WHERE pr.id = 'B' || lpad(r.n::text, 11, '0')) AS p ON true
"""


def _populate_pg(store: Store, have: int, people: int, given: list[str], family: list[str],
                 echo: Callable[[str], None]) -> int:
    """The same synthetic people generated inside PostgreSQL (generate_series), 100,000 a statement."""
    from sqlalchemy import text

    t0 = time.perf_counter()
    for lo in range(have, people, _PG_CHUNK):
        hi = min(people, lo + _PG_CHUNK) - 1
        params = {"lo": lo, "hi": hi, "given": given, "family": family, "ng": len(given), "nf": len(family),
                  "systems": list(SYSTEMS)}
        with store.transaction() as s:
            s.execute(text(_PG_PEOPLE), params)
            s.execute(text(_PG_IDENTS), params)
            s.execute(text(_PG_RECORDS), params)
        echo(f"  {hi + 1:,} people ({(hi + 1 - have) / (time.perf_counter() - t0):,.0f}/s)")
    # VACUUM (outside a transaction) also sets the visibility map, as autovacuum would in time,
    # so the search's index-only scans are measured in their steady state.
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("person", "person_identifier", "source_record"):
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {table}")
    return max(0, people - have)


def _queries(rng: random.Random, sample: list[Any]) -> list[tuple[str, SearchQuery]]:
    out = []
    for row in sample:
        given, family = row.display_name.split(" ", 1)
        typo = family[:2] + family[3:] if len(family) > 4 else family + "e"
        kind = rng.randrange(6)
        if kind == 0:
            out.append(("name", SearchQuery(name=f"{given} {family}")))
        elif kind == 1:
            out.append(("name with typo", SearchQuery(name=f"{given} {typo}")))
        elif kind == 2:
            out.append(("family + dob", SearchQuery(name=family, birth_date=row.birth_date)))
        elif kind == 3:
            out.append(("nhs number", SearchQuery(identifier=f"{9000000000 + int(row.id[1:]):010d}")))
        elif kind == 4:
            out.append(("postcode", SearchQuery(postcode=row.postcode)))
        else:
            out.append(("family only", SearchQuery(name=family)))
    return out


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(store: Store, samples: int, seed: int = 7) -> list[tuple]:
    hub = SimpleNamespace(store=store, extras={})
    with store.transaction() as s:
        user = s.execute(select(UserRow).where(UserRow.username == "bench_social_worker")).scalar_one_or_none()
        user_id = user.id if user else None
    if user_id is None:
        user_id = add_user(store, "bench_social_worker", "bench password 1", ["social_worker"], actor="bench").id
    viewer = views.Viewer(user_id, "bench_social_worker", ("social_worker",), client="bench")
    rng = random.Random(seed)
    with store.transaction() as s:
        total = s.execute(select(func.count()).select_from(PersonRow)).scalar_one()
        ids = [f"B{rng.randrange(total):011d}" for _ in range(samples)]
        sample = s.execute(select(PersonRow).where(PersonRow.id.in_(ids))).scalars().all()
    views.access_policy(hub)
    timings: dict[str, list[float]] = {"baseline": [], "search": [], "view": []}
    per_kind: dict[str, list[float]] = {}
    for row in sample:  # baseline: read one person row by primary key
        t = time.perf_counter()
        with store.transaction() as s:
            s.get(PersonRow, row.id)
        timings["baseline"].append((time.perf_counter() - t) * 1000)
    for kind, q in _queries(rng, sample):
        t = time.perf_counter()
        views.search(hub, viewer, q)
        ms = (time.perf_counter() - t) * 1000
        timings["search"].append(ms)
        per_kind.setdefault(kind, []).append(ms)
    for row in sample:
        t = time.perf_counter()
        views.person_view(hub, viewer, row.id)
        timings["view"].append((time.perf_counter() - t) * 1000)
    base = _p(timings["baseline"], 0.95)
    rows = []
    for name in ("baseline", "search", "view"):
        v = timings[name]
        target = TARGETS_MS.get(name)
        rows.append((name, len(v), statistics.median(v), _p(v, 0.95), _p(v, 0.99), _p(v, 0.95) / base,
                     f"≤ {target:.0f}" if target else "", ("yes" if _p(v, 0.95) <= target else "NO") if target else ""))
    for kind in sorted(per_kind):
        v = per_kind[kind]
        rows.append((f"  search: {kind}", len(v), statistics.median(v), _p(v, 0.95), _p(v, 0.99),
                     _p(v, 0.95) / base, "", ""))
    return rows


@click.command("view")
@click.option("--people", default=1_000_000, show_default=True, help="people in the store before measuring")
@click.option("--samples", default=300, show_default=True, help="searches and views measured")
@click.option("--store-url", envvar="HUB_BENCH_STORE_URL", default=None,
              help="store to fill and measure (default: the hub's store)")
@click.pass_context
def command(ctx: click.Context, people: int, samples: int, store_url: str | None) -> None:
    """Search and person-view p50/p95/p99 through the policy-enforcing query layer."""
    from hub.config import load_config

    url = store_url or load_config(ctx.find_root().obj.get("config_path", "hub.toml")).store.url
    store = Store(url, pool_size=2)
    store.migrate()
    click.echo(f"store {store.dialect}: filling to {people:,} people")
    populate(store, people)
    rows = measure(store, samples)
    click.echo(render(["operation", "n", "p50 ms", "p95 ms", "p99 ms", "p95 × baseline", "target ms", "met"], rows))
    store.dispose()
