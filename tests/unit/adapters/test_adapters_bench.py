"""`hub bench adapters` runs every kind end to end on a tiny source and prints its table."""

from __future__ import annotations

from click.testing import CliRunner

from hub.cli import main


def test_bench_adapters_prints_every_kind_with_its_baseline():
    result = CliRunner().invoke(main, ["bench", "adapters", "--rows", "300", "--xlsx-rows", "50", "--xml-mb", "0"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for source in ("spreadsheet (CSV)", "spreadsheet (XLSX)", "sql (SQLite, row hash)", "xml_files"):
        rows = [ln for ln in lines if ln.startswith(f" {source}")]
        assert [r.split("|")[1].strip() for r in rows] == [
            "raw read (baseline)", "extract", "extract + translate", "translate alone"], source
        records = rows[2].split("|")[3].strip()
        assert records == ("100" if "XLSX" in source else "600"), (source, records)


def test_bench_adapters_refuses_an_unknown_kind():
    result = CliRunner().invoke(main, ["bench", "adapters", "--kinds", "csv,telex"])
    assert result.exit_code == 2 and "unknown kind(s): telex" in result.output
