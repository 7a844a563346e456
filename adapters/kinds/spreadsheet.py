"""The `spreadsheet` kind: CSV and XLSX exports dropped in a folder.

[source]: `path` (a folder or one file; relative paths are from the mapping file),
optional `encoding` ("auto": BOM, then UTF-8, then charset-normalizer's guess),
`delimiter` ("auto": sniffed from the header among , ; tab |), `batch_size`.
[entities.<name>]: `file` (file name or glob under `path`), `key` (column, or a
list of columns joined with ":"), optional `sheet` (XLSX; default the first),
`header_row` (1-based, default 1), `encoding`, `delimiter`, `ragged` ("report",
the default: rows with too few cells, or extra non-empty cells, are reported as
failures; "pad": missing trailing cells are read as empty).

Cells are read as text and never evaluated: `=HYPERLINK(...)`, `+44 7700...`
stay exactly as written (XLSX formulas are read as their formula text). When the
hub writes cells back out (`safe_cell`), values that a spreadsheet would take for
a formula are neutralised. Change detection is by row hash with deletions after
a complete scan (see `adapters.kinds.common`). An entity whose mapping has
`group_relationships` is read twice: a first pass indexes each group's row keys
and roles, and each changed row of the second carries its group's other rows.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import itertools
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from adapters.kinds.appended import FileMark, mark_of
from adapters.kinds.common import (
    ScannedRow,
    SourceConfigError,
    batch_size_of,
    rowhash_batches,
)
from adapters.kinds.xlsx_calamine import calamine_rows
from adapters.kinds.xlsx_header import header_row
from adapters.port import AdapterState, ApplyResult, ExtractBatch, SourceFailure, WriteBack

READS_GROUPS = True  # hands each changed row its group's other rows (mapping `group_relationships`)
SAMPLE_BYTES = 64 * 1024
DELIMITERS = ",;\t|"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A value made safe to write into a CSV or spreadsheet cell: text a spreadsheet
    would evaluate as a formula is prefixed with an apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _resolve(base_dir: Path, source: Mapping[str, Any]) -> Path:
    raw = source.get("path")
    if not isinstance(raw, str) or not raw:
        raise SourceConfigError("[source] needs `path`: the folder (or file) the exports are dropped in")
    path = Path(raw)
    return path if path.is_absolute() else base_dir / path


def _files(root: Path, entity: Mapping[str, Any]) -> list[Path]:
    pattern = entity.get("file")
    if pattern is None:
        if root.is_file():
            return [root]
        raise SourceConfigError("an entity needs `file`: the export's file name or glob under the source path")
    if not isinstance(pattern, str):
        raise SourceConfigError(f"`file` must be a file name or glob, not {pattern!r}")
    folder = root.parent if root.is_file() else root
    if any(ch in pattern for ch in "*?["):
        return sorted(p for p in folder.glob(pattern) if p.is_file())
    return [folder / pattern] if (folder / pattern).is_file() else []


def _key_columns(entity: Mapping[str, Any]) -> list[str]:
    key = entity.get("key")
    keys = [key] if isinstance(key, str) else key
    if not keys or not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        raise SourceConfigError("an entity needs `key`: the column (or list of columns) identifying a row")
    return keys


def _is_xlsx(path: Path) -> bool:
    return path.suffix.lower() in (".xlsx", ".xlsm")


# --- CSV ---

def detect_encoding(sample: bytes) -> str:
    """BOM first, then strict UTF-8, then charset-normalizer's best guess (cp1252 when it has none)."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                      (codecs.BOM_UTF16_BE, "utf-16")):
        if sample.startswith(bom):
            return name
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3 and exc.reason.startswith("unexpected end"):
            return "utf-8"  # the sample ends inside a multi-byte character
    from charset_normalizer import from_bytes

    matches = list(from_bytes(sample))
    if not matches:
        return "cp1252"
    # Short samples fit several single-byte code pages equally well; among the least
    # chaotic readings prefer the Windows Western page English-language systems export in.
    calm = min(m.chaos for m in matches)
    for m in matches:
        if m.chaos <= calm and "cp1252" in m.could_be_from_charset:
            return "cp1252"
    return matches[0].encoding


def detect_delimiter(header_line: str) -> str:
    try:
        return csv.Sniffer().sniff(header_line, delimiters=DELIMITERS).delimiter
    except csv.Error:
        counts = {d: header_line.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def _csv_settings(path: Path, source: Mapping[str, Any], entity: Mapping[str, Any]) -> tuple[str, str]:
    encoding = entity.get("encoding", source.get("encoding", "auto"))
    delimiter = entity.get("delimiter", source.get("delimiter", "auto"))
    with path.open("rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    if encoding == "auto":
        encoding = detect_encoding(sample)
    else:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise SourceConfigError(f"unknown encoding {encoding!r}") from None
        if encoding.replace("_", "-").lower() in ("utf-8", "utf8") and sample.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
    if delimiter == "auto":
        text = sample.decode(encoding, errors="replace")
        delimiter = detect_delimiter(text.lstrip("\ufeff").splitlines()[0] if text.strip() else ",")
    elif delimiter in ("tab", "\\t"):
        delimiter = "\t"
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise SourceConfigError(f"delimiter must be one character, 'tab' or 'auto', not {delimiter!r}")
    return encoding, delimiter


def _header_row(entity: Mapping[str, Any]) -> int:
    row = entity.get("header_row", 1)
    if not isinstance(row, int) or isinstance(row, bool) or row < 1:
        raise SourceConfigError(f"header_row must be a row number from 1, not {row!r}")
    return row


def _clean_header(cells: list[Any]) -> list[str]:
    out, seen = [], set()
    for i, cell in enumerate(cells, start=1):
        name = "" if cell is None else str(cell).strip().lstrip("\ufeff")
        name = name or f"column_{i}"
        while name in seen:
            name = f"{name}_{i}"
        seen.add(name)
        out.append(name)
    return out


def _read_csv(path: Path, label: str, source: Mapping[str, Any], entity: Mapping[str, Any],
              header_only: bool = False, after: FileMark | None = None,
              ) -> Iterator[tuple[str, list[str], list[Any]] | SourceFailure]:
    """(location, header, cells) per data row, or a SourceFailure for what could not be read.
    With `after` (the mark of a prefix of this file ending a line), the header and then only the
    rows after that prefix."""
    encoding, delimiter = _csv_settings(path, source, entity)
    header_at = _header_row(entity)
    header: list[str] | None = None
    lines = _LineDecoder(path, encoding)
    reader = csv.reader(lines, delimiter=delimiter, quotechar='"', strict=False)
    skipped = 0  # physical lines passed over by `after`
    try:
        for cells in reader:
            if header is None:
                if reader.line_num >= header_at and any(c.strip() for c in cells):
                    header = _clean_header(cells)
                    if header_only:
                        yield label, header, []
                        return
                    if after is not None:
                        lines.seek(after.size, after.lines)
                        skipped = after.lines - reader.line_num
                continue
            if not cells or all(not c.strip() for c in cells):
                continue  # a blank line holds no record
            yield f"{label}:{reader.line_num + skipped}", header, cells
    except UnicodeDecodeError as exc:
        yield SourceFailure(f"{label}:{lines.number}", (
            f"cannot decode {label} as {encoding} at line {lines.number}: {exc.reason}; the rest of the file "
            "was not read (set `encoding` in the mapping's [source] or entity)",), lines.bad_excerpt)
    except csv.Error as exc:
        yield SourceFailure(f"{label}:{reader.line_num}", (f"CSV error in {label}: {exc}",))
    finally:
        lines.close()
    if header is None:
        yield SourceFailure(label, (f"{label} is empty: no header row",))


class _LineDecoder:
    """Decodes a CSV file line by line, so the rows before an undecodable line are kept
    and the failure names the physical line."""

    def __init__(self, path: Path, encoding: str) -> None:
        self.encoding, self.number, self.bad_excerpt = encoding, 0, ""
        wide = codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
        self._text = path.open("r", encoding=encoding, newline="") if wide else None
        self._bytes = None if wide else path.open("rb")
        self._first = True

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._text is not None:
            self.number += 1
            line = self._text.readline()
            if not line:
                raise StopIteration
            return line
        raw = self._bytes.readline()
        if not raw:
            raise StopIteration
        self.number += 1
        try:
            line = raw.decode(self.encoding)
        except UnicodeDecodeError:
            self.bad_excerpt = raw[:500].decode(self.encoding, errors="replace")
            raise
        if self._first:
            self._first = False
            line = line.lstrip("\ufeff")
        return line

    def seek(self, offset: int, line: int) -> None:
        """Go on reading at byte `offset`, the start of physical line `line` + 1."""
        self._bytes.seek(offset)
        self.number, self._first = line, False

    def close(self) -> None:
        for fh in (self._text, self._bytes):
            if fh is not None:
                fh.close()


# --- XLSX ---

def _cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return value
    return value


def _read_xlsx(path: Path, label: str, entity: Mapping[str, Any],
               header_only: bool = False) -> Iterator[tuple[str, list[str], list[Any]] | SourceFailure]:
    """(location, header, cells) per data row, or a SourceFailure. Read with calamine when the
    sheet holds nothing calamine reads differently from openpyxl (see `calamine_rows`), else with
    openpyxl, read-only; both give the same rows, calamine several times faster."""
    try:
        header_at = _header_row(entity)
    except SourceConfigError:
        read = None  # reported by the openpyxl reading
    else:
        read = calamine_rows(path, entity.get("sheet"), header_at)
    if read is None:
        yield from _read_xlsx_openpyxl(path, label, entity, header_only)
        return
    title, rows = read
    try:
        yield from _xlsx_records(label, title, rows, header_at, header_only)
    except Exception as exc:  # noqa: BLE001 - reported as the openpyxl reading reports it
        yield SourceFailure(label, (f"cannot read {label}: {type(exc).__name__}: {exc}",))


def _read_xlsx_openpyxl(path: Path, label: str, entity: Mapping[str, Any],
                        header_only: bool = False) -> Iterator[tuple[str, list[str], list[Any]] | SourceFailure]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException...: all mean "unreadable"
        yield SourceFailure(label, (f"cannot open {label} as an XLSX workbook: {type(exc).__name__}: {exc}",))
        return
    try:
        sheet_name = entity.get("sheet")
        if sheet_name is not None and sheet_name not in workbook.sheetnames:
            yield SourceFailure(label, (f"{label} has no sheet {sheet_name!r} "
                                        f"(sheets: {', '.join(workbook.sheetnames)})",))
            return
        sheet = workbook[sheet_name] if sheet_name else workbook.worksheets[0]
        rows = enumerate(sheet.iter_rows(values_only=True), start=1)
        yield from _xlsx_records(label, sheet.title, rows, _header_row(entity), header_only)
    except Exception as exc:  # a corrupt part of the archive found while streaming
        yield SourceFailure(label, (f"cannot read {label}: {type(exc).__name__}: {exc}",))
    finally:
        workbook.close()


def _xlsx_records(label: str, title: str, rows: Iterator[tuple[int, Sequence[Any]]], header_at: int,
                  header_only: bool) -> Iterator[tuple[str, list[str], list[Any]] | SourceFailure]:
    """The header and data rows of a sheet given as (row number, values as openpyxl reads them)."""
    header: list[str] | None = None
    for number, row in rows:
        if number < header_at:
            continue
        if header is None:
            cells = list(row)
            while cells and cells[-1] is None:
                cells.pop()
            header = _clean_header(cells)
            if header_only:
                yield label, header, []
                return
            continue
        cells = [_cell(v) for v in row]
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        while len(cells) > len(header) and cells[-1] is None:
            cells.pop()
        yield f"{label}!{title}:{number}", header, cells
    if header is None:
        yield SourceFailure(label, (f"{label} sheet {title!r} is empty: no header row",))


def _rows(root: Path, source: Mapping[str, Any], entity_name: str, entity: Mapping[str, Any],
          after: FileMark | None = None) -> Iterator[ScannedRow | SourceFailure]:
    """Every row of the entity's files; with `after`, only those its one CSV file gained since."""
    keys = _key_columns(entity)
    ragged = entity.get("ragged", "report")
    if ragged not in ("report", "pad"):
        raise SourceConfigError(f"ragged must be 'report' or 'pad', not {ragged!r}")
    files = _files(root, entity)
    if not files:
        yield SourceFailure(str(root / str(entity.get("file", ""))),
                            (f"{entity_name}: no file matches {entity.get('file')!r} in {root}",))
        return
    folder = root.parent if root.is_file() else root
    for path in files:
        label = path.relative_to(folder).as_posix() if path.is_relative_to(folder) else str(path)
        reader = _read_xlsx(path, label, entity) if _is_xlsx(path) else _read_csv(path, label, source, entity,
                                                                                  after=after)
        missing_keys: list[str] | None = None
        for item in reader:
            if isinstance(item, SourceFailure):
                yield item
                continue
            location, header, cells = item
            if missing_keys is None:
                missing_keys = [k for k in keys if k not in header]
            if missing_keys:
                yield SourceFailure(label, (f"{label}: key column(s) {', '.join(missing_keys)} not in the header "
                                            f"({', '.join(header)})",))
                reader.close()  # releases the file now, not when the generator is collected
                break
            problems: list[str] = []
            if len(cells) < len(header):
                if ragged == "report":
                    problems.append(f"{location}: row has {len(cells)} cells, the header has {len(header)} "
                                    f"(missing: {', '.join(header[len(cells):])})")
                cells = cells + [None] * (len(header) - len(cells))
            extra = cells[len(header):]
            if any(c is not None and str(c).strip() for c in extra):
                problems.append(f"{location}: row has {len(cells)} cells, the header has {len(header)} "
                                f"(extra: {', '.join(repr(c) for c in extra if c is not None and str(c).strip())})")
            raw = dict(zip(header, cells))
            key_values = [raw.get(k) for k in keys]
            if any(v is None or not str(v).strip() for v in key_values):
                problems.append(f"{location}: no value in key column(s) {', '.join(keys)}")
                source_id = None
            else:
                source_id = ":".join(str(v).strip() for v in key_values)
            if problems and extra:
                raw["(extra cells)"] = [c for c in extra]
            yield ScannedRow(source_id, raw, location, problems=tuple(problems))


class GroupIndex:
    """`by` value -> the keys and role cells of its rows, from a first streaming pass, for a mapping
    with `group_relationships`. Per row it keeps only the key, the role (interned: a handful of
    distinct cells) and a share of the group value, so a million rows stay around a hundred MB."""

    def __init__(self, by: str, role: str) -> None:
        self.by, self.role = by, role
        self._groups: dict[str, list[str]] = {}  # value -> [key, role, key, role, ...]

    @staticmethod
    def _value(cell: Any) -> str:
        return "" if cell is None else str(cell).strip()

    def add(self, row: ScannedRow) -> None:
        if row.source_id is None or row.raw is None:
            return
        value = self._value(row.raw.get(self.by))
        if value:
            self._groups.setdefault(value, []).extend((row.source_id, sys.intern(self._value(row.raw.get(self.role)))))

    def others(self, raw: Mapping[str, Any], source_id: str) -> tuple[tuple[str, str], ...]:
        """The other rows of this row's group as (key, role cell); () for a row with no group value."""
        members = self._groups.get(self._value(raw.get(self.by)), [])
        seen = {source_id}  # a key read twice is ingested once (its copy is reported), so related once
        out = []
        for i in range(0, len(members), 2):
            if members[i] not in seen:
                seen.add(members[i])
                out.append((members[i], members[i + 1]))
        return tuple(out)

    def __len__(self) -> int:
        return len(self._groups)


def _with_groups(batches: Iterator[ExtractBatch], index: GroupIndex) -> Iterator[ExtractBatch]:
    """`batches`, every changed row carrying the other members of its group (a new row of an
    existing family thus relates to the unchanged rows, which are not announced again)."""
    for batch in batches:
        batch.changes = [c if c.deleted else replace(c, group=index.others(c.raw, c.source_id))
                         for c in batch.changes]
        yield batch


def _group_index(root: Path, source: Mapping[str, Any], name: str, entity: Mapping[str, Any]) -> GroupIndex | None:
    spec = entity.get("group_relationships")
    if not spec:
        return None
    index = GroupIndex(spec["by"], spec["role"])
    for row in _rows(root, source, name, entity):
        if isinstance(row, ScannedRow):
            index.add(row)  # what could not be read is reported by the second pass
    return index


def _checkpoint_last(batches: Iterator[ExtractBatch], key: str, fingerprint: str | None,
                     mark: FileMark | None = None) -> Iterator[ExtractBatch]:
    """`batches`, the last one carrying the cursor "<fingerprint> <rows read>[ <file mark>]"
    (committed only once the whole scan is), so a later run over the same bytes can say how many
    rows it did not read, and one over the same bytes with rows appended read only those. A scan
    that could not read part of the file keeps no mark: the next run reads it all again."""
    last: ExtractBatch | None = None
    rows = 0
    for batch in batches:
        rows += batch.unchanged + sum(1 for c in batch.changes if not c.deleted)
        mark = None if batch.failures else mark
        if last is not None:
            yield last
        last = batch
    if fingerprint is None:
        if last is not None:
            yield last
        return
    last = last or ExtractBatch()
    last.checkpoint[key] = f"{fingerprint} {rows}" + (f" {mark.encode()}" if mark is not None else "")
    yield last


def _single_csv(root: Path, source: Mapping[str, Any], entity: Mapping[str, Any]) -> Path | None:
    """The entity's one CSV file, when it has exactly one, read byte-wise (not UTF-16/32) and
    without `group_relationships` (whose first pass needs every row): a file rows can be
    appended to and read from where the last run stopped."""
    if entity.get("group_relationships") or not root.exists():
        return None
    try:
        files = _files(root, entity)
        if len(files) != 1 or _is_xlsx(files[0]):
            return None
        encoding, _delimiter = _csv_settings(files[0], source, entity)
    except (OSError, SourceConfigError):
        return None  # read it the usual way, which reports the problem
    return None if codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")) else files[0]


def _fingerprint(root: Path, entity: Mapping[str, Any]) -> str | None:
    """SHA-256 over the names and bytes of the entity's export files (None: no file). Hashing a
    file costs a fraction of parsing it, so an export that did not change is not read again."""
    try:
        files = _files(root, entity) if root.exists() else []
        if not files:
            return None
        digests = []
        for path in files:
            with path.open("rb") as fh:
                digests.append((path.name, hashlib.file_digest(fh, "sha256").digest()))
        return _fingerprint_of(digests)
    except OSError:
        return None  # read it the usual way, which reports the problem


def _fingerprint_of(digests: Iterable[tuple[str, bytes]]) -> str:
    """`_fingerprint` from each file's name and SHA-256: a single export's comes from its mark,
    which has hashed the file already (`appended.mark_of`)."""
    digest = hashlib.sha256()
    for name, file_digest in digests:
        digest.update(name.encode() + b"\0")
        digest.update(file_digest)
    return digest.hexdigest()


def _single_mark(root: Path, source: Mapping[str, Any], entity: Mapping[str, Any],
                 committed: list[str]) -> tuple[FileMark, FileMark | None, str] | None:
    """For an entity of one CSV export: its mark, the committed mark when the file is that one
    with rows appended (else None), and its fingerprint, from one reading of the file (None: not
    such an entity, or the file cannot be read now: it is then read the usual way)."""
    single = _single_csv(root, source, entity)
    if single is None:
        return None
    before = FileMark.decode(committed[2]) if len(committed) == 3 else None
    try:
        mark, grown = mark_of(single, before)
    except OSError:
        return None
    return mark, before if grown else None, _fingerprint_of([(single.name, bytes.fromhex(mark.digest))])


class SpreadsheetAdapter:
    kind = "spreadsheet"

    def __init__(self, system: str, source: Mapping[str, Any], entities: Mapping[str, Mapping[str, Any]],
                 base_dir: Path) -> None:
        self.system, self.source, self.entities = system, dict(source), {k: dict(v) for k, v in entities.items()}
        self.root = _resolve(base_dir, source)
        self.batch_size = batch_size_of(source)
        for entity in self.entities.values():
            _key_columns(entity)
            _header_row(entity)
            batch_size_of(entity, self.batch_size)

    def extract(self, state: AdapterState) -> Iterator[ExtractBatch]:
        for name, entity in self.entities.items():
            key = f"files:{name}"
            committed = (state.cursor(key) or "").split(" ")
            single = _single_mark(self.root, self.source, entity, committed)
            mark, before, fingerprint = single if single is not None else (None, None, _fingerprint(self.root, entity))
            if fingerprint is not None and committed[0] == fingerprint and len(committed) >= 2:
                # byte for byte the export last committed: every row is unchanged, nothing is deleted
                yield ExtractBatch(unchanged=int(committed[1]))
                continue
            if before is not None and committed[1].isdigit():
                # the export last committed with rows appended: read those; none can have gone
                appended = rowhash_batches(name, _rows(self.root, self.source, name, entity, after=before), state,
                                           batch_size=batch_size_of(entity, self.batch_size), detect_deletions=False)
                yield from _checkpoint_last(itertools.chain([ExtractBatch(unchanged=int(committed[1]))], appended),
                                            key, fingerprint, mark)
                continue
            index = _group_index(self.root, self.source, name, entity)
            batches = rowhash_batches(name, _rows(self.root, self.source, name, entity), state,
                                      batch_size=batch_size_of(entity, self.batch_size),
                                      deletions_location=f"{self.root.name}/{entity.get('file', '')}")
            if index is not None:
                batches = _with_groups(batches, index)
            yield from _checkpoint_last(batches, key, fingerprint, mark)

    def apply(self, change: WriteBack) -> ApplyResult:
        return ApplyResult(change.source_id or "", False,
                           "spreadsheet exports are read-only: write-back goes to the system's own interface")


def build(system: str, source: dict, entities: dict[str, dict], *, base_dir: Path,
          env: Mapping[str, str]) -> SpreadsheetAdapter:
    return SpreadsheetAdapter(system, source, entities, Path(base_dir))


def _xlsx_header(path: Path, entity: Mapping[str, Any]) -> list[str] | None:
    """The header as `_read_xlsx` gives it, from the header row alone (`xlsx_header.header_row`):
    loading a system then costs milliseconds, not a reading of the whole sheet. None: read it
    the usual way."""
    try:
        header_at = _header_row(entity)
    except SourceConfigError:
        return None
    read = header_row(path, entity.get("sheet"), header_at)
    if read is None:
        return None
    title, cells = read
    for item in _xlsx_records(path.name, title, iter([(header_at, cells)]), header_at, header_only=True):
        return None if isinstance(item, SourceFailure) else list(item[1])
    return None


def columns(source: dict, entity_cfg: dict, *, base_dir: Path, env: Mapping[str, str]) -> list[str] | None:
    """The header of the entity's first file, or None when no file is there yet."""
    root = _resolve(Path(base_dir), source)
    files = _files(root, entity_cfg) if root.exists() else []
    if not files:
        return None
    path = files[0]
    if _is_xlsx(path) and (header := _xlsx_header(path, entity_cfg)) is not None:
        return header
    reader = (_read_xlsx(path, path.name, entity_cfg, header_only=True) if _is_xlsx(path)
              else _read_csv(path, path.name, source, entity_cfg, header_only=True))
    for item in reader:
        return None if isinstance(item, SourceFailure) else list(item[1])
    return None


__all__ = ["SpreadsheetAdapter", "build", "columns", "detect_delimiter", "detect_encoding", "safe_cell"]
