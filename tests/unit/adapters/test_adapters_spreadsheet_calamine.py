"""XLSX read with calamine gives exactly the values the openpyxl reading gave (dates, whole
numbers, decimals, empty cells, accents, row numbers, short rows), and a sheet holding what
calamine reads differently (a formula, a sub-second time) is read with openpyxl."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from openpyxl import Workbook

from adapters.kinds import spreadsheet
from adapters.kinds.xlsx_calamine import calamine_rows
from tests.contract.adapter_factories import MemoryState, run

HEADER = ["id", "dob", "seen", "at", "count", "score", "name", "ok", "note"]
ROWS = [
    ["R1", dt.date(2020, 1, 31), dt.datetime(2021, 5, 6, 13, 45, 30), dt.time(9, 30), 3, 2.5, "Zoë Ørsted", True,
     None],
    ["R2", dt.datetime(1975, 12, 1), dt.datetime(2021, 5, 6, 0, 0), dt.time(0, 0, 1), 7.0, -0.125, "Siân Nuñez",
     False, "  padded  "],
    [None, None, None, None, None, None, None, None, None],
    ["R3", "04.03.2021", None, None, 12345678901234, 0.1, "Renée", None, None],
]
# what the openpyxl reading gave for ROWS (committed before calamine was used)
EXPECTED = {
    "R1": {"id": "R1", "dob": "2020-01-31", "seen": "2021-05-06T13:45:30", "at": "09:30:00", "count": 3,
           "score": 2.5, "name": "Zoë Ørsted", "ok": True, "note": None},
    "R2": {"id": "R2", "dob": "1975-12-01", "seen": "2021-05-06", "at": "00:00:01", "count": 7,
           "score": -0.125, "name": "Siân Nuñez", "ok": False, "note": "  padded  "},
    "R3": {"id": "R3", "dob": "04.03.2021", "seen": None, "at": None, "count": 12345678901234, "score": 0.1,
           "name": "Renée", "ok": None, "note": None},
}


def _book(path: Path, rows: list[list], *, write_only: bool = False, at: tuple[int, int] = (1, 1)) -> Path:
    book = Workbook(write_only=write_only)
    sheet = book.create_sheet("Kids") if write_only else book.active
    if write_only:
        for row in rows:
            sheet.append(row)
    else:
        sheet.title = "Kids"
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                if value is not None:
                    sheet.cell(row=at[0] + i, column=at[1] + j, value=value)
    book.save(path)
    return path


def _read(tmp_path: Path, **entity):
    adapter = spreadsheet.build("cc", {"path": str(tmp_path)},
                                {"kids": {"file": "k.xlsx", "key": "id", "sheet": "Kids", **entity}},
                                base_dir=tmp_path, env={})
    return run(adapter, MemoryState())


def _by_calamine(path: Path, header_row: int = 1) -> bool:
    return calamine_rows(path, "Kids", header_row) is not None


def test_values_as_openpyxl_read_them(tmp_path):
    path = _book(tmp_path / "k.xlsx", [HEADER, *ROWS])
    assert _by_calamine(path)
    result = _read(tmp_path)
    assert result.upserted == EXPECTED
    assert [type(result.upserted[k]["count"]) for k in ("R1", "R2", "R3")] == [int, int, int]
    assert [c.location for c in result.changes] == ["k.xlsx!Kids:2", "k.xlsx!Kids:3", "k.xlsx!Kids:5"]
    assert result.failures == []


def test_a_sheet_starting_at_c3(tmp_path):
    path = _book(tmp_path / "k.xlsx", [HEADER, *ROWS], at=(3, 3))
    assert _by_calamine(path, header_row=3)
    result = _read(tmp_path, header_row=3)
    assert set(result.upserted) == {"R1", "R2", "R3"}
    assert result.upserted["R1"] == {"column_1": None, "column_2": None, **EXPECTED["R1"]}
    assert [c.location for c in result.changes] == ["k.xlsx!Kids:4", "k.xlsx!Kids:5", "k.xlsx!Kids:7"]


def test_short_rows_of_an_unsized_sheet_are_reported(tmp_path):
    # openpyxl's write-only mode declares no dimension: a row ends at its last written cell
    path = _book(tmp_path / "k.xlsx", [["id", "a", "b"], ["1", "x", "y"], ["2", "x"], ["3", None, "y"]],
                 write_only=True)
    assert _by_calamine(path)
    result = _read(tmp_path)
    assert result.upserted == {"1": {"id": "1", "a": "x", "b": "y"}, "3": {"id": "3", "a": None, "b": "y"}}
    assert [f.reasons for f in result.failures] == [
        ("k.xlsx!Kids:3: row has 2 cells, the header has 3 (missing: b)",)]


def test_a_formula_is_read_as_its_text_by_openpyxl(tmp_path):
    path = _book(tmp_path / "k.xlsx", [HEADER, *ROWS, ["R4", None, None, None, "=SUM(E2:E3)", "=F2*2"]])
    assert not _by_calamine(path)
    result = _read(tmp_path)
    assert result.upserted["R4"]["count"] == "=SUM(E2:E3)" and result.upserted["R4"]["score"] == "=F2*2"
    assert {k: result.upserted[k] for k in EXPECTED} == EXPECTED


def test_a_sub_second_time_is_read_by_openpyxl(tmp_path):
    # calamine rounds to the millisecond from the whole serial, openpyxl from its fraction: they can differ
    path = _book(tmp_path / "k.xlsx", [HEADER, ["R5", None, dt.datetime(2021, 5, 6, 13, 45, 30, 250000)]])
    assert not _by_calamine(path)
    assert _read(tmp_path).upserted["R5"]["seen"] == "2021-05-06T13:45:30.250000"


def test_a_corrupt_workbook_is_reported_as_before(tmp_path):
    (tmp_path / "k.xlsx").write_bytes(b"PK\x03\x04 truncated")
    result = _read(tmp_path)
    assert result.upserted == {}
    assert result.failures[0].reasons == (
        "cannot open k.xlsx as an XLSX workbook: BadZipFile: File is not a zip file",)
