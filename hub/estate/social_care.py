"""`social_care`: children's social care case management, a SQLite database with watermarks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hub.estate.context import BufferedInserts, EstateContext, IdSequence, open_new_sqlite
from hub.estate.identifiers import space_nhs_number
from hub.estate.messiness import Profile, View, observe
from hub.estate.population import Address, Household, TruePerson

SYSTEM = "social_care"
PROFILE = Profile(keeps_nhs=0.85, year_only_dob=0.05,
                  defects=("missing_surname", "bad_nhs_checksum", "future_date"))
SCHEMA = """
CREATE TABLE teams (team_id INTEGER PRIMARY KEY, team_name TEXT NOT NULL);
CREATE TABLE workers (worker_id INTEGER PRIMARY KEY, name TEXT NOT NULL, team_id INTEGER REFERENCES teams);
CREATE TABLE clients (client_id INTEGER PRIMARY KEY, forename TEXT, middle_names TEXT, surname TEXT,
  previous_surname TEXT, known_as TEXT, dob TEXT, gender TEXT NOT NULL, nhs_no TEXT, ethnicity TEXT,
  first_language TEXT, disability INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL,
  last_modified TEXT NOT NULL);
CREATE TABLE client_addresses (address_id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL REFERENCES clients,
  line1 TEXT, line2 TEXT, town TEXT, postcode TEXT, start_date TEXT, end_date TEXT,
  is_current INTEGER NOT NULL, last_modified TEXT NOT NULL);
CREATE TABLE referrals (referral_id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL REFERENCES clients,
  referral_date TEXT NOT NULL, source_code TEXT, need_code TEXT, outcome TEXT, closed_date TEXT,
  worker_id INTEGER REFERENCES workers, last_modified TEXT NOT NULL);
CREATE TABLE assessments (assessment_id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL REFERENCES clients,
  referral_id INTEGER REFERENCES referrals, start_date TEXT NOT NULL, completed_date TEXT, outcome TEXT,
  worker_id INTEGER REFERENCES workers, last_modified TEXT NOT NULL);
CREATE TABLE cp_plans (plan_id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL REFERENCES clients,
  start_date TEXT NOT NULL, end_date TEXT, category TEXT, worker_id INTEGER REFERENCES workers,
  last_modified TEXT NOT NULL);
CREATE TABLE cla_episodes (episode_id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL REFERENCES clients,
  start_date TEXT NOT NULL, end_date TEXT, legal_status TEXT, placement_type TEXT,
  worker_id INTEGER REFERENCES workers, last_modified TEXT NOT NULL);
CREATE TABLE relationships (relationship_id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL REFERENCES clients,
  related_client_id INTEGER NOT NULL REFERENCES clients, rel_type TEXT NOT NULL, last_modified TEXT NOT NULL);
"""
INDEXES = """
CREATE INDEX ix_clients_modified ON clients (last_modified);
CREATE INDEX ix_addresses_client ON client_addresses (client_id);
CREATE INDEX ix_addresses_modified ON client_addresses (last_modified);
CREATE INDEX ix_referrals_modified ON referrals (last_modified);
CREATE INDEX ix_assessments_modified ON assessments (last_modified);
CREATE INDEX ix_cp_plans_modified ON cp_plans (last_modified);
CREATE INDEX ix_cla_modified ON cla_episodes (last_modified);
CREATE INDEX ix_relationships_modified ON relationships (last_modified);
"""
REL_CODES = {"mother": "MOT", "father": "FAT", "stepmother": "STM", "stepfather": "STF",
             "grandmother": "GRM", "grandfather": "GRF", "carer": "CAR"}
TABLES = {
    "clients": ("client_id", "forename", "middle_names", "surname", "previous_surname", "known_as", "dob",
                "gender", "nhs_no", "ethnicity", "first_language", "disability", "created_at", "last_modified"),
    "client_addresses": ("address_id", "client_id", "line1", "line2", "town", "postcode", "start_date",
                         "end_date", "is_current", "last_modified"),
    "referrals": ("referral_id", "client_id", "referral_date", "source_code", "need_code", "outcome",
                  "closed_date", "worker_id", "last_modified"),
    "assessments": ("assessment_id", "client_id", "referral_id", "start_date", "completed_date", "outcome",
                    "worker_id", "last_modified"),
    "cp_plans": ("plan_id", "client_id", "start_date", "end_date", "category", "worker_id", "last_modified"),
    "cla_episodes": ("episode_id", "client_id", "start_date", "end_date", "legal_status", "placement_type",
                     "worker_id", "last_modified"),
    "relationships": ("relationship_id", "client_id", "related_client_id", "rel_type", "last_modified"),
}


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


class SocialCareWriter:
    def __init__(self, root: Path, ctx: EstateContext) -> None:
        self.ctx = ctx
        self.conn = open_new_sqlite(root / SYSTEM / "social_care.db", SCHEMA)
        self.conn.executemany("INSERT INTO teams VALUES (?, ?)", ctx.pools.teams)
        self.conn.executemany("INSERT INTO workers VALUES (?, ?, ?)", ctx.pools.workers)
        self.out = {t: BufferedInserts(self.conn, t, cols) for t, cols in TABLES.items()}
        rng = ctx.rng
        self.ids = {"clients": IdSequence(rng, 200001, 3), "client_addresses": IdSequence(rng, 900001, 2),
                    "referrals": IdSequence(rng, 50001, 2), "assessments": IdSequence(rng, 70001, 2),
                    "cp_plans": IdSequence(rng, 3001), "cla_episodes": IdSequence(rng, 6001),
                    "relationships": IdSequence(rng, 1)}

    def add(self, household: Household, members: list[TruePerson]) -> None:
        client_of: dict[str, int] = {}
        for person in members:
            client_of[person.person_id] = self._client(household, person)
            if self.ctx.rng.random() < 0.01:  # a second record of the same person, keyed again
                self._client(household, person)
        for person in members:
            if person.is_child:
                self._involvements(client_of[person.person_id], person)
        self._relationships(household, members, client_of)

    def _client(self, household: Household, person: TruePerson) -> int:
        ctx, rng = self.ctx, self.ctx.rng
        view = observe(rng, person, household, PROFILE, ctx.malformed_rate, ctx.as_of,
                       ctx.defect_due(SYSTEM))
        client_id = self.ids["clients"].next()
        created = ctx.recent(person.dob)
        modified = ctx.timestamp(ctx.date_between(created, ctx.as_of))
        nhs = view.nhs
        if nhs and rng.random() < 0.3:
            nhs = space_nhs_number(nhs)
        dob = None if view.dob is None else str(view.dob.year) if view.dob_year_only else view.dob.isoformat()
        gender = "U" if rng.random() < 0.01 else view.sex
        self.out["clients"].add((client_id, view.given, view.middle, view.family, view.previous_family,
                                 view.known_as, dob, gender, nhs,
                                 person.ethnicity if rng.random() < 0.9 else None, person.language,
                                 int(person.sen == "E" or person.health_flag), ctx.timestamp(created), modified))
        ctx.truth.row(SYSTEM, "clients", client_id, person.person_id, "person", view.defect)
        self._addresses(client_id, person, household, view, created)
        return client_id

    def _addresses(self, client_id: int, person: TruePerson, household: Household, view: View,
                   created: dt.date) -> None:
        prev = household.previous_address
        if prev and view.address is household.address:  # the move was recorded
            self._address(client_id, person, prev, household.address.since, created)
        self._address(client_id, person, view.address, None, created)

    def _address(self, client_id: int, person: TruePerson, a: Address, end: dt.date | None,
                 created: dt.date) -> None:
        ctx = self.ctx
        address_id = self.ids["client_addresses"].next()
        pc = a.postcode.replace(" ", "") if ctx.rng.random() < 0.1 else a.postcode
        self.out["client_addresses"].add((address_id, client_id, a.line1, a.locality or None, a.town, pc,
                                          _iso(a.since), _iso(end), int(end is None),
                                          ctx.timestamp(ctx.date_between(max(created, end or created), ctx.as_of))))
        ctx.truth.row(SYSTEM, "client_addresses", address_id, person.person_id, "address")

    def _worker(self) -> int:
        return self.ctx.rng.choice(self.ctx.pools.workers)[0]

    def _involvements(self, client_id: int, child: TruePerson) -> None:
        ctx, rng = self.ctx, self.ctx.rng
        for _ in range(rng.choices((1, 2, 3), (60, 30, 10))[0]):
            ref_id = self.ids["referrals"].next()
            start = ctx.recent(child.dob)
            outcome = rng.choices(("NFA", "ASS", "EH", None), (30, 50, 12, 8))[0]
            closed = None if outcome is None else ctx.date_between(start, min(start + dt.timedelta(days=30), ctx.as_of))
            self.out["referrals"].add((ref_id, client_id, start.isoformat(), rng.choice(
                ("POL", "SCH", "HEA", "LA", "SELF", "FAM", "ANON", "OTH")), f"N{rng.randrange(1, 10)}",
                outcome, _iso(closed), self._worker(), ctx.timestamp(closed or start)))
            ctx.truth.row(SYSTEM, "referrals", ref_id, child.person_id, "involvement")
            if outcome == "ASS":
                self._assessment(client_id, child, ref_id, closed or start)

    def _assessment(self, client_id: int, child: TruePerson, ref_id: int, start: dt.date) -> None:
        ctx, rng = self.ctx, self.ctx.rng
        ass_id = self.ids["assessments"].next()
        done = start + dt.timedelta(days=rng.randrange(10, 45))
        done = done if done < ctx.as_of else None
        outcome = rng.choices(("CIN", "CP", "NFA"), (50, 20, 30))[0] if done else None
        self.out["assessments"].add((ass_id, client_id, ref_id, start.isoformat(), _iso(done), outcome,
                                     self._worker(), ctx.timestamp(done or start)))
        ctx.truth.row(SYSTEM, "assessments", ass_id, child.person_id, "involvement")
        if outcome == "CP" and done:
            plan_id = self.ids["cp_plans"].next()
            end = done + dt.timedelta(days=rng.randrange(90, 700))
            end = end if end < ctx.as_of else None
            self.out["cp_plans"].add((plan_id, client_id, done.isoformat(), _iso(end),
                                      rng.choice(("NEG", "PHY", "EMO", "SEX", "MUL")), self._worker(),
                                      ctx.timestamp(end or done)))
            ctx.truth.row(SYSTEM, "cp_plans", plan_id, child.person_id, "involvement")
            if rng.random() < 0.35:
                self._cla(client_id, child, done + dt.timedelta(days=rng.randrange(1, 200)))

    def _cla(self, client_id: int, child: TruePerson, start: dt.date) -> None:
        ctx, rng = self.ctx, self.ctx.rng
        if start >= ctx.as_of:
            return
        ep_id = self.ids["cla_episodes"].next()
        end = start + dt.timedelta(days=rng.randrange(30, 1200))
        end = end if end < ctx.as_of else None
        self.out["cla_episodes"].add((ep_id, client_id, start.isoformat(), _iso(end),
                                      rng.choice(("C1", "C2", "V2", "E1", "L1")),
                                      rng.choice(("U1", "U2", "U3", "U4", "U5", "U6", "R1", "P1")),
                                      self._worker(), ctx.timestamp(end or start)))
        ctx.truth.row(SYSTEM, "cla_episodes", ep_id, child.person_id, "involvement")

    def _relationships(self, household: Household, members: list[TruePerson], client_of: dict[str, int]) -> None:
        children = [m for m in members if m.is_child]
        adults = [m for m in members if not m.is_child]
        pairs: list[tuple[TruePerson, TruePerson, str]] = []
        for child in children:
            for adult in adults:
                pairs.append((child, adult, REL_CODES[household.relation(child, adult)]))
                pairs.append((adult, child, "CHI"))
            for other in children:
                if other is not child:
                    shared = set(child.parent_ids) == set(other.parent_ids)
                    pairs.append((child, other, "SIB" if shared else "HSB"))
        for subject, related, code in pairs:
            rel_id = self.ids["relationships"].next()
            self.out["relationships"].add((rel_id, client_of[subject.person_id], client_of[related.person_id],
                                           code, self.ctx.timestamp(self.ctx.recent(subject.dob))))
            self.ctx.truth.row(SYSTEM, "relationships", rel_id, subject.person_id, "relationship")

    def close(self) -> None:
        for out in self.out.values():
            out.flush()
        self.conn.executescript(INDEXES)
        self.conn.commit()
        self.conn.close()
