"""`spreadsheet.columns` reads an XLSX's header row alone (`xlsx_header.header_row`) and gives
exactly the header the full reading (`_read_xlsx`, calamine or openpyxl) gives: shared and inline
strings, numbers, booleans, gaps, spaces, later header rows, named sheets, wide sheets. What it
does not read with certainty (formulas, rich text, dates, a dimension narrower than the row,
malformed workbooks) it leaves to the full reading, which answers as before."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pytest
from lxml import etree
from openpyxl import Workbook

from adapters.kinds import spreadsheet
from adapters.kinds.xlsx_header import header_row

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
SHEET = "xl/worksheets/sheet1.xml"


def _book(path: Path, rows: list[list], *, title: str = "Kids", before: tuple[str, ...] = (),
          write_only: bool = False) -> Path:
    """A workbook whose sheet `title` holds `rows`; `before` names sheets created ahead of it."""
    book = Workbook(write_only=write_only)
    if not write_only:
        book.remove(book.active)
    for name in before:
        book.create_sheet(name).append(["other", "sheet"])
    sheet = book.create_sheet(title)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def _rewrite(path: Path, edit) -> Path:
    """The workbook with `edit(parts)` applied to its parts (name -> bytes)."""
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    edit(parts)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return path


def _shared(path: Path) -> Path:
    """The workbook with every inline string moved to a shared-string table (as Excel writes)."""
    def edit(parts: dict[str, bytes]) -> None:
        strings: list[str] = []
        for name in [n for n in parts if n.startswith("xl/worksheets/sheet")]:
            root = etree.fromstring(parts[name])
            for cell in root.iter(f"{{{MAIN}}}c"):
                if cell.get("t") == "inlineStr":
                    t = cell.find(f"{{{MAIN}}}is/{{{MAIN}}}t")
                    text = "" if t is None else t.text or ""
                    for child in list(cell):
                        cell.remove(child)
                    etree.SubElement(cell, f"{{{MAIN}}}v").text = str(len(strings))
                    cell.set("t", "s")
                    strings.append(text)
            parts[name] = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)
        sst = etree.Element(f"{{{MAIN}}}sst", nsmap={None: MAIN}, count=str(len(strings)),
                            uniqueCount=str(len(strings)))
        for text in strings:
            t = etree.SubElement(etree.SubElement(sst, f"{{{MAIN}}}si"), f"{{{MAIN}}}t")
            t.text = text
            if text != text.strip():
                t.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
        parts["xl/sharedStrings.xml"] = etree.tostring(sst, xml_declaration=True, encoding="UTF-8")
        parts["xl/_rels/workbook.xml.rels"] = parts["xl/_rels/workbook.xml.rels"].replace(
            b"</Relationships>", b'<Relationship Id="rIdSst" Target="sharedStrings.xml" Type="http://schemas.'
            b'openxmlformats.org/officeDocument/2006/relationships/sharedStrings"/></Relationships>')
        parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
            b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
            b'officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
    return _rewrite(path, edit)


def _replace(path: Path, part: str, old: bytes, new: bytes) -> Path:
    def edit(parts: dict[str, bytes]) -> None:
        assert old in parts[part]
        parts[part] = parts[part].replace(old, new, 1)
    return _rewrite(path, edit)


def _columns(path: Path, **entity) -> list[str] | None:
    return spreadsheet.columns({"path": str(path.parent)}, {"file": path.name, "key": "id", **entity},
                               base_dir=path.parent, env={})


def _full_reading(path: Path, **entity) -> list[str] | None:
    """The header as `columns` gave it before the header fast path: the full reading's."""
    for item in spreadsheet._read_xlsx(path, path.name, {"file": path.name, "key": "id", **entity},
                                       header_only=True):
        return None if isinstance(item, spreadsheet.SourceFailure) else list(item[1])
    return None


def _openpyxl_reading(path: Path, **entity) -> list[str] | None:
    for item in spreadsheet._read_xlsx_openpyxl(path, path.name, {"file": path.name, "key": "id", **entity},
                                                header_only=True):
        return None if isinstance(item, spreadsheet.SourceFailure) else list(item[1])
    return None


BODY = [["R1", "Zoë", 3, 2.5, True, dt.date(2020, 1, 31)], ["R2", "  Siân  ", None, -1, False, None]]
WIDE = [f"Field {i}" for i in range(1, 301)]
CASES = {
    "plain": ([["id", "name", "count", "score", "ok", "dob"], *BODY], {}),
    "later header row": ([["Registrations export"], [], ["id", "name", "count"], *BODY], {"header_row": 3}),
    "numbers and booleans": ([["id", 2024, 1.5, 7.0, True, False, -3, 1e20], *BODY], {}),
    "gap columns": ([["id", None, "name", None, None, "ok"], *BODY], {}),
    "spaces": ([["  id", "name  ", " \u00a0both\t ", "\ufeffbom", "Zoë Ørsted"], *BODY], {}),
    "duplicates and blanks": ([["id", "id", "", " ", "name", "name"], *BODY], {}),
    "wide": ([["id", *WIDE], ["R1", *range(300)]], {}),
    "header only": ([["id", "name"]], {}),
}


@pytest.mark.parametrize("shared", [False, True], ids=["inline strings", "shared strings"])
@pytest.mark.parametrize("write_only", [False, True], ids=["sized", "write-only"])
@pytest.mark.parametrize("case", list(CASES))
def test_the_header_is_the_full_readings(tmp_path, case, write_only, shared):
    rows, entity = CASES[case]
    path = _book(tmp_path / "k.xlsx", rows, write_only=write_only)
    if shared:
        _shared(path)
    assert header_row(path, None, entity.get("header_row", 1)) is not None  # read from the header row alone
    assert _columns(path, **entity) == _full_reading(path, **entity) == _openpyxl_reading(path, **entity)


def test_the_values_read(tmp_path):
    path = _shared(_book(tmp_path / "k.xlsx", [["id", 2024, 1.5, None, True, "  x  "]]))
    assert header_row(path, "Kids", 1) == ("Kids", ["id", 2024, 1.5, None, True, "  x  "])
    assert _columns(path) == ["id", "2024", "1.5", "column_4", "True", "x"]


@pytest.mark.parametrize("shared", [False, True], ids=["inline strings", "shared strings"])
def test_a_named_sheet(tmp_path, shared):
    path = _book(tmp_path / "k.xlsx", [["id", "name"], ["R1", "x"]], title="Registrations",
                 before=("Notes", "Lookups"))
    if shared:
        _shared(path)
    assert header_row(path, "Registrations", 1) == ("Registrations", ["id", "name"])
    assert _columns(path, sheet="Registrations") == _full_reading(path, sheet="Registrations") == ["id", "name"]
    assert _columns(path) == _full_reading(path) == ["other", "sheet"]  # no sheet named: the first
    assert header_row(path, "Nope", 1) is None
    assert _columns(path, sheet="Nope") is None and _full_reading(path, sheet="Nope") is None


def test_only_the_strings_the_header_uses_are_read(tmp_path):
    # a header of strings 0-2, then a body of many more, and a broken table far behind them
    path = _shared(_book(tmp_path / "k.xlsx", [["id", "name", "town"], *([f"R{i}", f"n{i}", "t"] for i in range(500))]))
    _replace(path, "xl/sharedStrings.xml", b"<si><t>R499</t></si>", b"<si><t>R499</t></si>" + FAR + b"<broken")
    assert header_row(path, None, 1) == ("Kids", ["id", "name", "town"])


FAR = b"<!--" + b" " * (4 << 20) + b"-->"  # past what the parser reads ahead


UNSURE = {  # part, old, new: each read by the full reading, with the same result as before
    "formula": (SHEET, b'<c r="B1" t="inlineStr"><is><t>name</t></is></c>', b'<c r="B1"><f>"na"&amp;"me"</f></c>'),
    "rich text": (SHEET, b"<is><t>name</t></is>", b"<is><r><t>na</t></r><r><rPr><b/></rPr><t>me</t></r></is>"),
    "date": (SHEET, b'<c r="B1" t="inlineStr"><is><t>name</t></is></c>', b'<c r="B1" s="1"><v>43000</v></c>'),
    "cells without references": (SHEET, b' r="B1"', b""),
    "a dimension narrower than the row": (SHEET, b'<dimension ref="A1:C2"/>', b'<dimension ref="A1:B2"/>'),
    "an escape": (SHEET, b"<t>name</t>", b"<t>na_x0020_me</t>"),
    "an error cell": (SHEET, b'<c r="B1" t="inlineStr"><is><t>name</t></is></c>', b'<c r="B1" t="e"><v>#N/A</v></c>'),
}


@pytest.mark.parametrize("case", list(UNSURE))
def test_what_it_is_unsure_of_is_read_the_usual_way(tmp_path, case):
    path = _book(tmp_path / "k.xlsx", [["id", "name", "ok"], ["R1", "x", True]])
    part, old, new = UNSURE[case]
    if case == "date":
        _replace(path, "xl/styles.xml", b'<cellXfs count="1">', b'<cellXfs count="2">')
        _replace(path, "xl/styles.xml", b"</cellXfs>", b'<xf numFmtId="14" fontId="0" fillId="0" borderId="0" '
                                                       b'applyNumberFormat="1"/></cellXfs>')
    _replace(path, part, old, new)
    assert header_row(path, None, 1) is None
    assert _columns(path) == _full_reading(path)


def _not_a_zip(path: Path) -> None:
    path.write_bytes(b"PK\x03\x04 truncated")


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _no_sheet_part(path: Path) -> None:
    _rewrite(path, lambda parts: parts.pop(SHEET))


def _broken_sheet_xml(path: Path) -> None:
    _replace(path, SHEET, b"<sheetData>", b"<sheetData><row r='1'><c r='A1'></row>")


def _string_past_the_table(path: Path) -> None:
    _shared(path)
    _replace(path, SHEET, b"<v>1</v>", b"<v>99</v>")


@pytest.mark.parametrize("damage", [_not_a_zip, _truncated, _no_sheet_part, _broken_sheet_xml,
                                    _string_past_the_table])
def test_a_malformed_workbook_answers_as_before(tmp_path, damage):
    path = _book(tmp_path / "k.xlsx", [["id", "name"], ["R1", "x"]])
    damage(path)
    assert header_row(path, None, 1) is None
    assert _columns(path) is None and _full_reading(path) is None  # no header to check the mapping against
    reasons = [item.reasons for item in spreadsheet._read_xlsx(path, "k.xlsx", {"file": "k.xlsx", "key": "id"},
                                                               header_only=True)
               if isinstance(item, spreadsheet.SourceFailure)]
    assert reasons and reasons[0][0].startswith(("cannot open k.xlsx", "cannot read k.xlsx"))


def test_an_invalid_header_row_is_left_to_the_full_reading(tmp_path):
    path = _book(tmp_path / "k.xlsx", [["id", "name"]])
    assert _columns(path, header_row=0) == _full_reading(path, header_row=0)
    assert _columns(path, header_row=5) == _full_reading(path, header_row=5)


def test_a_workbook_part_the_readers_would_find_differently(tmp_path):
    # content types naming another workbook part than the package relationships: the usual reading
    path = _book(tmp_path / "k.xlsx", [["id", "name"]])
    _replace(path, "[Content_Types].xml", b'PartName="/xl/workbook.xml"', b'PartName="/xl/other.xml"')
    assert header_row(path, None, 1) is None
    assert _columns(path) == _full_reading(path)


def test_the_sheet_is_read_no_further_than_the_header(tmp_path):
    path = _book(tmp_path / "k.xlsx", [["id", "name"], ["R1", "x"]])
    _replace(path, SHEET, b"</sheetData>", FAR + b"<row r='9'><c r='A9'><broken></sheetData>")
    assert header_row(path, None, 1) == ("Kids", ["id", "name"])


@pytest.mark.parametrize("write_only", [False, True], ids=["sized", "write-only"])
@pytest.mark.parametrize("at", [1, 2, 3, 4, 5, 9])
def test_every_header_row_position(tmp_path, at, write_only):
    # a title row, an empty row, the header, a row wider than it, then nothing
    path = _book(tmp_path / "k.xlsx", [["title"], [], ["id", "x"], ["a", None, None, "far"]], write_only=write_only)
    for shared in (False, True):
        if shared:
            _shared(path)
        assert _columns(path, header_row=at) == _full_reading(path, header_row=at)
    assert (header_row(path, None, at) is not None) == (at in (1, 3, 4) or (at == 2 and write_only))
