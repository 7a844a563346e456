"""`education`: pupil exports dropped as XML files, one series of files per school."""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
from importlib import resources
from pathlib import Path
from typing import TextIO
from xml.sax.saxutils import escape, quoteattr

from hub.estate.context import EstateContext, IdSequence
from hub.estate.messiness import Profile, View, impossible_date_parts, observe
from hub.estate.population import Household, TruePerson

SYSTEM = "education"
PUPILS_PER_FILE = 2000
PROFILE = Profile(keeps_nhs=0.0, typo=0.01, diminutive=0.03, swap_names=0.002, transpose_dob=0.005,
                  stale_address=0.1, defects=("missing_surname", "impossible_date"))
CONTACT_PROFILE = Profile(keeps_nhs=0.0, typo=0.02, diminutive=0.15, swap_names=0.0, stale_address=0.0)
CONTACT_CODES = {"mother": "PAM", "father": "PAF", "stepmother": "STP", "stepfather": "STP",
                 "grandmother": "REL", "grandfather": "REL", "carer": "CAR"}
TITLES = {"F": ("Mrs", "Ms", "Miss"), "M": ("Mr",)}


def academic_year(on: dt.date) -> int:
    """The calendar year in which the academic year containing `on` started."""
    return on.year if on.month >= 9 else on.year - 1


def age_at_31_august(dob: dt.date, year: int) -> int:
    return year - dob.year - ((dob.month, dob.day) > (8, 31))


def nc_year(dob: dt.date, year: int) -> str:
    age = age_at_31_august(dob, year)
    return "N1" if age <= 2 else "N2" if age == 3 else "R" if age == 4 else str(min(age - 4, 14))


def _el(name: str, value: object) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


class _SchoolSeries:
    """The files of one school: a new file every PUPILS_PER_FILE pupils."""

    def __init__(self, inbox: Path, estab: str, name: str, export_date: dt.date) -> None:
        self.inbox, self.estab, self.name, self.export_date = inbox, estab, name, export_date
        self.sequence, self.in_file = 0, 0
        self.file: TextIO | None = None
        self.written: list[str] = []
        self.pupil_ids = itertools.count(1)

    def write(self, pupil_xml: str) -> None:
        if self.file is None or self.in_file >= PUPILS_PER_FILE:
            self._open_next()
        assert self.file is not None
        self.file.write(pupil_xml)
        self.in_file += 1

    def _open_next(self) -> None:
        self.close()
        self.sequence += 1
        self.in_file = 0
        rel = f"inbox/pupils_{self.estab}_{self.sequence:03d}.xml"
        self.written.append(rel)
        self.file = (self.inbox / Path(rel).name).open("w", encoding="utf-8", newline="\n")
        self.file.write(header(self.estab, self.name, self.export_date, self.sequence))

    def close(self) -> None:
        if self.file:
            self.file.write("</PupilExport>\n")
            self.file.close()
            self.file = None


def header(estab: str, name: str, export_date: dt.date, sequence: int | str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<PupilExport SchoolLAEstab={quoteattr(estab)} SchoolName={quoteattr(name)} "
            f'ExportDate="{export_date.isoformat()}" Sequence="{sequence}">\n')


class EducationWriter:
    def __init__(self, root: Path, ctx: EstateContext) -> None:
        self.ctx = ctx
        self.dir = root / SYSTEM
        self.inbox = self.dir / "inbox"
        self.inbox.mkdir(parents=True, exist_ok=True)
        with resources.as_file(resources.files("hub.estate") / "pupils.xsd") as xsd:
            shutil.copyfile(xsd, self.dir / "pupils.xsd")
        self.series = {estab: _SchoolSeries(self.inbox, estab, name, ctx.as_of) for estab, name, _ in ctx.pools.schools}
        self.by_phase = {p: [s for s in ctx.pools.schools if s[2] == p] for p in ("Primary", "Secondary")}
        self.contact_ids = IdSequence(ctx.rng, 1, 2)
        self.resend: list[str] = []
        self.resend_school: str | None = None
        self.current_year = academic_year(ctx.as_of)

    def add(self, household: Household, pupils: list[TruePerson]) -> dict[str, str]:
        """Write the pupils' records; returns each pupil's school name (other systems record it)."""
        rng = self.ctx.rng
        primary = rng.choice(self.by_phase["Primary"])
        secondary = rng.choice(self.by_phase["Secondary"])
        schools = {}
        for child in pupils:
            age = age_at_31_august(child.dob, self.current_year)
            school = primary if age <= 10 else secondary
            schools[child.person_id] = school[1]
            self._pupil(household, child, school, moved_from=False)
            if rng.random() < 0.05:  # changed school: the old school still exports its record
                others = [s for s in self.by_phase[school[2]] if s != school]
                if others:
                    self._pupil(household, child, rng.choice(others), moved_from=True)
        return schools

    def _pupil(self, household: Household, child: TruePerson, school: tuple[str, str, str], moved_from: bool) -> None:
        ctx, rng = self.ctx, self.ctx.rng
        series = self.series[school[0]]
        pupil_id = f"{school[0]}-{next(series.pupil_ids):06d}"
        view = observe(rng, child, household, PROFILE, ctx.malformed_rate, ctx.as_of,
                       ctx.defect_due(SYSTEM))
        if moved_from and household.previous_address:
            view.address = household.previous_address
        entry_age = 4 if school[2] == "Primary" else 11
        entry = dt.date(max(child.dob.year + entry_age, self.current_year - 7), 9, rng.randrange(1, 8))
        parts = ["  <Pupil>\n    ", _el("PupilId", pupil_id)]
        if child.upn and rng.random() > 0.02:
            parts.append(_el("UPN", child.upn))
        parts += [_el("Surname", view.family or ""), _el("Forename", view.given)]
        if view.middle:
            parts.append(_el("MiddleNames", view.middle))
        if view.known_as:
            parts.append(_el("PreferredForename", view.known_as))
        if view.previous_family:
            parts.append(_el("FormerSurname", view.previous_family))
        parts += [_el("DOB", self._dob(view, child)), _el("Gender", view.sex)]
        if rng.random() < 0.95:
            parts.append(_el("Ethnicity", child.ethnicity))
        parts += [_el("FirstLanguage", child.language), _el("SENProvision", child.sen),
                  _el("FSM", "true" if rng.random() < 0.2 else "false"),
                  _el("NCYearActual", nc_year(child.dob, self.current_year)),
                  _el("EntryDate", min(entry, ctx.as_of).isoformat())]
        parts.append("<Address>" + "".join(_el("AddressLine", line) for line in view.address.lines)
                     + _el("Postcode", view.address.postcode) + "</Address>")
        parts.append(self._contacts(household, child, pupil_id))
        parts.append(self._exclusions(child, pupil_id, school[2], entry))
        parts.append(self._attendance(child, pupil_id, entry))
        xml = "\n    ".join(p for p in parts[1:] if p)
        pupil_xml = parts[0] + xml + "\n  </Pupil>\n"
        series.write(pupil_xml)
        ctx.truth.row(SYSTEM, "pupils", pupil_id, child.person_id, "person", view.defect)
        if ctx.malformed_rate and len(self.resend) < 12 and self.resend_school in (None, school[0]):
            self.resend_school = school[0]
            self.resend.append(pupil_xml)

    def _dob(self, view: View, child: TruePerson) -> str:
        if view.defect == "impossible_date":
            day, month, year = impossible_date_parts(self.ctx.rng, child.dob.year)
            return f"{year}-{month:02d}-{day:02d}"
        return (view.dob or child.dob).isoformat()

    def _contacts(self, household: Household, child: TruePerson, pupil_id: str) -> str:
        ctx, rng = self.ctx, self.ctx.rng
        adults = sorted(household.adults, key=lambda a: a.person_id not in child.parent_ids)[:2]
        out = []
        for order, adult in enumerate(adults, start=1):
            view = observe(rng, adult, household, CONTACT_PROFILE, 0.0, ctx.as_of)
            contact_id = f"C{self.contact_ids.next():07d}"
            relation = household.relation(child, adult)
            fields = [_el("ContactId", contact_id), _el("Order", order), _el("Title", rng.choice(TITLES[adult.sex])),
                      _el("Forename", view.given), _el("Surname", view.family or adult.family),
                      _el("Relationship", CONTACT_CODES[relation]),
                      _el("Responsibility", "true" if relation in ("mother", "father") else "false")]
            if rng.random() < 0.85:
                fields.append(_el("Phone", adult.phone))
            out.append("<Contact>" + "".join(fields) + "</Contact>")
            ctx.truth.row(SYSTEM, "contacts", contact_id, adult.person_id, "person")
        return "<Contacts>" + "".join(out) + "</Contacts>" if out else ""

    def _exclusions(self, child: TruePerson, pupil_id: str, phase: str, entry: dt.date) -> str:
        ctx, rng = self.ctx, self.ctx.rng
        if rng.random() >= (0.07 if phase == "Secondary" else 0.01) or entry >= ctx.as_of:
            return ""
        out = []
        for n in range(1, rng.choices((1, 2, 3), (70, 20, 10))[0] + 1):
            ex_id = f"{pupil_id}-X{n}"
            start = ctx.date_between(entry, ctx.as_of)
            category = rng.choices(("FIXD", "PERM", "LUNC"), (85, 5, 10))[0]
            out.append("<Exclusion>" + _el("ExclusionId", ex_id) + _el("StartDate", start.isoformat())
                       + _el("Category", category)
                       + _el("Reason", rng.choice(("PP", "PA", "VP", "VA", "BU", "RA", "DM", "DA", "SM", "MT", "DB", "OT")))
                       + _el("Sessions", 1 if category == "LUNC" else rng.randrange(1, 11)) + "</Exclusion>")
            ctx.truth.row(SYSTEM, "exclusions", ex_id, child.person_id, "involvement")
        return "<Exclusions>" + "".join(out) + "</Exclusions>"

    def _attendance(self, child: TruePerson, pupil_id: str, entry: dt.date) -> str:
        ctx, rng = self.ctx, self.ctx.rng
        out = []
        for year in (self.current_year - 2, self.current_year - 1):
            if year < academic_year(entry) or age_at_31_august(child.dob, year) < 4:
                continue
            att_id = f"{pupil_id}-A{year}"
            possible = rng.randrange(300, 381)
            poor = rng.random() < 0.12
            authorised = rng.randrange(0, 40 if poor else 20)
            unauthorised = rng.randrange(10, 60) if poor else rng.randrange(0, 6)
            out.append("<Year>" + _el("AttendanceId", att_id) + _el("AcademicYear", year)
                       + _el("PossibleSessions", possible) + _el("AuthorisedAbsence", authorised)
                       + _el("UnauthorisedAbsence", unauthorised) + "</Year>")
            ctx.truth.row(SYSTEM, "attendance", att_id, child.person_id, "involvement")
        return "<Attendance>" + "".join(out) + "</Attendance>" if out else ""

    def close(self) -> None:
        files = []
        for series in self.series.values():
            series.close()
            files += series.written
        self.ctx.files[SYSTEM] = sorted(files)
        if self.resend and self.resend_school:
            name = next(n for e, n, _ in self.ctx.pools.schools if e == self.resend_school)
            rel = f"inbox/pupils_{self.resend_school}_resend.xml"
            body = header(self.resend_school, name, self.ctx.as_of, "resend") + "".join(self.resend)
            # Truncated in the middle of the last pupil: the file is not well formed.
            (self.dir / rel).write_text(body[: len(body) - len(self.resend[-1]) // 2], encoding="utf-8")
            self.ctx.files["education_unreadable"] = [rel]
