"""XLSX rows read with python-calamine, for the `spreadsheet` kind, when that gives exactly what
openpyxl (read-only, formulas as text) gives: several times faster (a 49,941-row sheet: 13.9 s →
2.0 s CPU). Before reading, the sheet and shared-string parts are scanned for anything calamine
reads differently; `calamine_rows` returns None for such a workbook and the caller reads it with
openpyxl.
"""

from __future__ import annotations

import itertools
import posixpath
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

# What calamine reads differently from openpyxl (read-only, formulas as text): a sheet or shared
# string table holding any of these is read with openpyxl. Formulas (calamine gives the cached
# value), error cells (calamine: empty), ISO-date cells, empty or blank strings (calamine: an
# empty cell), text starting or ending with a space not marked xml:space="preserve" (calamine
# trims it), values that are empty or hold spaces, letters or "_" (Python's int() and float()
# read some that calamine does not), integers of 16 digits or more (calamine: a float), _xHHHH_
# escapes (and "x005F_", which openpyxl drops from shared strings), phonetic runs and carriage
# returns (an XML parser reads CR LF as LF, calamine does not).
_XML_DIFFERS = re.compile(
    rb"<(?:\w+:)?f[\s>/]"
    rb"|\st\s*=\s*[\"'][ed][\"']"
    rb"|<(?:\w+:)?(?:t|is)(?:\s[^>]*)?(?:/>|>\s*</)"
    rb"|<(?:\w+:)?t(?:\s(?![^>]*preserve)[^>]*)?>(?:\s|[^<]*\s</)"
    rb"|<(?:\w+:)?v(?:\s[^>]*)?(?:/>|>(?:</|[^<]*[\s_a-df-zA-DF-Z]|[-+]?\d{16}))"
    rb"|_x[0-9A-Fa-f]{4}_|x005F_|<(?:\w+:)?rPh[\s>]|\r")
# A row ending in a cell with no value: openpyxl ends an unsized sheet's row at its last cell.
_VALUELESS_LAST_CELL = re.compile(rb"<(?:\w+:)?c(?:\s[^>]*)?(?:/>|>\s*</(?:\w+:)?c>)\s*</(?:\w+:)?row>")
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension[\s/>]")
_DIMENSION_REF = re.compile(rb"[^>]*?\sref=\"\$?([A-Z]{1,3})\$?(\d+)(?::\$?([A-Z]{1,3})\$?(\d+))?\"[\s/>]")
_SHEET_DATA = re.compile(rb"<(?:\w+:)?sheetData[\s>/]")
_SCAN_CHUNK, _SCAN_OVERLAP = 1 << 20, 4096
# The same, by substring (a regular expression over a large sheet costs more than calamine's
# reading), for parts written the usual way: no element prefixes, no whitespace between tags.
_FAST_DIFFERS = (b'="e"', b'="d"', b"\r", b"x005F_")
_FAST_TAG_DIFFERS = re.compile(rb"<(?:f[ >/]|t/>|t></t>|is/>|is></is>|t>\s|v></v>|v/>|rPh|t "
                               rb"|v>(?:[^<]*[\s_a-df-zA-DF-Z]|[-+]?\d{16}))")  # "<t ": checked below
_FAST_ESCAPE = re.compile(rb"_x[0-9A-Fa-f]{4}_")
_FAST_VALUELESS_LAST = (b'"></c></row>', b"'></c></row>", b'"/></row>', b"'/></row>", b'" /></row>',
                        b"' /></row>")
_PLAIN_XML = re.compile(rb"\s*(?:<\?xml[^>]*\?>)?\s*<(?:worksheet|sst)[\s>]")
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
# Number formats both libraries read alike: never a date, or a plain date and/or time.
_PLAIN_NUMBER_FORMAT = re.compile(r"(General|@|[0#?,.%E+\- ]*)\Z")
_PLAIN_DATE_FORMAT = re.compile(r"(\[\$-[0-9A-Fa-f]{1,8}\])?[dmyhs]+(?:[-/.: ,]+[dmyhs]+)*(?:\.0{1,3})?"
                                r"(?: AM/PM)?(?:;@)?\Z", re.IGNORECASE)
_DATE_FORMAT_IDS = frozenset((*range(14, 23), 45, 47))  # builtin dates (46, elapsed time, is not)
# built-in number formats that openpyxl reads as numbers, not as a date, time or duration
NUMBER_FORMAT_IDS = frozenset((*range(14), *range(37, 45), 48, 49))


def _fast_differs(text: bytes) -> bool:
    """`_XML_DIFFERS` for a part written the usual way, by substring."""
    if any(s in text for s in _FAST_DIFFERS) or _FAST_ESCAPE.search(text):
        return True
    for found in _FAST_TAG_DIFFERS.finditer(text):
        if found[0] != b"<t ":
            return True
        at = found.start()  # text with attributes: only xml:space="preserve", and not blank
        close = text.find(b">", at)
        end = text.find(b"<", close)
        if close < 0 or end < 0:
            return at < len(text) - _SCAN_OVERLAP  # else read whole with the next chunk
        if b"preserve" not in text[at:close] or not text[close + 1:end].strip():
            return True
    for ending in (b" </t>", b"\t</t>", b"\n</t>"):  # trailing space in text not marked preserve
        at = text.find(ending)
        while at >= 0:
            if text[text.rfind(b"<t", 0, at):].startswith(b"<t>"):
                return True
            at = text.find(ending, at + 1)
    return False


def column_number(letters: bytes) -> int:
    number = 0
    for ch in letters:
        number = number * 26 + ch - 64
    return number


def _plain_date(serial: bytes) -> bool:
    """Whether calamine reads this serial under a date format as openpyxl does: within the years
    1900 (1904) to 9999, on a whole second (the two round milliseconds differently)."""
    try:
        seconds = float(serial) * 86400
    except ValueError:
        return False
    return 0 <= seconds < 2_900_000 * 86400 and abs(seconds - round(seconds)) < 0.00025


def _scan(archive: zipfile.ZipFile, part: str, sheet: bool, date_styles: frozenset[int] = frozenset()
          ) -> tuple[int, int] | None | bool:
    """False when the part holds what calamine reads differently; for a sheet, else its declared
    (max row, max column), or None when it declares none; True for a clean shared string table."""
    dimension: tuple[int, int] | None = None
    before_data, valueless = sheet, False
    # values of date-styled cells other than a whole day up to 999999 (the year 4637)
    dates = re.compile(rb"\ss=[\"'](?:" + b"|".join(b"%d" % i for i in sorted(date_styles))
                       + rb")[\"'][^>]*>\s*<(?:\w+:)?v>(?!\d{1,6}<)([^<]*)<") if date_styles else None
    tail, plain = b"", None
    with archive.open(part) as fh:
        while chunk := fh.read(_SCAN_CHUNK):
            text = tail + chunk
            if plain is None:  # as its writer writes the first chunk, it writes the rest
                plain = _PLAIN_XML.match(text) is not None and not any(
                    s in text for s in (b">\n", b">\t", b"> <", b"='"))
                if plain and dates is not None:
                    dates = re.compile(rb's="(?:' + b"|".join(b"%d" % i for i in sorted(date_styles))
                                       + rb')"[^>]*><v>(?!\d{1,6}<)([^<]*)<')
            if _fast_differs(text) if plain else _XML_DIFFERS.search(text):
                return False
            if dates is not None and not all(_plain_date(m[1]) for m in dates.finditer(text)):
                return False
            if before_data:
                data = _SHEET_DATA.search(text)
                found = _DIMENSION.search(text, 0, data.start() if data else len(text))
                if found:
                    ref = _DIMENSION_REF.match(text, found.end() - 1)
                    if ref is None:
                        return False  # a dimension this does not read as openpyxl does
                    last_col, last_row = (ref[3], ref[4]) if ref[3] else (ref[1], ref[2])
                    dimension = (int(last_row), column_number(last_col))
                before_data = data is None and dimension is None
            valueless = valueless or (sheet and (any(s in text for s in _FAST_VALUELESS_LAST) if plain
                                                 else _VALUELESS_LAST_CELL.search(text) is not None))
            tail = text[-_SCAN_OVERLAP:]
    if not sheet:
        return True
    if dimension is None and valueless:
        return False
    return dimension


def _part(base: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), target))


def part_rels(archive: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """Relationship id -> (type, part) of a package part."""
    rels_part = posixpath.join(posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels")
    root = ElementTree.fromstring(archive.read(rels_part))
    return {rel.get("Id"): (rel.get("Type", ""), _part(part, rel.get("Target", "")))
            for rel in root.iter(f"{{{_PKG_REL_NS}}}Relationship") if rel.get("TargetMode") != "External"}


def _date_styles(archive: zipfile.ZipFile, part: str | None) -> frozenset[int] | None:
    """The cell styles (indexes) with a date format, when every style's number format is one both
    libraries tell dates from numbers by alike; else None."""
    if part is None:
        return frozenset()
    root = ElementTree.fromstring(archive.read(part))
    custom = {f.get("numFmtId"): f.get("formatCode", "")
              for f in root.iter(f"{{{MAIN_NS}}}numFmt")}
    xfs = root.find(f"{{{MAIN_NS}}}cellXfs")
    dates = set()
    for index, xf in enumerate([] if xfs is None else xfs.iter(f"{{{MAIN_NS}}}xf")):
        number_format = xf.get("numFmtId", "0")
        code = custom.get(number_format)
        if code is None:
            if not number_format.isdigit() or int(number_format) not in _DATE_FORMAT_IDS | NUMBER_FORMAT_IDS:
                return None
            if int(number_format) in _DATE_FORMAT_IDS:
                dates.add(index)
        elif _PLAIN_DATE_FORMAT.match(code):
            dates.add(index)
        elif not _PLAIN_NUMBER_FORMAT.match(code):
            return None
    return frozenset(dates)


def calamine_rows(path: Path, sheet_name: str | None, header_at: int
                   ) -> tuple[str, Iterator[tuple[int, list[Any]]]] | None:
    """The sheet's title and (row number, values) as openpyxl (read-only, formulas as text) reads
    them, read by calamine; None when calamine cannot give exactly those: an unreadable workbook,
    an unknown sheet, formulas or other cells calamine reads differently (`_XML_DIFFERS`),
    number formats outside the plain ones, cells outside the sheet's declared dimension (which
    openpyxl leaves out), no valued cell from the header row on, or a header row that is not all
    text (openpyxl's int 1 and float 1.0 are both calamine's 1.0). The openpyxl reading then gives
    the rows, or the failure, exactly as before."""
    try:
        from python_calamine import CalamineWorkbook, SheetTypeEnum

        with zipfile.ZipFile(path) as archive:
            package = part_rels(archive, "")
            book_part = next(p for t, p in package.values() if t.endswith("/officeDocument"))
            book = ElementTree.fromstring(archive.read(book_part))
            if book.tag != f"{{{MAIN_NS}}}workbook":
                return None
            sheets = [(s.get("name"), s.get(f"{{{_REL_NS}}}id")) for s in book.iter(f"{{{MAIN_NS}}}sheet")]
            rels = part_rels(archive, book_part)
            chosen = (next((s for s in sheets if s[0] == sheet_name), None) if sheet_name is not None
                      else sheets[0] if sheets else None)
            if chosen is None or not rels.get(chosen[1], ("",))[0].endswith("/worksheet"):
                return None
            title, sheet_part = chosen[0], rels[chosen[1]][1]
            parts = {t.rsplit("/", 1)[-1]: p for t, p in rels.values()}
            date_styles = _date_styles(archive, parts.get("styles"))
            if date_styles is None:
                return None
            if "sharedStrings" in parts and _scan(archive, parts["sharedStrings"], sheet=False) is False:
                return None
            dimension = _scan(archive, sheet_part, sheet=True, date_styles=date_styles)
            if dimension is False:
                return None
        workbook = CalamineWorkbook.from_path(path)
        try:
            kinds = {m.name: m.typ for m in workbook.sheets_metadata}
            if kinds.get(title) != SheetTypeEnum.WorkSheet:
                return None
            sheet = workbook.get_sheet_by_name(title)
        finally:
            workbook.close()
        start, end = sheet.start, sheet.end
        if start is None or end[0] + 1 < header_at:
            return None  # no header: openpyxl says so in its words
        if dimension is not None and (end[0] >= dimension[0] or end[1] >= dimension[1]):
            return None
        rows = sheet.iter_rows()  # python-calamine 0.9: from the first row, and from the first valued column
        head = list(itertools.islice(rows, header_at))
        if not all(isinstance(v, str) for v in head[-1]):
            return None
    except Exception:  # noqa: BLE001 - let openpyxl read it and report what is wrong in its words
        return None
    return title, _padded(itertools.chain(head, rows), start[1], dimension)


def _padded(rows: Iterator[list[Any]], first_col: int, dimension: tuple[int, int] | None
            ) -> Iterator[tuple[int, list[Any]]]:
    """calamine's rows (from the first valued column) as openpyxl reads them: from column A, empty
    cells None, each row as wide as the declared dimension, or to its last valued cell when there
    is none."""
    width = dimension[1] if dimension else 0
    lead = [None] * first_col
    for number, row in enumerate(rows, start=1):
        cells = lead + [None if v == "" else v for v in row]
        if dimension:
            cells.extend([None] * (width - len(cells)))
        else:
            while cells and cells[-1] is None:
                cells.pop()
        yield number, cells


# --- rows ---
