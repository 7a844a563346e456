"""`hub bench bus` runs every path on the same broker and prints its table."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from hub.cli import main
from tests.support.services import require_rabbitmq


@pytest.mark.services
def test_bench_bus_prints_every_path_with_ratios():
    url = require_rabbitmq()
    out = CliRunner().invoke(main, ["bench", "bus", "--messages", "300", "--records", "30", "--amqp-url", url])
    assert out.exit_code == 0, out.output
    rows = {line.split("|")[0].strip(): [c.strip() for c in line.split("|")[1:]]
            for line in out.output.splitlines() if "|" in line}
    assert set(rows) >= {"raw pika, confirm each message", "raw pika, no confirms (unsafe)",
                         "hub amqp, bus only (300)", "hub amqp + inbox (300)", "hub sqlite bus + inbox (300)",
                         "hub amqp + records worker (30)", "hub sqlite bus + records worker (30)"}
    assert rows["raw pika, confirm each message"][2] == "1.000"
    for cells in rows.values():
        if cells[0] != "publish msg/s":
            assert all(re.fullmatch(r"[\d,]+(\.\d+)?", c) and float(c.replace(",", "")) > 0 for c in cells)
