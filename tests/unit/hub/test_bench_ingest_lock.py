"""`hub bench ingest-lock`: the ingest beside a writer holding SQLite's lock, against it alone."""

from __future__ import annotations

import sqlite3
import threading
import time

from click.testing import CliRunner

from hub.bench.ingest_lock import command, hold_lock


def test_the_other_writer_holds_the_lock_part_of_the_time(tmp_path):
    db = str(tmp_path / "s.db")
    sqlite3.connect(db).execute("PRAGMA journal_mode=WAL").close()
    stop = threading.Event()
    holder = threading.Thread(target=hold_lock, args=(db, 0.2, 0.05, stop))
    holder.start()
    other = sqlite3.connect(db, timeout=0, isolation_level=None)
    locked = free = 0
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline and not (locked and free):
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("COMMIT")
            free += 1
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc)
            locked += 1
        time.sleep(0.01)
    stop.set()
    holder.join()
    assert locked and free


def test_the_command_prints_both_rates_and_their_ratio():
    result = CliRunner().invoke(command, ["--people", "300", "--hold", "0.05", "--gap", "0.05"])
    assert result.exit_code == 0, result.output
    assert "ingest rate, no other writer (baseline)" in result.output
    row = next(line for line in result.output.splitlines() if line.startswith(" records ingested"))
    assert int(row.split("|")[1].strip().replace(",", "")) > 1000
