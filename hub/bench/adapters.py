"""`hub bench adapters`: records per second and peak memory of each adapter kind, with the
raw read of the same source in the same run as the baseline.

Every kind reads the same N people (a person row: names, date of birth, sex, NHS number,
address, phone and a join date) from its own kind of source, through its real `build()`
and a mapping file loaded by `load_system`, the way an ingest does (first load: every row
is new). Rows per kind:

- raw read: the same file or table read with the library alone (csv.reader, python-calamine,
  sqlite3, lxml iterparse with clearing): the ceiling for an adapter;
- extract: the kind's `extract()` (encoding/delimiter detection, change detection, batches);
- extract + translate: the same, each row translated by the mapping into canonical
  records (a person and an involvement per row), validated by the canonical model.

Rates are given per CPU second of this process (one core) and per wall second; memory is
the peak growth of the process's resident set over the run, sampled every 10 ms.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import psutil

from hub.bench.table import render

COLUMNS = ["id", "forename", "surname", "dob", "sex", "nhs", "address", "postcode", "phone", "joined"]
FIELDS = """
[codes.sex]
map = { M = "male", F = "female" }
default = "unknown"

[entities.people.person.fields]
"names[0].given" = { field = "forename", transforms = ["trim", "title"] }
"names[0].family" = { field = "surname", transforms = ["trim", "title"], required = true }
birth_date = { field = "dob", date = ["%d/%m/%Y", "%Y-%m-%d"] }
sex = { field = "sex", codes = "sex" }
"identifiers[nhs_number]" = { field = "nhs", transforms = ["strip_spaces"] }
"identifiers[local]" = "id"
"addresses[0].lines" = { field = "address", transforms = [{ split = "," }] }
"addresses[0].postcode" = "postcode"
"contacts[mobile]" = "phone"

[entities.people.involvements]
source_id = "reg-{id}"
subject = "id"
[entities.people.involvements.fields]
service_category = { const = "youth_service" }
kind = { const = "registration" }
started_on = { field = "joined", date = "%d/%m/%Y" }
"""
FORENAMES = ["Amara", "Ben", "Chloe", "Dylan", "Erin", "Femi", "Grace", "Harry", "Isla", "Jon"]
SURNAMES = ["SMITH", "Jones", "okafor", "Nowak", "Price", "Walsh", "Hughes", "Patel", "Brown", "Taylor"]


def nhs_number(i: int) -> str:
    """A valid NHS number (modulus 11 check digit) made from `i`, spaced for every other one."""
    while True:
        body = f"{400000000 + i * 7919 % 599999999:09d}"
        check = 11 - sum(int(d) * (10 - n) for n, d in enumerate(body)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            number = body + str(check)
            return f"{number[:3]} {number[3:6]} {number[6:]}" if i % 2 else number
        i += 1


def person_row(i: int) -> list[str]:
    return [f"P{i:08d}", FORENAMES[i % 10], SURNAMES[(i // 10) % 10], f"{1 + i % 28:02d}/{1 + i % 12:02d}/{2005 + i % 15}",
            "MF"[i % 2], nhs_number(i) if i % 3 else "", f"{1 + i % 200} Mill Lane, Matlock", "DE4 3AB",
            "07700 900123", f"{1 + i % 28:02d}/{1 + i % 12:02d}/2024"]


class EmptyState:
    """A hub that holds nothing yet: every row is new."""

    def cursor(self, key: str) -> str | None:
        return None

    def row_hashes(self, entity: str) -> Mapping[str, str]:
        return {}


class PeakRss:
    """Samples the resident set while a block runs; `growth` is the peak above the start."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self.process, self.interval_s, self.growth = psutil.Process(), interval_s, 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRss:
        self.start = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.growth = max(self.growth, self.process.memory_info().rss - self.start)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.growth = max(self.growth, self.process.memory_info().rss - self.start)


@dataclass
class Measure:
    rows: int
    records: int
    cpu_s: float
    wall_s: float
    rss_growth: int


def measure(run: Callable[[], tuple[int, int]]) -> Measure:
    cpu, wall = time.process_time(), time.perf_counter()
    with PeakRss() as rss:
        rows, records = run()
    return Measure(rows, records, time.process_time() - cpu, time.perf_counter() - wall, rss.growth)


# ---- one source per kind --------------------------------------------------------------------

@dataclass
class KindSource:
    name: str
    mapping: str  # the mapping file's [system]/[source]/entity keys; FIELDS is appended
    raw_read: Callable[[], int]
    prepare: Callable[[], None] = lambda: None  # before each adapter run (an XML inbox is consumed)


def _system(kind: str, source: str, entity: str) -> str:
    return (f'[system]\nname = "bench_{kind}"\nkind = "{kind}"\nservice_category = "youth_service"\n\n'
            f"[source]\n{source}\n\n[entities.people]\n{entity}\n")


def csv_source(root: Path, rows: int) -> KindSource:
    path = root / "people.csv"
    with path.open("w", encoding="cp1252", newline="") as fh:
        writer = csv.writer(fh, delimiter=";", lineterminator="\r\n")
        writer.writerow(COLUMNS)
        writer.writerows(person_row(i) for i in range(rows))

    def raw() -> int:
        with path.open(encoding="cp1252", newline="") as fh:
            return sum(1 for _ in csv.reader(fh, delimiter=";")) - 1
    return KindSource("spreadsheet (CSV)", _system("spreadsheet", f'path = "{root}"', 'file = "people.csv"\nkey = "id"'),
                      raw)


def xlsx_source(root: Path, rows: int) -> KindSource:
    from openpyxl import Workbook

    path = root / "people.xlsx"
    book = Workbook(write_only=True)
    sheet = book.create_sheet("People")
    sheet.append(COLUMNS)
    for i in range(rows):
        sheet.append(person_row(i))
    book.save(path)

    def raw() -> int:  # the library the adapter reads this file with
        from python_calamine import CalamineWorkbook

        with CalamineWorkbook.from_path(path) as wb:
            sheet = wb.get_sheet_by_name("People")
        return sum(1 for _ in sheet.iter_rows()) - 1
    return KindSource("spreadsheet (XLSX)", _system("spreadsheet", f'path = "{root}"',
                                                    'file = "people.xlsx"\nsheet = "People"\nkey = "id"'), raw)


def sql_source(root: Path, rows: int) -> KindSource:
    path = root / "legacy.db"
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE people ({', '.join(f'{c} TEXT' for c in COLUMNS)}, PRIMARY KEY (id))")
        db.executemany(f"INSERT INTO people VALUES ({', '.join('?' * len(COLUMNS))})",
                       (person_row(i) for i in range(rows)))

    def raw() -> int:
        with sqlite3.connect(path) as db:
            return sum(1 for _ in db.execute("SELECT * FROM people"))
    return KindSource("sql (SQLite, row hash)", _system("sql", f'url = "sqlite:///{path}"',
                                                        'table = "people"\nkey = "id"'), raw)


def xml_source(root: Path, rows: int, megabytes: int) -> KindSource:
    stock = root / "stock" / "people.xml"
    stock.parent.mkdir()
    inbox = root / "inbox"
    inbox.mkdir()
    written = 0
    with stock.open("w", encoding="utf-8") as fh:
        fh.write('<?xml version="1.0" encoding="UTF-8"?>\n<export>\n')
        i = 0
        while (written < rows) if not megabytes else (fh.tell() < megabytes * 1024 * 1024):
            cells = person_row(i)
            fh.write("<person>" + "".join(f"<{c}>{v}</{c}>" for c, v in zip(COLUMNS, cells)) + "</person>\n")
            i += 1
            written += 1
        fh.write("</export>\n")

    def raw() -> int:
        from lxml import etree

        n = 0
        for _, elem in etree.iterparse(str(stock), events=("end",), tag="person", resolve_entities=False,
                                       no_network=True, load_dtd=False):
            n += 1
            elem.clear(keep_tail=True)
            while elem.getprevious() is not None:
                del elem.getparent()[0]
        return n

    def prepare() -> None:
        for old in inbox.iterdir():
            old.unlink()
        os.link(stock, inbox / "people.xml")  # the kind moves the file to its archive when done

    fields = "\n".join(f'{c} = "{c}"' for c in COLUMNS)
    entity = f'record_xpath = "/export/person"\nid_xpath = "id/text()"\n[entities.people.fields]\n{fields}'
    source = (f'inbox = "{inbox}"\narchive = "{root / "archive"}"\nfailed = "{root / "failed"}"\n'
              'mode = "delta"')
    return KindSource(f"xml_files ({stock.stat().st_size / 2**20:,.0f} MiB)", _system("xml_files", source, entity),
                      raw, prepare)


# ---- runs ------------------------------------------------------------------------------------

def _batches(adapter: Any) -> Iterator[Any]:
    yield from adapter.extract(EmptyState())


def bench_kind(src: KindSource, root: Path) -> list[list[object]]:
    from adapters import build_adapter, load_system

    mapping = root / f"{src.name.split()[0]}.toml"
    mapping.write_text(src.mapping + FIELDS, encoding="utf-8")
    defn = load_system(mapping)

    def extract_only() -> tuple[int, int]:
        src.prepare()
        rows = 0
        for batch in _batches(build_adapter(defn)):
            rows += len(batch.changes)
        return rows, 0

    def extract_translate() -> tuple[int, int]:
        src.prepare()
        rows = records = 0
        at = dt.datetime.now(dt.UTC)
        for batch in _batches(build_adapter(defn)):
            for change in batch.changes:
                rows += 1
                records += len(defn.mapping.translate(change, extracted_at=at))
        return rows, records

    raw = measure(lambda: (src.raw_read(), 0))
    extract = measure(extract_only)
    full = measure(extract_translate)
    if not (raw.rows == extract.rows == full.rows):
        raise click.ClickException(f"{src.name}: read {raw.rows} raw rows but the adapter gave {extract.rows}")
    translate_cpu = max(full.cpu_s - extract.cpu_s, 1e-9)
    mib = 2 ** 20
    return [
        [src.name, "raw read (baseline)", raw.rows, "", raw.rows / raw.cpu_s, raw.rows / raw.wall_s, 1.0,
         raw.rss_growth / mib],
        [src.name, "extract", extract.rows, "", extract.rows / extract.cpu_s, extract.rows / extract.wall_s,
         extract.cpu_s / raw.cpu_s, extract.rss_growth / mib],
        [src.name, "extract + translate", full.rows, full.records, full.records / full.cpu_s,
         full.records / full.wall_s, full.cpu_s / raw.cpu_s, full.rss_growth / mib],
        [src.name, "translate alone", full.rows, full.records, full.records / translate_cpu, "", "", ""],
    ]


@click.command("adapters")
@click.option("--rows", default=100_000, show_default=True, help="people per CSV and SQL source")
@click.option("--xlsx-rows", default=20_000, show_default=True, help="people in the XLSX workbook")
@click.option("--xml-mb", default=50, show_default=True, help="size of the XML export in MiB (1024 for the 1 GB run)")
@click.option("--kinds", default="csv,xlsx,sql,xml", show_default=True, help="comma-separated: csv, xlsx, sql, xml")
def command(rows: int, xlsx_rows: int, xml_mb: int, kinds: str) -> None:
    """Records/s per adapter kind (per core and wall) and peak memory, against a raw read."""
    chosen = [k.strip() for k in kinds.split(",") if k.strip()]
    unknown = set(chosen) - {"csv", "xlsx", "sql", "xml"}
    if unknown:
        raise click.BadParameter(f"unknown kind(s): {', '.join(sorted(unknown))}", param_hint="--kinds")
    table: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-adapters-") as tmp:
        for kind in chosen:
            root = Path(tmp) / kind
            root.mkdir()
            click.echo(f"preparing {kind} …", err=True)
            if kind == "csv":
                src = csv_source(root, rows)
            elif kind == "xlsx":
                src = xlsx_source(root, xlsx_rows)
            elif kind == "sql":
                src = sql_source(root, rows)
            else:
                src = xml_source(root, rows, xml_mb)
            table += bench_kind(src, root)
            shutil.rmtree(root, ignore_errors=True)
    click.echo(render(["source", "path", "rows", "records", "per CPU s", "per wall s", "CPU x raw",
                       "peak RSS +MiB"], table))
    click.echo("per CPU s: rows (raw, extract) or canonical records (translate) per second of this process's "
               "CPU time, i.e. one core; CPU x raw: this path's CPU time as a multiple of the raw read's.")
