"""The spreadsheet kind: encodings, BOMs, delimiters, ragged rows, formulas kept as text,
XLSX streaming, empty and unreadable files, and bounded batches on a large file."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from pathlib import Path

import pytest

from adapters.kinds import spreadsheet
from adapters.kinds.common import SourceConfigError
from adapters.port import WriteBack
from tests.contract.adapter_factories import MemoryState, run


def adapter(tmp_path: Path, file: str, **entity):
    return spreadsheet.build("ys", {"path": str(tmp_path)}, {"members": {"file": file, "key": "id", **entity}},
                             base_dir=tmp_path, env={})


def test_cp1252_semicolon_crlf_is_detected(tmp_path):
    (tmp_path / "m.csv").write_bytes("id;name;phone\r\nA1;Zoë Siân;+44 7700 900123\r\nA2;Renée;=1+2\r\n"
                                     .encode("cp1252"))
    result = run(adapter(tmp_path, "m.csv"), MemoryState())
    assert result.upserted == {"A1": {"id": "A1", "name": "Zoë Siân", "phone": "+44 7700 900123"},
                               "A2": {"id": "A2", "name": "Renée", "phone": "=1+2"}}
    assert result.changes[0].location == "m.csv:2"


def test_utf8_bom_and_comma_with_quoted_newline(tmp_path):
    (tmp_path / "s.csv").write_bytes(codecs.BOM_UTF8 + 'id,note\n1,"two\nlines"\n2,Zoë\n'.encode())
    result = run(adapter(tmp_path, "s.csv"), MemoryState())
    assert result.upserted["1"] == {"id": "1", "note": "two\nlines"}
    assert result.upserted["2"]["note"] == "Zoë"
    assert result.changes[1].location == "s.csv:4"


def test_configured_encoding_and_delimiter_win(tmp_path):
    (tmp_path / "t.csv").write_bytes("id|name\n1|Zoë\n".encode("latin-1"))
    result = run(spreadsheet.build("x", {"path": str(tmp_path), "encoding": "latin-1", "delimiter": "|"},
                                   {"m": {"file": "t.csv", "key": "id"}}, base_dir=tmp_path, env={}), MemoryState())
    assert result.upserted == {"1": {"id": "1", "name": "Zoë"}}


def test_wrong_configured_encoding_is_reported_and_rows_before_it_kept(tmp_path):
    (tmp_path / "w.csv").write_bytes(b"id,name\n1,Amy\n2,Zo\xeb\n")
    result = run(adapter(tmp_path, "w.csv", encoding="utf-8"), MemoryState())
    assert list(result.upserted) == ["1"]
    assert len(result.failures) == 1 and "cannot decode w.csv as utf-8" in result.failures[0].reasons[0]


def test_ragged_rows_are_reported_and_keep_their_record_alive(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("id,a,b,c\n1,x,y,z\n2,x\n3,x,y,z,\n4,x,y,z,extra\n")
    state = MemoryState()
    result = run(adapter(tmp_path, "r.csv"), state)
    assert set(result.upserted) == {"1", "3"}  # an extra EMPTY trailing cell loses nothing
    reasons = [f.reasons[0] for f in result.failures]
    assert reasons == ["r.csv:3: row has 2 cells, the header has 4 (missing: b, c)",
                       "r.csv:5: row has 5 cells, the header has 4 (extra: 'extra')"]
    assert "'id': '2'" in result.failures[0].raw_excerpt
    path.write_text("id,a,b,c\n1,x,y,z\n2,x,y,z\n3,x,y,z,\n4,x,y,z,extra\n")
    fixed = run(adapter(tmp_path, "r.csv"), state)
    assert list(fixed.upserted) == ["2"] and not fixed.deleted
    padded = run(adapter(tmp_path, "r.csv", ragged="pad"), MemoryState())
    assert len(padded.failures) == 1


def test_missing_key_value_and_duplicate_key_are_reported(tmp_path):
    (tmp_path / "k.csv").write_text("id,name\n1,Amy\n,Nobody\n1,Again\n")
    result = run(adapter(tmp_path, "k.csv"), MemoryState())
    assert list(result.upserted) == ["1"] and result.upserted["1"]["name"] == "Amy"
    reasons = " | ".join(r for f in result.failures for r in f.reasons)
    assert "no value in key column(s) id" in reasons and "appears more than once" in reasons


def test_key_column_absent_from_header(tmp_path):
    (tmp_path / "h.csv").write_text("ident,name\n1,Amy\n")
    result = run(adapter(tmp_path, "h.csv"), MemoryState())
    assert not result.changes and "key column(s) id not in the header" in result.failures[0].reasons[0]


@pytest.mark.parametrize("content", [b"", b"\n\n"])
def test_empty_file_is_reported_and_deletes_nothing(tmp_path, content):
    (tmp_path / "e.csv").write_text("id,name\n1,Amy\n")
    state = MemoryState()
    run(adapter(tmp_path, "e.csv"), state)
    (tmp_path / "e.csv").write_bytes(content)
    result = run(adapter(tmp_path, "e.csv"), state)
    assert not result.changes
    assert "is empty: no header row" in result.failures[0].reasons[0]


def test_missing_file_is_reported_and_deletes_nothing(tmp_path):
    (tmp_path / "e.csv").write_text("id,name\n1,Amy\n")
    state = MemoryState()
    run(adapter(tmp_path, "e.csv"), state)
    (tmp_path / "e.csv").unlink()
    result = run(adapter(tmp_path, "e.csv"), state)
    assert not result.changes and "no file matches 'e.csv'" in result.failures[0].reasons[0]


def test_glob_reads_every_matching_file(tmp_path):
    (tmp_path / "a_1.csv").write_text("id,name\n1,Amy\n")
    (tmp_path / "a_2.csv").write_text("id,name\n2,Ben\n")
    result = run(adapter(tmp_path, "a_*.csv"), MemoryState())
    assert set(result.upserted) == {"1", "2"} and result.changes[1].location == "a_2.csv:2"


def _xlsx(path: Path, rows: list[list], sheet: str = "Registrations") -> None:
    from openpyxl import Workbook

    book = Workbook()
    ws = book.active
    ws.title = sheet
    for row in rows:
        ws.append(row)
    book.save(path)


def test_xlsx_dates_numbers_and_formulas_as_text(tmp_path):
    _xlsx(tmp_path / "r.xlsx", [["id", "dob", "nhs", "note", "phone"],
                                ["CC1", dt.datetime(2021, 3, 4), 9434765919, "=SUM(A1:A3)", "+44 7700 900123"],
                                ["CC2", "04.03.2021", None, "@mention", "-"]])
    result = run(adapter(tmp_path, "r.xlsx", sheet="Registrations"), MemoryState())
    assert result.upserted["CC1"] == {"id": "CC1", "dob": "2021-03-04", "nhs": 9434765919, "note": "=SUM(A1:A3)",
                                      "phone": "+44 7700 900123"}
    assert result.upserted["CC2"]["note"] == "@mention"
    assert result.changes[0].location == "r.xlsx!Registrations:2"


def test_xlsx_unknown_sheet_and_corrupt_workbook(tmp_path):
    _xlsx(tmp_path / "r.xlsx", [["id"], ["1"]])
    result = run(adapter(tmp_path, "r.xlsx", sheet="Nope"), MemoryState())
    assert "has no sheet 'Nope'" in result.failures[0].reasons[0]
    (tmp_path / "bad.xlsx").write_bytes(b"PK\x03\x04 truncated")
    result = run(adapter(tmp_path, "bad.xlsx"), MemoryState())
    assert "cannot open bad.xlsx as an XLSX workbook" in result.failures[0].reasons[0]


def test_columns_reports_the_header_for_load_time_validation(tmp_path):
    (tmp_path / "m.csv").write_bytes("Member No;First Name\r\n".encode("cp1252"))
    _xlsx(tmp_path / "r.xlsx", [["Reg ID", "DOB"]])
    assert spreadsheet.columns({"path": str(tmp_path)}, {"file": "m.csv", "key": "Member No"}, base_dir=tmp_path,
                               env={}) == ["Member No", "First Name"]
    assert spreadsheet.columns({"path": str(tmp_path)}, {"file": "r.xlsx", "key": "Reg ID"}, base_dir=tmp_path,
                               env={}) == ["Reg ID", "DOB"]
    assert spreadsheet.columns({"path": str(tmp_path)}, {"file": "none.csv", "key": "x"}, base_dir=tmp_path,
                               env={}) is None


def test_config_errors(tmp_path):
    with pytest.raises(SourceConfigError, match="needs `path`"):
        spreadsheet.build("x", {}, {"m": {"file": "a.csv", "key": "id"}}, base_dir=tmp_path, env={})
    with pytest.raises(SourceConfigError, match="needs `key`"):
        spreadsheet.build("x", {"path": "."}, {"m": {"file": "a.csv"}}, base_dir=tmp_path, env={})
    with pytest.raises(SourceConfigError, match="batch_size"):
        spreadsheet.build("x", {"path": ".", "batch_size": 0}, {"m": {"file": "a.csv", "key": "id"}},
                          base_dir=tmp_path, env={})


def test_write_back_is_refused_with_a_reason(tmp_path):
    result = adapter(tmp_path, "m.csv").apply(WriteBack("members", "update", "1", {"sex": "male"}))
    assert not result.accepted and "read-only" in result.detail


def test_safe_cell_neutralises_formulas_when_exported():
    assert [spreadsheet.safe_cell(v) for v in ("=HYPERLINK(1)", "+44", "-1", "@x", "plain", 5)] == [
        "'=HYPERLINK(1)", "'+44", "'-1", "'@x", "plain", 5]
    out = io.StringIO()
    csv.writer(out).writerow([spreadsheet.safe_cell("=cmd|' /C calc'!A0")])
    assert out.getvalue().startswith("'=cmd")


@pytest.mark.slow
def test_large_file_streams_in_bounded_batches(tmp_path):
    rows = 60_000
    with (tmp_path / "big.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "forename", "surname", "dob"])
        writer.writerows([f"B{i}", "Amy", "Smith", "2012-01-02"] for i in range(rows))
    state = MemoryState()
    biggest, total = 0, 0
    for batch in adapter(tmp_path, "big.csv", batch_size=1000).extract(state):
        biggest = max(biggest, len(batch.changes))
        total += len(batch.changes)
        state.commit(batch)
    assert total == rows and biggest == 1000
    again = run(adapter(tmp_path, "big.csv", batch_size=1000), state)
    assert again.unchanged == rows and not again.changes


@pytest.mark.slow
def test_a_100_mb_csv_is_read_in_bounded_memory(tmp_path):
    import psutil

    line = "{i},Jonathan,Smith-Okafor,03/07/2011,Male,12 Mill Lane Matlock Derbyshire,DE4 3AB,+44 7700 900123\n"
    path = tmp_path / "huge.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("id,forename,surname,dob,gender,address,postcode,phone\n")
        i = 0
        while fh.tell() < 100 * 1024 * 1024:
            fh.write("".join(line.format(i=n) for n in range(i, i + 10_000)))
            i += 10_000
    process = psutil.Process()
    start = process.memory_info().rss
    growth = rows = batches = 0
    for batch in adapter(tmp_path, "huge.csv", batch_size=2000).extract(MemoryState()):
        rows += len(batch.changes)
        batches += 1
        assert not batch.failures
        if batches % 50 == 0:
            growth = max(growth, process.memory_info().rss - start)
    assert rows == i and batches == -(-i // 2000)
    assert growth < 100 * 1024 * 1024, f"grew {growth / 2**20:.0f} MiB reading {path.stat().st_size / 2**20:.0f} MiB"
