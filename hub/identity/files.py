"""The engine on plain CSV files: deduplicate one file or link two, so a migration team
can vet a spreadsheet before onboarding it (`hub identity link-file`)."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

from identity_index.engine import BatchResult, link_batch
from identity_index.features import PersonFeatures, compact_postcode, name_parts, normalise_name
from identity_index.model import Model

FIELDS = ("id", "given", "family", "dob", "sex", "postcode", "nhs", "upn")
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y%m%d")
SEXES = {"m": "male", "male": "male", "1": "male", "f": "female", "female": "female", "2": "female"}


class ColumnMapError(ValueError):
    """The --columns map is malformed or names a column the file lacks."""


def parse_columns(spec: str) -> dict[str, str]:
    """"given=First name,family=Surname,dob=DOB" → {field: column}."""
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, column = part.partition("=")
        if not sep or name.strip() not in FIELDS:
            raise ColumnMapError(f"{part!r}: expected FIELD=COLUMN with FIELD one of {', '.join(FIELDS)}")
        out[name.strip()] = column.strip()
    if "given" not in out and "family" not in out:
        raise ColumnMapError("map at least one of given, family")
    return out


def parse_date(value: str) -> dt.date | None:
    value = (value or "").strip()
    for fmt in DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return None


def read_file(path: Path, columns: dict[str, str], tag: str) -> list[PersonFeatures]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in columns.values() if c not in (reader.fieldnames or [])]
        if missing:
            raise ColumnMapError(f"{path}: no column {', '.join(map(repr, missing))}")
        out = []
        for n, row in enumerate(reader, start=1):
            get = _getter(row, columns)
            family_raw = get("family")
            out.append(PersonFeatures(
                ref=f"{tag}:{get('id') or n}", given=normalise_name(get("given")), family=normalise_name(family_raw),
                family_alts=frozenset(p for p in name_parts(family_raw) if p != normalise_name(family_raw)),
                dob=parse_date(get("dob")), sex=SEXES.get(get("sex").lower()),
                postcode=compact_postcode(get("postcode")), postcodes=frozenset({compact_postcode(get("postcode"))} - {""}),
                nhs=get("nhs").replace(" ", ""), upn=get("upn").upper()))
        return out


def _getter(row: dict[str, str], columns: dict[str, str]) -> Callable[[str], str]:
    def get(field: str) -> str:
        return (row.get(columns[field]) or "").strip() if field in columns else ""

    return get


def link_files(paths: Sequence[Path], columns: dict[str, str], model: Model, out: Path) -> BatchResult:
    """Cluster the records of one or two files; write `file,id,cluster` rows to `out`."""
    records = []
    for i, path in enumerate(paths):
        records += read_file(Path(path), columns, tag=f"{i + 1}")
    result = link_batch(records, model)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "id", "cluster"])
        for ref in result.refs:
            tag, _, rid = ref.partition(":")
            writer.writerow([Path(paths[int(tag) - 1]).name, rid, f"C{result.clusters.cluster_of[ref]:07d}"])
    return result
