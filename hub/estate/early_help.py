"""`early_help`: family support, a legacy SQLite database with no modified column at all."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hub.estate.context import BufferedInserts, EstateContext, IdSequence, open_new_sqlite
from hub.estate.messiness import Profile, View, impossible_date_parts, observe
from hub.estate.population import Household, TruePerson

SYSTEM = "early_help"
PROFILE = Profile(keeps_nhs=0.1, typo=0.05, transpose_dob=0.04, initial=0.03, defects=("missing_surname", "impossible_date"))
SCHEMA = """
CREATE TABLE families (family_id TEXT PRIMARY KEY, family_name TEXT, address TEXT, postcode TEXT,
  keyworker TEXT, opened TEXT);
CREATE TABLE family_members (member_id INTEGER PRIMARY KEY, family_id TEXT NOT NULL REFERENCES families,
  full_name TEXT, dob TEXT, sex TEXT, role TEXT, nhs_number TEXT, school TEXT);
CREATE TABLE episodes (episode_id INTEGER PRIMARY KEY, family_id TEXT NOT NULL REFERENCES families,
  member_id INTEGER REFERENCES family_members, start_date TEXT, end_date TEXT, reason TEXT, outcome TEXT,
  lead_practitioner TEXT);
"""
ROLES = {"child": "Child", "mother": "Mother", "father": "Father", "stepmother": "Stepmother",
         "stepfather": "Stepfather", "grandmother": "Grandparent", "grandfather": "Grandparent", "carer": "Carer"}
SEX = {"M": "Male", "F": "Female"}
REASONS = ("Parenting", "School attendance", "Domestic abuse", "Housing", "Child behaviour",
           "Parental mental health", "Substance misuse", "Financial")
OUTCOMES = ("Needs met", "Stepped down", "Escalated to CSC", "Disengaged")


def dmy(d: dt.date | None) -> str:
    return d.strftime("%d/%m/%Y") if d else ""


class EarlyHelpWriter:
    def __init__(self, root: Path, ctx: EstateContext) -> None:
        self.ctx = ctx
        self.conn = open_new_sqlite(root / SYSTEM / "early_help.db", SCHEMA)
        self.families = BufferedInserts(self.conn, "families",
                                        ("family_id", "family_name", "address", "postcode", "keyworker", "opened"))
        self.members = BufferedInserts(self.conn, "family_members", ("member_id", "family_id", "full_name", "dob",
                                                                     "sex", "role", "nhs_number", "school"))
        self.episodes = BufferedInserts(self.conn, "episodes", ("episode_id", "family_id", "member_id", "start_date",
                                                                "end_date", "reason", "outcome", "lead_practitioner"))
        self.family_ids = IdSequence(ctx.rng, 1001, 2)
        self.member_ids = IdSequence(ctx.rng, 1)
        self.episode_ids = IdSequence(ctx.rng, 1)

    def add(self, household: Household, members: list[TruePerson], schools: dict[str, str]) -> None:
        ctx, rng = self.ctx, self.ctx.rng
        family_id = f"F{self.family_ids.next():07d}"
        lead = members[0]
        a = household.address if rng.random() < 0.8 or not household.previous_address else household.previous_address
        opened = ctx.recent(max(m.dob for m in members))
        self.families.add((family_id, lead.family, ", ".join(a.lines), a.postcode,
                           rng.choice(ctx.pools.workers)[1], dmy(opened)))
        ctx.truth.row(SYSTEM, "families", family_id, lead.person_id, "household")
        member_of: dict[str, int] = {}
        for person in members:
            view = observe(rng, person, household, PROFILE, ctx.malformed_rate, ctx.as_of,
                           ctx.defect_due(SYSTEM))
            member_id = self.member_ids.next()
            member_of[person.person_id] = member_id
            self.members.add((member_id, family_id, self._full_name(view), self._dob(view),
                              SEX[view.sex] if rng.random() > 0.02 else "Not known", ROLES[person.role],
                              view.nhs or "", schools.get(person.person_id, "")))
            ctx.truth.row(SYSTEM, "family_members", member_id, person.person_id, "person", view.defect)
        children = [m for m in members if m.is_child]
        for _ in range(rng.choices((1, 2), (75, 25))[0] if children else 0):
            child = rng.choice(children)
            start = ctx.date_between(opened, ctx.as_of)
            end = start + dt.timedelta(days=rng.randrange(60, 400))
            open_now = end >= ctx.as_of
            episode_id = self.episode_ids.next()
            self.episodes.add((episode_id, family_id, member_of[child.person_id], dmy(start),
                               "" if open_now else dmy(end), rng.choice(REASONS),
                               "Ongoing" if open_now else rng.choice(OUTCOMES), rng.choice(ctx.pools.workers)[1]))
            ctx.truth.row(SYSTEM, "episodes", episode_id, child.person_id, "involvement")

    def _full_name(self, view: View) -> str:
        given = " ".join(p for p in (view.given, view.middle) if p)
        if not view.family:
            return f", {given}"  # the "SURNAME, Given" convention with the surname left empty
        if self.ctx.rng.random() < 0.05:
            return f"{given} {view.family}"
        return f"{view.family.upper()}, {given}"

    def _dob(self, view: View) -> str:
        if view.defect == "impossible_date":
            day, month, year = impossible_date_parts(self.ctx.rng, (view.dob or self.ctx.as_of).year)
            return f"{day:02d}/{month:02d}/{year}"
        return dmy(view.dob)

    def close(self) -> None:
        for out in (self.families, self.members, self.episodes):
            out.flush()
        self.conn.executescript("CREATE INDEX ix_members_family ON family_members (family_id);"
                                "CREATE INDEX ix_episodes_family ON episodes (family_id);")
        self.conn.commit()
        self.conn.close()
