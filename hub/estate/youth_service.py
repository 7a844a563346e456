"""`youth_service`: youth club membership kept in CSV exports, with spreadsheet habits."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from hub.estate.context import EstateContext, IdSequence
from hub.estate.messiness import Profile, View, impossible_date_parts, observe
from hub.estate.pools import ETHNICITY_TEXT
from hub.estate.population import Household, TruePerson

SYSTEM = "youth_service"
PROFILE = Profile(keeps_nhs=0.0, typo=0.06, diminutive=0.3, swap_names=0.02, transpose_dob=0.05,
                  stale_address=0.4, defects=("missing_surname", "impossible_date"))
MEMBER_HEADER = ("Member No", "First Name", "Last Name", "DOB", "Gender", "Address", "Postcode", "Phone",
                 "School", "Ethnicity", "Joined", "Notes")
SESSION_HEADER = ("session_id", "member_no", "date", "activity", "venue", "attended")
GENDER = {"M": ("Male", "M", "m", "Boy"), "F": ("Female", "F", "f", "Girl")}
ACTIVITIES = ("Drop-in", "Sport", "Music", "Duke of Edinburgh", "Detached outreach", "Girls group", "Cooking")
VENUES = ("Matlock Youth Centre", "Chesterfield Youth Hub", "Buxton Youth Club", "Ilkeston Youth Centre",
          "Belper Youth Club", "Glossop Youth Centre")
NOTES = ("", "", "", "Keen on football", "Referred by school", "+ve engagement", "Needs lift home",
         "Photo consent: no", "Allergic to nuts")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class YouthServiceWriter:
    def __init__(self, root: Path, ctx: EstateContext) -> None:
        self.ctx = ctx
        folder = root / SYSTEM
        folder.mkdir(parents=True, exist_ok=True)
        self.members_file = (folder / "members.csv").open("w", encoding="cp1252", errors="replace", newline="")
        self.members = csv.writer(self.members_file, delimiter=";", lineterminator="\r\n")
        self.members.writerow(MEMBER_HEADER)
        self.sessions_file = (folder / "sessions.csv").open("w", encoding="utf-8-sig", newline="")
        self.sessions = csv.writer(self.sessions_file, delimiter=",", lineterminator="\n")
        self.sessions.writerow(SESSION_HEADER)
        self.member_ids = IdSequence(ctx.rng, 101, 2)
        self.session_ids = IdSequence(ctx.rng, 1)

    def add(self, household: Household, members: list[TruePerson], schools: dict[str, str]) -> None:
        for person in members:
            member_no = self._member(household, person, schools.get(person.person_id, ""))
            if self.ctx.rng.random() < 0.012:  # signed up again at another club
                self._member(household, person, schools.get(person.person_id, ""))
            self._sessions(person, member_no)

    def _member(self, household: Household, person: TruePerson, school: str) -> str:
        ctx, rng = self.ctx, self.ctx.rng
        view = observe(rng, person, household, PROFILE, ctx.malformed_rate, ctx.as_of,
                       ctx.defect_due(SYSTEM))
        member_no = f"YS{self.member_ids.next():05d}"
        eleventh_birthday = person.dob + dt.timedelta(days=4018)
        joined = ctx.date_between(max(eleventh_birthday, ctx.as_of - dt.timedelta(days=2500)), ctx.as_of)
        phone = person.phone if rng.random() < 0.5 else "+44 " + person.phone[1:]
        notes = rng.choice(NOTES)
        if rng.random() < 0.02:
            notes = f'=HYPERLINK("http://intranet/ys/{member_no}","notes")'
        a = view.address
        row = [member_no, self._case(view.given), self._case(view.family or ""), self._dob(view, person),
               "" if rng.random() < 0.02 else rng.choice(GENDER[view.sex]), f"{a.line1}, {a.town}",
               a.postcode, phone, school, ETHNICITY_TEXT.get(person.ethnicity, "") if rng.random() < 0.8 else "",
               joined.strftime("%d/%m/%Y"), notes]
        r = rng.random()
        if r < 0.03:
            row = row[: rng.choice((8, 9))]  # ragged: the export stopped at the phone or school
        elif r < 0.05:
            row.append("")
        self.members.writerow(row)
        ctx.truth.row(SYSTEM, "members", member_no, person.person_id, "person", view.defect)
        return member_no

    def _case(self, name: str) -> str:
        r = self.ctx.rng.random()
        return name.upper() if r < 0.15 else name.lower() if r < 0.22 else name

    def _dob(self, view: View, person: TruePerson) -> str:
        rng = self.ctx.rng
        if view.defect == "impossible_date":
            day, month, year = impossible_date_parts(rng, person.dob.year)
            return f"{day}/{month}/{year}"
        d = view.dob or person.dob
        style = rng.random()
        if style < 0.4:
            return f"{d.day}/{d.month}/{d.year}"
        if style < 0.7:
            return d.strftime("%d/%m/%Y")
        if style < 0.9:
            return d.isoformat()
        return f"{d.day:02d}-{MONTHS[d.month - 1]}-{d.year}"

    def _sessions(self, person: TruePerson, member_no: str) -> None:
        ctx, rng = self.ctx, self.ctx.rng
        venue = rng.choice(VENUES)
        for _ in range(rng.choices((0, 1, 2, 3, 5, 8), (20, 20, 20, 15, 15, 10))[0]):
            session_id = self.session_ids.next()
            on = ctx.date_between(ctx.as_of - dt.timedelta(days=700), ctx.as_of)
            self.sessions.writerow((session_id, member_no, on.strftime("%d/%m/%Y"), rng.choice(ACTIVITIES),
                                    venue, "Y" if rng.random() < 0.85 else "N"))
            ctx.truth.row(SYSTEM, "sessions", session_id, person.person_id, "involvement")

    def close(self) -> None:
        self.members_file.close()
        self.sessions_file.close()
