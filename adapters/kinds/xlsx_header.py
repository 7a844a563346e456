"""An XLSX sheet's header row read on its own, for `spreadsheet.columns` (run whenever a system
is loaded): the full readers scan or load the whole sheet and shared-string table to give one
row (a 1,000,000-person estate: 17 s per process). This streams the sheet part only up to the
header row and the shared strings only up to the last one that row uses.

It gives the cells exactly as openpyxl (read-only, formulas as text) reads them, which the
calamine reading matches by design, or None for anything it does not read with certainty
(formulas, rich text, dates, cells without references, a sheet found differently by the
package's content types and relationships, any parsing error): the caller then reads the
header the usual way, so the result can only come faster, never differ.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import IO, Any

from lxml import etree

# the package relationships, column letters and plain number formats as the data reading reads them
from adapters.kinds.xlsx_calamine import MAIN_NS, NUMBER_FORMAT_IDS, column_number, part_rels

_MAIN = f"{{{MAIN_NS}}}"
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_CONTENT_TYPES = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_SPREADSHEETML = "application/vnd.openxmlformats-officedocument.spreadsheetml."
# openpyxl takes the first part of the first of these types present as the workbook
_WORKBOOK_TYPES = ("application/vnd.ms-excel.template.macroEnabled.main+xml",
                   _SPREADSHEETML + "template.main+xml",
                   "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
                   _SPREADSHEETML + "sheet.main+xml")
_SHARED_STRINGS_TYPE = _SPREADSHEETML + "sharedStrings+xml"
_STYLES_PART = "xl/styles.xml"  # where openpyxl reads styles from, whatever the relationships say
_CELL_REF = re.compile(r"([A-Z]{1,3})([1-9]\d*)\Z")
_DIMENSION_REF = re.compile(r"\$?[A-Z]{1,3}\$?[1-9]\d*(?::\$?[A-Z]{1,3}\$?[1-9]\d*)?\Z")


class _Unsure(Exception):
    """Something this reader does not read exactly as openpyxl does: read the usual way."""


def header_row(path: Path, sheet_name: str | None, header_at: int) -> tuple[str, list[Any]] | None:
    """The sheet's title and its row `header_at` as openpyxl reads it (from column A, empty cells
    None); None when the row must be read the usual way."""
    if sheet_name is not None and not isinstance(sheet_name, str):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            title, sheet_part, strings_part = _locate(archive, sheet_name)
            with archive.open(sheet_part) as fh:
                raw = _raw_cells(fh, header_at)
            return title, _values(archive, raw, strings_part)
    except Exception:  # noqa: BLE001 - anything unusual is read, and reported, by the usual reading
        return None


def _xml(archive: zipfile.ZipFile, part: str) -> etree._Element:
    return etree.fromstring(archive.read(part), etree.XMLParser(resolve_entities=False, no_network=True))


def _locate(archive: zipfile.ZipFile, sheet_name: str | None) -> tuple[str, str, str | None]:
    """(title, sheet part, shared-strings part or None) of the sheet the readers read: by name,
    else the first; only when the content types (openpyxl) and relationships (calamine) agree."""
    overrides: dict[str, list[str]] = {}
    for override in _xml(archive, "[Content_Types].xml").iter(f"{_CONTENT_TYPES}Override"):
        overrides.setdefault(override.get("ContentType", ""), []).append(override.get("PartName", "").lstrip("/"))
    book_part = next(p for t, p in part_rels(archive, "").values() if t.endswith("/officeDocument"))
    if next((overrides[t][0] for t in _WORKBOOK_TYPES if t in overrides), None) != book_part:
        raise _Unsure("the content types name another workbook part")
    book = _xml(archive, book_part)
    if book.tag != f"{_MAIN}workbook":
        raise _Unsure("not a SpreadsheetML workbook")
    sheets = [(s.get("name"), s.get(_REL_ID)) for s in book.iter(f"{_MAIN}sheet")]
    rels = part_rels(archive, book_part)
    chosen = next(s for s in sheets if s[0] == sheet_name) if sheet_name is not None else sheets[0]
    kind, sheet_part = rels[chosen[1]]
    if not kind.endswith("/worksheet") or sheet_part not in archive.namelist():
        raise _Unsure("the sheet is no worksheet part")
    strings = [p for t, p in rels.values() if t.endswith("/sharedStrings")]
    strings_part = strings[0] if strings and overrides.get(_SHARED_STRINGS_TYPE, [None])[0] == strings[0] else None
    return chosen[0], sheet_part, strings_part


def _raw_cells(fh: IO[bytes], header_at: int) -> dict[int, etree._Element]:
    """Column -> cell element of row `header_at`, the sheet parsed only that far; checked for what
    openpyxl bounds by the declared dimension."""
    events = etree.iterparse(fh, events=("start", "end"), resolve_entities=False, no_network=True)
    _event, root = next(events)
    if root.tag != f"{_MAIN}worksheet":
        raise _Unsure("not a SpreadsheetML worksheet")
    last_col: int | None = None
    previous = 0
    for event, element in events:
        if event != "end":
            continue
        if element.tag == f"{_MAIN}dimension" and element.getparent() is root:
            last_col, last_row = _dimension(element.get("ref", ""))
            if last_row < header_at:
                raise _Unsure("the header row is past the declared dimension")
        elif element.tag == f"{_MAIN}row":
            number = element.get("r", "")
            if not number.isdigit() or int(number) <= previous or int(number) > header_at:
                raise _Unsure("rows unnumbered, out of order, or no header row")
            previous = int(number)
            if previous == header_at:
                return _row_cells(element, header_at, last_col)
            element.clear()
            while element.getprevious() is not None:
                del element.getparent()[0]
    raise _Unsure("no header row")


def _dimension(ref: str) -> tuple[int, int]:
    """(last column, last row) of a dimension ref, as openpyxl bounds its reading by them."""
    found = _DIMENSION_REF.match(ref)
    if found is None:
        raise _Unsure(f"a dimension {ref!r}")
    last = _CELL_REF.match(ref.replace("$", "").rsplit(":", 1)[-1])
    return column_number(last[1].encode()), int(last[2])


def _row_cells(row: etree._Element, header_at: int, last_col: int | None) -> dict[int, etree._Element]:
    cells: dict[int, etree._Element] = {}
    previous = 0
    for cell in row:
        ref = _CELL_REF.match(cell.get("r", "")) if cell.tag == f"{_MAIN}c" else None
        if ref is None or int(ref[2]) != header_at:
            raise _Unsure("a cell without its reference")
        column = column_number(ref[1].encode())
        if column <= previous or (last_col is not None and column > last_col):
            raise _Unsure("cells out of order or past the declared dimension")
        previous = column
        if any(child.tag not in (f"{_MAIN}v", f"{_MAIN}is") or len(child) and child.tag == f"{_MAIN}v"
               for child in cell) or len(cell) > 1:
            raise _Unsure("a formula, markup in a value, or a cell of unknown parts")
        cells[column] = cell
    return cells


def _values(archive: zipfile.ZipFile, cells: dict[int, etree._Element], strings_part: str | None) -> list[Any]:
    """The row's values as openpyxl (read-only, formulas as text) gives them, from column A."""
    indexes = sorted({int(c.findtext(f"{_MAIN}v")) for c in cells.values()
                      if c.get("t") == "s" and c.findtext(f"{_MAIN}v", "").isdigit()})
    strings = _shared_strings(archive, strings_part, indexes) if indexes else {}
    plain_styles: frozenset[int] | None = None
    row: list[Any] = [None] * max(cells, default=0)
    for column, cell in cells.items():
        kind, style = cell.get("t", "n"), cell.get("s")
        if kind == "n" and cell.findtext(f"{_MAIN}v"):
            plain_styles = _plain_number_styles(archive) if plain_styles is None else plain_styles
            if (int(style) if style else 0) not in plain_styles:
                raise _Unsure("a number that may be a date")
        row[column - 1] = _value(cell, kind, strings)
    return row


def _value(cell: etree._Element, kind: str, strings: dict[int, str]) -> Any:
    if kind == "inlineStr":
        inline = cell.find(f"{_MAIN}is")
        return None if inline is None else _plain_text(inline, shared=False)
    if cell.find(f"{_MAIN}is") is not None:
        raise _Unsure("inline text in a cell of another type")
    text = cell.findtext(f"{_MAIN}v") or None
    if text is None:
        return None
    if kind == "s":
        if not text.isdigit():
            raise _Unsure("a shared string index that is no number")
        return strings[int(text)]
    if kind == "b" and text in ("0", "1"):
        return text == "1"
    if kind == "n":  # openpyxl's _cast_number
        return float(text) if ("." in text or "E" in text or "e" in text) else int(text)
    raise _Unsure(f"a cell of type {kind!r}")


def _plain_text(element: etree._Element, shared: bool) -> str:
    """The text of a string item (<si> or <is>) holding one plain <t>, as openpyxl reads it."""
    if len(element) != 1 or element[0].tag != f"{_MAIN}t" or len(element[0]):
        raise _Unsure("rich text, phonetic runs or markup in a string")
    text = element[0].text or ""
    if "_x" in text or (shared and "x005F_" in text):
        raise _Unsure("an _xHHHH_ escape")
    return text


def _shared_strings(archive: zipfile.ZipFile, part: str | None, wanted: list[int]) -> dict[int, str]:
    """The shared strings at the `wanted` (sorted) indexes, read only as far as the last of them."""
    if part is None:
        raise _Unsure("shared strings the readers find differently, or none")
    found: dict[int, str] = {}
    want = set(wanted)
    with archive.open(part) as fh:
        events = etree.iterparse(fh, events=("end",), tag=f"{_MAIN}si", resolve_entities=False, no_network=True)
        for index, (_event, item) in enumerate(events):
            if item.getparent() is None or item.getparent().tag != f"{_MAIN}sst":
                raise _Unsure("not a SpreadsheetML shared string table")
            if index in want:
                found[index] = _plain_text(item, shared=True)
                if index == wanted[-1]:
                    return found
            item.clear()
            while item.getprevious() is not None:
                del item.getparent()[0]
    raise _Unsure("a shared string index past the table")


def _plain_number_styles(archive: zipfile.ZipFile) -> frozenset[int]:
    """The cell styles (indexes) under which openpyxl reads a number as a number, not a date."""
    styles = _xml(archive, _STYLES_PART)
    custom = {f.get("numFmtId") for f in styles.iter(f"{_MAIN}numFmt")}
    xfs = styles.find(f"{_MAIN}cellXfs")
    formats = [] if xfs is None else [xf.get("numFmtId", "0") for xf in xfs.iter(f"{_MAIN}xf")]
    return frozenset(i for i, f in enumerate(formats)
                     if f not in custom and f.isdigit() and int(f) in NUMBER_FORMAT_IDS)
