"""What every system writer shares: the seeded random stream, the pools, the ground truth."""

from __future__ import annotations

import csv
import datetime as dt
import random
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.estate.pools import Pools

TRUTH_COLUMNS = ("system", "entity", "source_id", "person_id", "kind", "defect")


class TruthRecorder:
    """Streams `truth.csv` and counts rows per system and entity for the manifest."""

    def __init__(self, path: Path, append: bool = False) -> None:
        self._file = path.open("a" if append else "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file, lineterminator="\n")
        if not append:
            self._csv.writerow(TRUTH_COLUMNS)
        self.counts: dict[str, Counter] = defaultdict(Counter)
        self.malformed: dict[str, Counter] = defaultdict(Counter)

    def row(self, system: str, entity: str, source_id: object, person_id: str, kind: str,
            defect: str = "") -> None:
        self._csv.writerow((system, entity, source_id, person_id, kind, defect))
        self.counts[system][entity] += 1
        if defect:
            self.malformed[system][entity] += 1

    def close(self) -> None:
        self._file.close()


@dataclass
class EstateContext:
    rng: random.Random
    pools: Pools
    as_of: dt.date
    malformed_rate: float
    truth: TruthRecorder
    files: dict[str, list[str]] = field(default_factory=dict)

    def date_between(self, start: dt.date, end: dt.date) -> dt.date:
        days = (end - start).days
        return start + dt.timedelta(days=self.rng.randrange(days)) if days > 0 else start

    def timestamp(self, on: dt.date) -> str:
        r = self.rng.randrange(8 * 3600, 18 * 3600)
        return f"{on.isoformat()} {r // 3600:02d}:{r // 60 % 60:02d}:{r % 60:02d}"

    def recent(self, since: dt.date) -> dt.date:
        """A date in the last few years and not before `since`."""
        return self.date_between(max(since, self.as_of - dt.timedelta(days=6 * 365)), self.as_of)

    person_rows: dict[str, int] = field(default_factory=dict)

    def defect_due(self, system: str) -> bool:
        """True for a system's third person row when none of its rows is malformed yet, so every
        system of even a tiny estate gives the quarantine work (only when the rate is not 0)."""
        n = self.person_rows[system] = self.person_rows.get(system, 0) + 1
        return bool(self.malformed_rate) and n == 3 and not self.truth.malformed[system]


class BufferedInserts:
    """executemany in chunks, so a million rows never sit in memory at once."""

    def __init__(self, conn: sqlite3.Connection, table: str, columns: Sequence[str], chunk: int = 2000) -> None:
        self.conn, self.chunk = conn, chunk
        self.sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        self.rows: list[tuple[Any, ...]] = []

    def add(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.conn.executemany(self.sql, self.rows)
            self.rows.clear()


def open_new_sqlite(path: Path, schema: str) -> sqlite3.Connection:
    """A fresh database file with `schema`, tuned for one bulk write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.executescript(schema)
    conn.execute("BEGIN")
    return conn


class IdSequence:
    """Local ids with the gaps real systems have (deleted rows, test records)."""

    def __init__(self, rng: random.Random, start: int, max_gap: int = 1) -> None:
        self.rng, self.value, self.max_gap = rng, start - 1, max_gap

    def next(self) -> int:
        self.value += 1 if self.max_gap <= 1 else self.rng.randrange(1, self.max_gap + 1)
        return self.value
