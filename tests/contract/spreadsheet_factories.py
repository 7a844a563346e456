"""Tiny spreadsheet sources (CSV and XLSX) holding the contract suite's five people."""

from __future__ import annotations

import csv
import pathlib
from typing import Any

from tests.contract.adapter_factories import FIELDS, PEOPLE, KindSource

HEADER = ["id", *FIELDS]


class SpreadsheetSource(KindSource):
    """An export file rewritten whole on every change, as legacy exports are."""

    kind = "spreadsheet"
    file_name = "children.csv"

    def __init__(self, tmp_path: pathlib.Path, *, batch_size: int = 2) -> None:
        super().__init__(tmp_path)
        self.batch_size = batch_size
        self.folder = tmp_path / "exports"
        self.folder.mkdir()
        self.people = [dict(p) for p in PEOPLE]
        self.extra: list[list[Any]] = []
        self.write()

    @property
    def path(self) -> pathlib.Path:
        return self.folder / self.file_name

    def rows(self) -> list[list[Any]]:
        return [[p[h] for h in HEADER] for p in self.people] + self.extra

    def write(self) -> None:
        raise TypeError(f"{type(self).__name__} must define write()")

    def config(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        return {"path": "exports", "batch_size": self.batch_size}, {
            self.entity: {"file": self.file_name, "key": "id"}}

    def change(self, person_id: str, **values: Any) -> None:
        next(p for p in self.people if p["id"] == person_id).update(values)
        self.write()

    def remove(self, person_id: str) -> None:
        self.people = [p for p in self.people if p["id"] != person_id]
        self.write()

    def add_malformed(self) -> None:
        self.extra.append(["P9", "Ragged"])  # a row that stops after two of five cells
        self.write()


class CsvSource(SpreadsheetSource):
    """cp1252, ';'-delimited, CRLF: detected, not configured."""

    def write(self) -> None:
        with self.path.open("w", encoding="cp1252", newline="") as fh:
            writer = csv.writer(fh, delimiter=";", lineterminator="\r\n")
            writer.writerow(HEADER)
            writer.writerows(self.rows())


class XlsxSource(SpreadsheetSource):
    file_name = "children.xlsx"

    def write(self) -> None:
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet("Children")
        sheet.append(HEADER)
        for row in self.rows():
            sheet.append(row)
        book.save(self.path)

    def config(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        source, entities = super().config()
        entities[self.entity]["sheet"] = "Children"
        return source, entities


SPREADSHEET_FACTORIES = {"spreadsheet-csv": CsvSource, "spreadsheet-xlsx": XlsxSource}
