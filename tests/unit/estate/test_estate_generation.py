"""The generator: deterministic, counted, covered by the ground truth, messy on purpose."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from lxml import etree

from canonical.person import nhs_number_is_valid
from hub.estate import SYSTEMS, generate
from tests.unit.estate.estate_sources import csv_rows, source_ids, truth_rows, xlsx_rows


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    root = tmp_path_factory.mktemp("estate")
    manifest = generate(root, people=2000, seed=11)
    return root, manifest


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_estate_and_another_seed_does_not(tmp_path):
    generate(tmp_path / "a", people=600, seed=5)
    generate(tmp_path / "b", people=600, seed=5)
    generate(tmp_path / "c", people=600, seed=6)
    a, b, c = (_digest(tmp_path / n) for n in "abc")
    assert a == b
    assert len(a) >= 12  # both databases, XSD, XML files, two CSVs, two workbooks, truth, manifest
    assert a["truth.csv"] != c["truth.csv"]
    assert a["social_care/social_care.db"] != c["social_care/social_care.db"]


def test_exact_number_of_true_people_each_in_one_to_four_systems(estate):
    root, manifest = estate
    systems_of: dict[str, set[str]] = defaultdict(set)
    for row in truth_rows(root):
        if row["kind"] == "person":
            systems_of[row["person_id"]].add(row["system"])
    assert len(systems_of) == manifest.people == 2000
    spread = Counter(str(len(s)) for s in systems_of.values())
    assert spread == Counter(manifest.people_by_system_count)
    assert set(spread) <= {"1", "2", "3", "4"} and spread["2"] > 0 and spread["3"] > 0


def test_manifest_counts_equal_rows_on_disk_and_truth_covers_every_row(estate):
    root, manifest = estate
    on_disk = source_ids(root, manifest.files["education"])
    truth: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in truth_rows(root):
        truth[(row["system"], row["entity"])].append(row["source_id"])
    assert set(manifest.systems) == set(SYSTEMS)
    for system, entities in on_disk.items():
        assert set(entities) == set(manifest.systems[system]), system
        for entity, ids in entities.items():
            assert len(ids) == manifest.systems[system][entity] > 0, (system, entity)
            assert len(set(ids)) == len(ids), f"duplicate source ids in {system}.{entity}"
            assert sorted(truth[(system, entity)]) == sorted(ids), (system, entity)
    assert sum(len(v) for v in truth.values()) == manifest.total_rows()


def test_well_formed_exports_validate_against_the_xsd_and_the_resend_is_garbage(estate):
    root, manifest = estate
    schema = etree.XMLSchema(etree.parse(str(root / "education" / "pupils.xsd")))
    assert len(manifest.files["education"]) >= 3
    for rel in manifest.files["education"]:
        doc = etree.parse(str(root / "education" / rel))
        assert schema.validate(doc), (rel, schema.error_log.last_error)
    [resend] = manifest.files["education_unreadable"]
    with pytest.raises(etree.XMLSyntaxError):
        etree.parse(str(root / "education" / resend))


def test_every_format_reads_with_its_native_conventions(estate):
    root, _ = estate
    raw = (root / "youth_service" / "members.csv").read_bytes()
    assert b"\r\n" in raw and not raw.startswith(b"\xef\xbb\xbf")
    members = csv_rows(root / "youth_service" / "members.csv", "cp1252", ";")
    assert members[0][:4] == ["Member No", "First Name", "Last Name", "DOB"]
    widths = Counter(len(r) for r in members[1:])
    assert len(widths) > 1, "some rows are ragged"
    assert any(r[7].startswith("+44") for r in members[1:] if len(r) > 7)
    assert (root / "youth_service" / "sessions.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    dobs = [r[3] for r in members[1:]]
    assert any("-" in d and d[:4].isdigit() for d in dobs) and any("/" in d for d in dobs)
    reg = xlsx_rows(root / "childrens_centres" / "registrations.xlsx")
    assert reg[0][:6] == ("Reg ID", "Family Ref", "Role", "First Name", "Surname", "DOB")
    kinds = Counter(type(r[5]).__name__ for r in reg[1:])
    assert kinds["datetime"] > kinds["str"] > 0
    with sqlite3.connect(root / "early_help" / "early_help.db") as db:
        columns = {r[1] for t in ("families", "family_members", "episodes")
                   for r in db.execute(f"PRAGMA table_info({t})")}
        names = [r[0] for r in db.execute("SELECT full_name FROM family_members")]
    assert not any("modif" in c or "updated" in c for c in columns)
    assert sum(", " in n for n in names) > 0.9 * len(names)
    with sqlite3.connect(root / "social_care" / "social_care.db") as db:
        nhs = [r[0] for r in db.execute("SELECT nhs_no FROM clients WHERE nhs_no IS NOT NULL")]
        latest = db.execute("SELECT MAX(last_modified) FROM clients").fetchone()[0]
    assert any(" " in n for n in nhs) and any(" " not in n for n in nhs)
    assert latest <= "2026-09-01 23:59:59"


def test_deliberate_defects_are_real_and_near_the_configured_rate(tmp_path):
    root = tmp_path / "bad"
    manifest = generate(root, people=3000, seed=3, malformed_rate=0.1)
    rows = truth_rows(root)
    people = [r for r in rows if r["kind"] == "person" and r["system"] != "education" or r["entity"] == "pupils"]
    rate = sum(bool(r["defect"]) for r in people) / len(people)
    assert 0.05 < rate < 0.12
    defects = {(r["system"], r["entity"], r["source_id"]): r["defect"] for r in rows if r["defect"]}
    with sqlite3.connect(root / "social_care" / "social_care.db") as db:
        for client_id, surname, nhs, dob in db.execute("SELECT client_id, surname, nhs_no, dob FROM clients"):
            defect = defects.get(("social_care", "clients", str(client_id)), "")
            if defect == "missing_surname":
                assert not surname
            elif defect == "bad_nhs_checksum":
                assert not nhs_number_is_valid(nhs.replace(" ", ""))
            elif defect == "future_date":
                assert dt.date.fromisoformat(dob) > dt.date(2026, 9, 1)
            else:
                assert surname and (nhs is None or nhs_number_is_valid(nhs.replace(" ", "")))
    with sqlite3.connect(root / "early_help" / "early_help.db") as db:
        for member_id, dob in db.execute("SELECT member_id, dob FROM family_members"):
            if defects.get(("early_help", "family_members", str(member_id))) == "impossible_date":
                with pytest.raises(ValueError):
                    dt.datetime.strptime(dob, "%d/%m/%Y")
            elif dob:
                dt.datetime.strptime(dob, "%d/%m/%Y")
    assert sum(sum(e.values()) for e in manifest.malformed.values()) == len(defects)


def test_no_defects_and_no_garbage_file_when_the_rate_is_zero(tmp_path):
    manifest = generate(tmp_path, people=800, seed=4, malformed_rate=0.0)
    assert not any(r["defect"] for r in truth_rows(tmp_path))
    assert "education_unreadable" not in manifest.files
    assert not list((tmp_path / "education" / "inbox").glob("*resend*"))


def test_households_hold_families_with_their_mess(estate):
    root, _ = estate
    with sqlite3.connect(root / "social_care" / "social_care.db") as db:
        rel_types = {r[0] for r in db.execute("SELECT DISTINCT rel_type FROM relationships")}
        ended = db.execute("SELECT COUNT(*) FROM client_addresses WHERE end_date IS NOT NULL").fetchone()[0]
        year_only = db.execute("SELECT COUNT(*) FROM clients WHERE length(dob) = 4").fetchone()[0]
    assert {"MOT", "CHI", "SIB"} <= rel_types
    assert ended > 0 and year_only > 0
    pupils = [r for r in truth_rows(root) if r["entity"] == "pupils"]
    by_person = Counter(r["person_id"] for r in pupils)
    assert max(by_person.values()) >= 2, "a pupil who changed school is in two schools' exports"


@pytest.mark.parametrize("people,seed", [(30, 4), (50, 6), (120, 5)])
def test_a_tiny_estate_still_has_someone_in_every_system(tmp_path, people, seed):
    manifest = generate(tmp_path, people=people, seed=seed)
    for system in SYSTEMS:
        assert sum(manifest.systems[system].values()) > 0, system
    person_entities = {"social_care": "clients", "early_help": "family_members", "education": "pupils",
                       "youth_service": "members", "childrens_centres": "registrations",
                       "youth_justice": "young-people"}
    for system, entity in person_entities.items():
        assert manifest.systems[system].get(entity, 0) > 0, (system, entity)
    assert sum(manifest.people_by_system_count.values()) == people
    assert set(manifest.people_by_system_count) <= {"1", "2", "3", "4"}
