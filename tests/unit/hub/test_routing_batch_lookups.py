"""The routing worker's set-based look-ups (hub/routing_batch.py) answer, for a whole batch of
persons at once, exactly what the per-person queries they replace answered: households by
relationship and by same address, the members' involvements in the same order, alerts raised."""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import or_, select

from hub.routing_batch import (
    HOUSEHOLD_KINDS,
    RaisedAlerts,
    facts_of,
    households,
    insert_alerts,
    involvements,
    raised_alerts,
    source_rows,
)
from hub.store.base import utcnow
from hub.store.tables.lifecycle import AlertRow
from hub.store.tables.records import PersonRow, SourceRecordRow
from routing.alerts import InvolvementFact


# -- the per-person queries as the worker ran them before (the oracle) ------------------------
def _key(ref):
    return f"{ref['system']}/{ref['entity']}/{ref['source_id']}"


def household_one(s, person_id, *, same_address=True):
    members = {person_id}
    keys = set(s.execute(select(SourceRecordRow.ref_key).where(
        SourceRecordRow.person_id == person_id, SourceRecordRow.entity == "person")).scalars())
    if keys:
        rels = s.execute(select(SourceRecordRow.canonical).where(
            SourceRecordRow.entity == "relationship", SourceRecordRow.deleted.is_(False),
            SourceRecordRow.subject_key.in_(keys))).scalars().all()
        related = {_key(r["related"]) for r in rels if r.get("kind") in HOUSEHOLD_KINDS and r.get("related")}
        if related:
            members |= {p for p in s.execute(select(SourceRecordRow.person_id).where(
                SourceRecordRow.ref_key.in_(related))).scalars() if p}
    if same_address:
        me = s.get(PersonRow, person_id)
        address = ((me.golden or {}).get("values", {}).get("address") or {}) if me else {}
        if me and me.postcode and address.get("lines"):
            first = str(address["lines"][0]).strip().lower()
            for other in s.execute(select(PersonRow).where(PersonRow.postcode == me.postcode,
                                                           PersonRow.merged_into.is_(None))).scalars():
                lines = ((other.golden or {}).get("values", {}).get("address") or {}).get("lines") or []
                if lines and str(lines[0]).strip().lower() == first:
                    members.add(other.id)
    return members


def involvements_one(s, person_ids):
    keys = dict(s.execute(select(SourceRecordRow.ref_key, SourceRecordRow.person_id).where(
        SourceRecordRow.person_id.in_(person_ids), SourceRecordRow.entity == "person")).all())
    if not keys:
        return []
    rows = s.execute(select(SourceRecordRow.ref_key, SourceRecordRow.subject_key, SourceRecordRow.canonical).where(
        SourceRecordRow.entity == "involvement", SourceRecordRow.deleted.is_(False),
        SourceRecordRow.subject_key.in_(list(keys))).order_by(SourceRecordRow.subject_key, SourceRecordRow.id)).all()
    return [InvolvementFact(person_id=keys[r.subject_key], ref=r.ref_key, service_category=r.canonical["service_category"],
                            started_on=dt.date.fromisoformat(r.canonical["started_on"]),
                            ended_on=dt.date.fromisoformat(r.canonical["ended_on"]) if r.canonical.get("ended_on") else None,
                            team=r.canonical.get("team")) for r in rows]


def already_raised_one(s, rule, members, services, since):
    recent = s.execute(select(AlertRow).where(AlertRow.rule == rule, or_(
        AlertRow.raised_at >= dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC),
        AlertRow.status == "open"))).scalars()
    return any(set(a.persons) & members and services <= set(a.services) for a in recent)


# -- a random small estate ------------------------------------------------------------------------
ADDRESSES = [("AB1 2CD", "1 High Street"), ("AB1 2CD", " 1 HIGH street "), ("AB1 2CD", "2 High Street"),
             ("ZZ9 9ZZ", "4 Mill Lane"), (None, "4 Mill Lane")]
SERVICES = ["social_care", "education", "early_help", "youth_justice"]


def record(ref_key, entity, canonical, *, subject_key=None, person_id=None, deleted=False):
    system, _, source_id = ref_key.split("/", 2)
    return SourceRecordRow(ref_key=ref_key, system=system, entity=entity, source_id=source_id, content_hash="h",
                           version=1, observed_at=utcnow(), raw={}, canonical=canonical, provenance={},
                           subject_key=subject_key, person_id=person_id, deleted=deleted)


def fill(store, seed=7, people=40):
    rnd = random.Random(seed)
    with store.transaction() as s:
        for n in range(people):
            pid = f"P{n:03d}"
            postcode, line = rnd.choice(ADDRESSES)
            address = rnd.choice([{"lines": [line], "postcode": postcode}, {"lines": [], "postcode": postcode}, None])
            s.add(PersonRow(id=pid, golden={"values": {"address": address} if address else {}}, postcode=postcode,
                            merged_into=rnd.choice([None] * 6 + ["P000"])))
            for k in range(rnd.randint(0, 2)):
                s.add(record(f"sys{k}/person/{pid}", "person", {}, person_id=pid, deleted=rnd.random() < 0.1))
        s.flush()
        keys = list(s.execute(select(SourceRecordRow.ref_key).where(SourceRecordRow.entity == "person")).scalars())
        for n, subject in enumerate(keys * 2):
            other = rnd.choice(keys)
            system, entity, source_id = other.split("/")
            kind = rnd.choice([*HOUSEHOLD_KINDS, "social_worker"])
            s.add(record(f"rel/relationship/{n}", "relationship",
                         {"kind": kind, "related": {"system": system, "entity": entity, "source_id": source_id}},
                         subject_key=subject, deleted=rnd.random() < 0.1))
            started = dt.date(2026, 1, 1) - dt.timedelta(days=rnd.randint(0, 400))
            ended = started + dt.timedelta(days=rnd.randint(1, 100)) if rnd.random() < 0.4 else None
            s.add(record(f"inv/involvement/{n}", "involvement",
                         {"service_category": rnd.choice(SERVICES), "started_on": started.isoformat(),
                          "ended_on": ended.isoformat() if ended else rnd.choice([None, ""]),
                          "team": rnd.choice([None, "North", "South"])},
                         subject_key=subject, deleted=rnd.random() < 0.1))
    return [f"P{n:03d}" for n in range(people)] + ["P999"]  # one without any record


def test_households_and_involvements_of_a_batch_equal_the_per_person_answers(store):
    persons = fill(store)
    with store.read() as s:
        for flag in (True, False):
            got = households(s, persons, same_address=flag)
            assert got == {p: household_one(s, p, same_address=flag) for p in persons}
        homes = households(s, persons)
        every = set().union(*homes.values())
        facts = involvements(s, every)
        for p in persons:
            assert facts_of(facts, homes[p]) == involvements_one(s, homes[p])
    assert any(len(m) > 2 for m in homes.values()) and sum(map(len, facts.values())) > 20  # the data has cases


def alert(rule, persons, services, status="open", at=None):
    return {"rule": rule, "team": "T", "household_key": "+".join(persons), "persons": persons, "services": services,
            "evidence": {}, "message_id": f"m-{rule}-{'-'.join(persons)}", "status": status,
            "raised_at": at or utcnow()}


def test_raised_alerts_answer_as_the_per_message_check_over_every_alert(store):
    since = dt.date(2026, 1, 1)
    old = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    with store.transaction() as s:
        ids = insert_alerts(s, [alert("r1", ["P1", "P2"], ["a", "b", "c"]), alert("r1", ["P3"], ["a", "b"], "closed", old),
                                alert("r1", ["P4"], ["a", "b", "c"], "closed"), alert("r2", ["P5"], ["a", "b", "c"])])
        insert_alerts(s, [alert("r1", ["P6", "P7"], ["a"])])
    assert len(set(ids)) == 4
    cases = [({"P1"}, {"a", "b"}), ({"P2", "P9"}, {"a", "b", "c"}), ({"P1"}, {"a", "d"}), ({"P3"}, {"a"}),
             ({"P4"}, {"c"}), ({"P5"}, {"a"}), ({"P9"}, {"a"}), ({"P7"}, {"a"}), ({"P1", "P7"}, {"a", "b"})]
    with store.read() as s:
        assert {tuple(sorted(a.persons)) for a in s.execute(select(AlertRow)).scalars()} == {
            ("P1", "P2"), ("P3",), ("P4",), ("P5",), ("P6", "P7")}
        for members, services in cases:
            known = raised_alerts(s, "r1", since, members)
            assert known.covers(members, services) == already_raised_one(s, "r1", members, services, since)
        assert raised_alerts(s, "r1", since, set()).by_person == {}
    batch = RaisedAlerts()
    batch.note(["P7", "P8"], ["x", "y"])  # raised earlier in the same batch
    assert batch.covers({"P8"}, {"y"}) and not batch.covers({"P8"}, {"z"}) and not batch.covers({"P9"}, {"x"})


def test_the_migration_fills_alert_persons_from_existing_alerts(store):
    from alembic import command

    from hub.store.engine import alembic_config
    from hub.store.tables.alerts import AlertPersonRow

    with store.transaction() as s:
        insert_alerts(s, [alert("r1", ["P1", "P2"], ["a"])])
    cfg = alembic_config()
    with store.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "hub_alert_person@base")
    with store.transaction() as s:
        s.connection().execute(AlertRow.__table__.insert(), [alert("r1", ["P3", "P3", "P4"], ["b"])])
    store.migrate()
    with store.read() as s:
        rows = sorted((p, a) for p, a in s.execute(select(AlertPersonRow.person_id, AlertPersonRow.alert_id)))
        ids = dict(s.execute(select(AlertRow.household_key, AlertRow.id)).all())
    assert rows == sorted([("P1", ids["P1+P2"]), ("P2", ids["P1+P2"]), ("P3", ids["P3+P3+P4"]),
                           ("P4", ids["P3+P3+P4"])])


def test_source_rows_are_read_by_ref_key_in_one_query(store):
    with store.transaction() as s:
        s.add(record("sys/person/1", "person", {"a": 1}, person_id="P1"))
        s.add(record("sys/person/2", "person", {}, person_id="P2", deleted=True))
        s.add(record("sys/involvement/1", "involvement", {"b": 2}, subject_key="sys/person/1"))
    keys = {"sys/person/1", "sys/person/2", "sys/person/3", "sys/involvement/1"}
    with store.read() as s:
        rows = source_rows(s, keys, canonical_of={"person"})
        bare = source_rows(s, keys)
    assert sorted(rows) == sorted(bare) == ["sys/involvement/1", "sys/person/1", "sys/person/2"]
    assert (rows["sys/person/1"].canonical, rows["sys/person/1"].person_id, rows["sys/person/2"].deleted) == (
        {"a": 1}, "P1", True)
    assert rows["sys/involvement/1"].canonical is None and rows["sys/involvement/1"].subject_key == "sys/person/1"
    assert {r.canonical for r in bare.values()} == {None}
