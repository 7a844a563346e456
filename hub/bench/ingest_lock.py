"""`hub bench ingest-lock --people N`: the ingest's rate into a SQLite store while another process
holds the write lock part of the time, as a bulk link's write transactions do during a load,
against the same ingest with no other writer (the same-run baseline).

Each run ingests a fresh copy of one generated estate (the XML drops are moved once read) into a
fresh store: social care, early help, education, youth service and children's centres (the
youth justice REST stand-in needs a server and is left out).
"""

from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import click

from hub.bench.table import render
from hub.bootstrap import bootstrap
from hub.config import HubConfig
from hub.estate.generator import generate

SYSTEMS = ("social_care", "early_help", "education", "youth_service", "childrens_centres")
SYSTEMS_DIR = Path(__file__).resolve().parents[2] / "systems"


def hold_lock(db: str, hold_s: float, gap_s: float, stop) -> None:
    """Take the store's write lock for `hold_s`, let go for `gap_s`, until `stop` is set."""
    con = sqlite3.connect(db, timeout=60, isolation_level=None)
    con.execute("CREATE TABLE IF NOT EXISTS bench_lock_holder (x)")
    while not stop.is_set():
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO bench_lock_holder VALUES (1)")
        time.sleep(hold_s)
        con.execute("COMMIT")
        time.sleep(gap_s)
    con.close()


def ingest_rate(estate: Path, work: Path, hold_s: float, gap_s: float) -> tuple[int, float]:
    """(records announced, seconds) for every system of a copy of `estate`, with a process
    holding the write lock `hold_s` of every `hold_s + gap_s` (none when `hold_s` is 0)."""
    shutil.copytree(estate, work / "estate")
    hub = bootstrap(HubConfig.model_validate({"store": {"url": f"sqlite:///{work}/hub.db"},
                                              "systems": {"dir": str(SYSTEMS_DIR), "estate_dir": str(work / "estate")}}))
    stop = multiprocessing.Event()
    holder = multiprocessing.Process(target=hold_lock, args=(str(work / "hub.db"), hold_s, gap_s, stop)) \
        if hold_s > 0 else None
    try:
        if holder is not None:
            holder.start()
        started, records = time.perf_counter(), 0
        for system in SYSTEMS:
            records += hub.ingest.run(system).records_announced
        return records, time.perf_counter() - started
    finally:
        stop.set()
        if holder is not None:
            holder.join()
        hub.close()


@click.command("ingest-lock")
@click.option("--people", default=20_000, show_default=True)
@click.option("--hold", "hold_s", default=0.5, show_default=True, help="seconds the other writer holds the lock")
@click.option("--gap", "gap_s", default=0.2, show_default=True, help="seconds it lets go between")
@click.option("--seed", default=5, show_default=True)
def command(people: int, hold_s: float, gap_s: float, seed: int) -> None:
    """Ingest rate beside another writer, as a ratio to the rate alone."""
    with tempfile.TemporaryDirectory(prefix="hub-bench-ingest-lock-") as tmp:
        root = Path(tmp)
        generate(root / "estate", people=people, seed=seed)
        alone_records, alone_s = ingest_rate(root / "estate", root / "alone", 0.0, 0.0)
        beside_records, beside_s = ingest_rate(root / "estate", root / "beside", hold_s, gap_s)
    alone, beside = alone_records / alone_s, beside_records / beside_s
    click.echo(render(["figure", "value", "unit", "baseline", "hub / baseline"], [
        ["records ingested (five systems)", beside_records, "records", "", ""],
        ["ingest rate, no other writer (baseline)", alone, "records/s", "", ""],
        [f"ingest rate, another writer holding the lock {hold_s} s of every {hold_s + gap_s:g} s", beside,
         "records/s", alone, beside / alone],
        ["ingest seconds", beside_s, "s", alone_s, beside_s / alone_s],
    ]))
