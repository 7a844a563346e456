"""`hub identity link-file`: the engine on CSV files (deduplicate one, link two)."""

from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.identity.files import ColumnMapError, parse_columns, parse_date

COLUMNS = "id=Ref,given=Forename,family=Surname,dob=DOB,postcode=Postcode,nhs=NHS"


def _write(path, rows):
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Ref", "Forename", "Surname", "DOB", "Postcode", "NHS"])
        writer.writerows(rows)
    return path


def test_link_two_files_and_deduplicate(tmp_path):
    a = _write(tmp_path / "a.csv", [("1", "Amy", "Smith", "02/03/2015", "NE1 4AB", ""),
                                    ("2", "Ben", "Jones", "2012-07-09", "NE3 1AA", "9434765919"),
                                    ("3", "Amy", "Smith", "2015-03-02", "NE1 4AB", "")])
    b = _write(tmp_path / "b.csv", [("X", "Benjamin", "Jones", "09/07/2012", "", "9434765919"),
                                    ("Y", "Cara", "Okafor", "2001-01-05", "NE9 9ZZ", "")])
    out = tmp_path / "clusters.csv"
    result = CliRunner().invoke(main, ["identity", "link-file", str(a), str(b), "--columns", COLUMNS,
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "5 records → 3 clusters" in result.output
    rows = list(csv.DictReader(out.open()))
    cluster = {(r["file"], r["id"]): r["cluster"] for r in rows}
    assert cluster[("a.csv", "1")] == cluster[("a.csv", "3")]
    assert cluster[("a.csv", "2")] == cluster[("b.csv", "X")]
    assert len({cluster[("a.csv", "1")], cluster[("a.csv", "2")], cluster[("b.csv", "Y")]}) == 3


def test_bad_column_maps_are_explained(tmp_path):
    with pytest.raises(ColumnMapError, match="FIELD=COLUMN"):
        parse_columns("given")
    with pytest.raises(ColumnMapError, match="shoe"):
        parse_columns("shoe=Size")
    a = _write(tmp_path / "a.csv", [("1", "Amy", "Smith", "2015-03-02", "", "")])
    result = CliRunner().invoke(main, ["identity", "link-file", str(a), "--columns", "given=Name",
                                       "--out", str(tmp_path / "o.csv")])
    assert result.exit_code != 0 and "no column 'Name'" in result.output


def test_dates_in_the_usual_formats():
    assert str(parse_date("02/03/2015")) == "2015-03-02"
    assert str(parse_date("20150302")) == "2015-03-02"
    assert parse_date("31/02/2015") is None
