"""`childrens_centres`: registrations and attendance kept in Excel workbooks."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import zipfile
from pathlib import Path

from openpyxl import Workbook

from hub.estate.context import EstateContext, IdSequence
from hub.estate.messiness import Profile, View, impossible_date_parts, observe
from hub.estate.pools import ETHNICITY_CENTRES, LANGUAGES
from hub.estate.population import Household, TruePerson

SYSTEM = "childrens_centres"
PROFILE = Profile(keeps_nhs=0.45, typo=0.04, diminutive=0.2, swap_names=0.01, transpose_dob=0.03,
                  stale_address=0.3, missing_adult_dob=0.3, initial=0.03,
                  defects=("missing_surname", "bad_nhs_checksum", "impossible_date"))
REG_HEADER = ("Reg ID", "Family Ref", "Role", "First Name", "Surname", "DOB", "Gender", "NHS Number",
              "Address 1", "Address 2", "Town", "Postcode", "Phone", "Centre", "Registered On", "Ethnicity",
              "Language")
ATT_HEADER = ("Attendance ID", "Reg ID", "Session Date", "Activity", "Centre")
ACTIVITIES = ("Stay and Play", "Baby Massage", "Health Visitor Clinic", "Speech and Language",
              "Parenting Course", "Rhyme Time")
FIXED_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


class ChildrensCentresWriter:
    def __init__(self, root: Path, ctx: EstateContext) -> None:
        self.ctx = ctx
        self.dir = root / SYSTEM
        self.dir.mkdir(parents=True, exist_ok=True)
        self.reg_book, self.att_book = Workbook(write_only=True), Workbook(write_only=True)
        self.reg = self.reg_book.create_sheet("Registrations")
        self.att = self.att_book.create_sheet("Attendance")
        self.reg.append(REG_HEADER)
        self.att.append(ATT_HEADER)
        self.reg_ids = IdSequence(ctx.rng, 101, 3)
        self.family_ids = IdSequence(ctx.rng, 1)
        self.att_ids = IdSequence(ctx.rng, 1)

    def add(self, household: Household, members: list[TruePerson]) -> None:
        ctx, rng = self.ctx, self.ctx.rng
        family_ref = f"FAM{self.family_ids.next():05d}"
        centre = rng.choice(ctx.pools.centres)
        youngest = max(m.dob for m in members if m.is_child)
        registered = ctx.date_between(youngest, min(youngest + dt.timedelta(days=500), ctx.as_of))
        for person in members:
            view = observe(rng, person, household, PROFILE, ctx.malformed_rate, ctx.as_of,
                           ctx.defect_due(SYSTEM))
            reg_id = f"CC{self.reg_ids.next():06d}"
            role = "Child" if person.is_child else "Parent" if person.role in ("mother", "father") else "Carer"
            gender = (("Boy" if view.sex == "M" else "Girl") if person.is_child
                      else "Male" if view.sex == "M" else "Female") if rng.random() < 0.9 else None
            upper = rng.random() < 0.1
            a = view.address
            self.reg.append((reg_id, family_ref, role, view.given.upper() if upper else view.given,
                             (view.family or "").upper() if upper else view.family, self._dob(view, person),
                             gender, view.nhs, a.line1, a.locality or None, a.town, a.postcode,
                             person.phone if not person.is_child else None, centre, registered,
                             ETHNICITY_CENTRES.get(person.ethnicity) or None, LANGUAGES[person.language]))
            ctx.truth.row(SYSTEM, "registrations", reg_id, person.person_id, "person", view.defect)
            if person.is_child:
                self._attendance(person, reg_id, centre, registered)

    def _dob(self, view: View, person: TruePerson) -> dt.datetime | str | None:
        rng = self.ctx.rng
        if view.defect == "impossible_date":
            day, month, year = impossible_date_parts(rng, person.dob.year)
            return f"{day:02d}.{month:02d}.{year}"
        if view.dob is None:
            return None
        if rng.random() < 0.1:
            return view.dob.strftime(rng.choice(("%d.%m.%Y", "%d/%m/%Y")))
        return dt.datetime.combine(view.dob, dt.time())

    def _attendance(self, child: TruePerson, reg_id: str, centre: str, registered: dt.date) -> None:
        ctx, rng = self.ctx, self.ctx.rng
        for _ in range(rng.choices((0, 1, 2, 4, 6), (20, 25, 25, 20, 10))[0]):
            att_id = self.att_ids.next()
            on = ctx.date_between(registered, ctx.as_of)
            self.att.append((att_id, reg_id, dt.datetime.combine(on, dt.time()), rng.choice(ACTIVITIES), centre))
            ctx.truth.row(SYSTEM, "attendance", att_id, child.person_id, "involvement")

    def close(self) -> None:
        for book, name in ((self.reg_book, "registrations.xlsx"), (self.att_book, "attendance.xlsx")):
            fixed = dt.datetime.combine(self.ctx.as_of, dt.time())
            book.properties.created = fixed
            path = self.dir / name
            book.save(path)
            _freeze_timestamps(path, fixed)


def _freeze_timestamps(path: Path, when: dt.datetime) -> None:
    """openpyxl stamps the save time into the zip and docProps/core.xml; pin both to `when`
    so the same seed gives byte-identical workbooks."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                              rb"\g<1>" + stamp.encode() + rb"\g<2>", src.read(info.filename))
                dst.writestr(entry, data)
                continue
            # Sheets of a million rows are hundreds of MB unzipped: copy them in chunks.
            with src.open(info) as reader, dst.open(entry, "w", force_zip64=True) as writer:
                shutil.copyfileobj(reader, writer, 1 << 20)
    tmp.replace(path)
