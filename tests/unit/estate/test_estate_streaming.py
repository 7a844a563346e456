"""The generator streams: memory does not grow with the number of people."""

from __future__ import annotations

import tracemalloc

import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.estate import Manifest, generate


def _peak_bytes(tmp_path, people: int) -> int:
    tracemalloc.start()
    try:
        generate(tmp_path / str(people), people=people, seed=1)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_generating_20000_people_streams_in_bounded_memory(tmp_path):
    # Held in memory, 20,000 people's ~70,000 legacy rows and their truth lines would take
    # well over 30 MB of Python objects; streamed, the peak is the pools and a few buffers.
    peak = _peak_bytes(tmp_path, 20_000)
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB generating 20,000 people"


def test_cli_generate_writes_the_estate_it_reports(tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "absent.toml"), "estate", "generate",
                                       "--people", "300", "--seed", "8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = Manifest.load(out)
    assert manifest.people == 300 and manifest.seed == 8
    assert f"{manifest.total_rows():,} legacy rows" in result.output
    mutated = CliRunner().invoke(main, ["estate", "mutate", "--dir", str(out), "--changes", "2", "--seed", "1"])
    assert mutated.exit_code == 0 and mutated.output.count('"person_id"') == 2
