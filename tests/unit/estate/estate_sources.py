"""Read every legacy row of a generated estate straight from its native format, independently
of the generator, so tests can compare what is on disk with the manifest and the ground truth."""

from __future__ import annotations

import csv
import sqlite3
from collections import defaultdict
from pathlib import Path

from lxml import etree
from openpyxl import load_workbook

SQL_TABLES = {
    "social_care": {"clients": "client_id", "client_addresses": "address_id", "referrals": "referral_id",
                    "assessments": "assessment_id", "cp_plans": "plan_id", "cla_episodes": "episode_id",
                    "relationships": "relationship_id"},
    "early_help": {"families": "family_id", "family_members": "member_id", "episodes": "episode_id"},
    "youth_justice": {"young-people": "young_people.id", "orders": "orders.id"},
}
XML_IDS = {"pupils": "/PupilExport/Pupil/PupilId", "contacts": "//Contact/ContactId",
           "exclusions": "//Exclusion/ExclusionId", "attendance": "//Attendance/Year/AttendanceId"}


def _sql(root: Path, system: str) -> dict[str, list[str]]:
    out = {}
    with sqlite3.connect(root / system / f"{system}.db") as db:
        for entity, column in SQL_TABLES[system].items():
            table, _, col = column.rpartition(".")
            table = table or entity
            out[entity] = [str(r[0]) for r in db.execute(f"SELECT {col} FROM {table}")]
    return out


def _education(root: Path, files: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for rel in files:
        tree = etree.parse(str(root / "education" / rel))
        for entity, path in XML_IDS.items():
            out[entity] += [e.text for e in tree.xpath(path)]
    return dict(out)


def csv_rows(path: Path, encoding: str, delimiter: str) -> list[list[str]]:
    with path.open(encoding=encoding, newline="") as f:
        return list(csv.reader(f, delimiter=delimiter))


def _youth_service(root: Path) -> dict[str, list[str]]:
    members = csv_rows(root / "youth_service" / "members.csv", "cp1252", ";")[1:]
    sessions = csv_rows(root / "youth_service" / "sessions.csv", "utf-8-sig", ",")[1:]
    return {"members": [r[0] for r in members], "sessions": [r[0] for r in sessions]}


def xlsx_rows(path: Path) -> list[tuple]:
    book = load_workbook(path, read_only=True)
    try:
        return [tuple(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    finally:
        book.close()


def _childrens_centres(root: Path) -> dict[str, list[str]]:
    reg = xlsx_rows(root / "childrens_centres" / "registrations.xlsx")[1:]
    att = xlsx_rows(root / "childrens_centres" / "attendance.xlsx")[1:]
    return {"registrations": [str(r[0]) for r in reg], "attendance": [str(r[0]) for r in att]}


def source_ids(root: Path, education_files: list[str]) -> dict[str, dict[str, list[str]]]:
    """system -> entity -> every source id found in the estate's files."""
    return {"social_care": _sql(root, "social_care"), "early_help": _sql(root, "early_help"),
            "education": _education(root, education_files), "youth_service": _youth_service(root),
            "childrens_centres": _childrens_centres(root), "youth_justice": _sql(root, "youth_justice")}


def truth_rows(root: Path) -> list[dict[str, str]]:
    with (root / "truth.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))
