"""A lookup index over `truth.csv`, built once on demand, for tools that need to find a
legacy row's true person (or a random row of an entity) without reading the whole file."""

from __future__ import annotations

import csv
import random
import sqlite3
from pathlib import Path

from hub.estate.context import TRUTH_COLUMNS

INDEX_NAME = ".truth_index.sqlite"


class TruthIndex:
    def __init__(self, estate_dir: str | Path) -> None:
        self.root = Path(estate_dir)
        path = self.root / INDEX_NAME
        truth = self.root / "truth.csv"
        stale = not path.exists() or path.stat().st_mtime < truth.stat().st_mtime
        if stale:
            path.unlink(missing_ok=True)
        self.conn = sqlite3.connect(path)
        if stale:
            self._build(truth)

    def _build(self, truth: Path) -> None:
        self.conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                                "CREATE TABLE truth (system TEXT, entity TEXT, source_id TEXT, person_id TEXT,"
                                " kind TEXT, defect TEXT);")
        with truth.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            next(reader)
            while chunk := [tuple(r) for _, r in zip(range(50_000), reader)]:
                self.conn.executemany("INSERT INTO truth VALUES (?, ?, ?, ?, ?, ?)", chunk)
        self.conn.executescript("CREATE INDEX ix_truth_row ON truth (system, entity, source_id);"
                                "CREATE INDEX ix_truth_pick ON truth (system, entity, defect);")
        self.conn.commit()

    def person(self, system: str, entity: str, source_id: object) -> str | None:
        row = self.conn.execute("SELECT person_id FROM truth WHERE system = ? AND entity = ? AND source_id = ?",
                                (system, entity, str(source_id))).fetchone()
        return row[0] if row else None

    def pick(self, rng: random.Random, system: str, entity: str) -> tuple[str, str] | None:
        """A random (source_id, person_id) of an entity, never a deliberately malformed row."""
        where = "system = ? AND entity = ? AND defect = ''"
        low, high = self.conn.execute(f"SELECT MIN(rowid), MAX(rowid) FROM truth WHERE {where}",
                                      (system, entity)).fetchone()
        if low is None:
            return None
        row = self.conn.execute(f"SELECT source_id, person_id FROM truth WHERE {where} AND rowid >= ? "
                                "ORDER BY rowid LIMIT 1", (system, entity, rng.randint(low, high))).fetchone()
        return (row[0], row[1]) if row else None

    def add(self, rows: list[tuple[str, str, str, str, str, str]]) -> None:
        """Record new legacy rows in `truth.csv` and in the index."""
        with (self.root / "truth.csv").open("a", newline="", encoding="utf-8") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)
        self.conn.executemany(f"INSERT INTO truth VALUES ({', '.join('?' * len(TRUTH_COLUMNS))})", rows)
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()
