"""The quarantine's CSV export never hands a spreadsheet a formula taken from legacy data."""

from __future__ import annotations

import csv
import io

from hub.services.quarantine import export_csv
from hub.store.tables.records import QuarantineRow


def test_formula_like_legacy_values_are_neutralised(sqlite_store):
    with sqlite_store.transaction() as s:
        s.add(QuarantineRow(system="youth_service", entity="members", source_id="=HYPERLINK(\"http://x\")",
                            location="+members.csv:2", raw={"Notes": "=cmd|' /C calc'!A0"},
                            reasons=["-person: names[0].family: has no value (from Last Name)", "@second"],
                            run_id=None, status="open"))
        s.add(QuarantineRow(system="youth_service", entity="members", source_id="YS1", location="members.csv:3",
                            raw={"Phone": "+44 7700 900123"}, reasons=["person: sex: code 'X' is not in code table"],
                            run_id=None, status="resolved"))
    rows = list(csv.DictReader(io.StringIO(export_csv(sqlite_store))))
    assert len(rows) == 1
    row = rows[0]
    assert row["source_id"] == "'=HYPERLINK(\"http://x\")"
    assert row["location"] == "'+members.csv:2"
    assert row["reasons"] == "'-person: names[0].family: has no value (from Last Name)\n@second"
    assert row["raw"] == '{"Notes": "=cmd|\' /C calc\'!A0"}'
    everything = list(csv.DictReader(io.StringIO(export_csv(sqlite_store, status=None, system="youth_service"))))
    assert [r["source_id"] for r in everything] == ["YS1", "'=HYPERLINK(\"http://x\")"]
