"""mutate: realistic changes land in the legacy sources, are recorded, keep the truth whole."""

from __future__ import annotations

import csv
import json
import sqlite3

import pytest
from lxml import etree

from hub.estate import generate
from hub.estate.mutations import CHANGES, mutate
from tests.unit.estate.estate_sources import truth_rows


@pytest.fixture
def estate(tmp_path):
    generate(tmp_path, people=1500, seed=9)
    return tmp_path


def test_every_kind_of_change_is_applied_and_recorded(estate):
    done = mutate(estate, 60, seed=1)
    assert len(done) == 60
    assert {m.change for m in done} == {k for k, _ in CHANGES}
    lines = [json.loads(line) for line in (estate / "mutations.jsonl").read_text().splitlines()]
    assert lines == [m.as_dict() for m in done]
    truth = {(r["system"], r["entity"], r["source_id"]): r["person_id"] for r in truth_rows(estate)}
    for m in done:
        assert truth[(m.system, m.entity, m.source_id)] == m.person_id, m


def test_address_move_ends_the_old_address_and_bumps_the_watermarks(estate):
    [m] = mutate(estate, 1, seed=3, kinds=("address_moved",))
    with sqlite3.connect(estate / "social_care" / "social_care.db") as db:
        rows = db.execute("SELECT address_id, postcode, is_current, end_date, last_modified FROM client_addresses "
                          "WHERE client_id = ? ORDER BY address_id", (m.detail["client_id"],)).fetchall()
        modified = db.execute("SELECT last_modified FROM clients WHERE client_id = ?",
                              (m.detail["client_id"],)).fetchone()[0]
    current = [r for r in rows if r[2] == 1]
    assert len(current) == 1 and str(current[0][0]) == m.source_id and current[0][1] == m.detail["postcode"]
    assert all(r[3] for r in rows if r[2] == 0)
    assert modified > "2026-09-01" and modified == m.at.replace("T", " ").rstrip("Z")


def test_name_correction_and_new_rows_in_files_and_rest_store(estate):
    named, = mutate(estate, 1, seed=4, kinds=("name_corrected",))
    with sqlite3.connect(estate / "early_help" / "early_help.db") as db:
        assert db.execute("SELECT full_name FROM family_members WHERE member_id = ?",
                          (int(named.source_id),)).fetchone()[0] == named.detail["new"] != named.detail["old"]
    session, = mutate(estate, 1, seed=5, kinds=("session_added",))
    with (estate / "youth_service" / "sessions.csv").open(encoding="utf-8-sig", newline="") as f:
        last = list(csv.reader(f))[-1]
    assert last[0] == session.source_id and last[1] == session.detail["member_no"]
    moved, = mutate(estate, 1, seed=6, kinds=("pupil_moved",))
    doc = etree.parse(str(estate / "education" / moved.detail["file"]))
    assert etree.XMLSchema(etree.parse(str(estate / "education" / "pupils.xsd"))).validate(doc)
    assert doc.xpath("string(/PupilExport/Pupil/PupilId)") == moved.source_id
    assert doc.xpath("string(//Address/Postcode)") == moved.detail["postcode"]
    updated, = mutate(estate, 1, seed=7, kinds=("young_person_updated",))
    with sqlite3.connect(estate / "youth_justice" / "youth_justice.db") as db:
        version, at = db.execute("SELECT version, updated_at FROM young_people WHERE id = ?",
                                 (updated.source_id,)).fetchone()
    assert version >= 2 and at == updated.at


def test_unknown_kind_is_refused(estate):
    with pytest.raises(ValueError):
        mutate(estate, 1, seed=1, kinds=("burn_it_down",))
