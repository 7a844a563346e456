"""`hub bench view` fills a store with synthetic people and prints its latency table."""

from __future__ import annotations

from click.testing import CliRunner

from hub.cli import main


def test_bench_view_fills_the_store_and_reports_search_and_view(tmp_path):
    url = f"sqlite:///{tmp_path}/bench.db"
    result = CliRunner().invoke(main, ["bench", "view", "--people", "400", "--samples", "12", "--store-url", url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith(" operation") for line in lines)
    for operation in ("baseline", "search", "view", "  search: nhs number"):
        assert any(line.startswith(f" {operation} ") for line in lines), operation
    again = CliRunner().invoke(main, ["bench", "view", "--people", "400", "--samples", "5", "--store-url", url])
    assert again.exit_code == 0 and "people (" not in again.output  # the people are reused
