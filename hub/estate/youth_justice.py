"""`youth_justice`: the youth offending service's case store, served by a REST stand-in."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

from hub.estate.context import BufferedInserts, EstateContext, IdSequence, open_new_sqlite
from hub.estate.messiness import Profile, observe
from hub.estate.population import Household, TruePerson

SYSTEM = "youth_justice"
DB_NAME = "youth_justice.db"
PROFILE = Profile(keeps_nhs=0.7, typo=0.03, diminutive=0.2, swap_names=0.01, transpose_dob=0.02,
                  stale_address=0.2, defects=("missing_surname", "bad_nhs_checksum", "future_date"))
SCHEMA = """
CREATE TABLE young_people (id TEXT PRIMARY KEY, given_name TEXT, family_name TEXT, alias TEXT,
  date_of_birth TEXT, sex TEXT NOT NULL, nhs_number TEXT, address_lines TEXT NOT NULL, postcode TEXT,
  ethnicity TEXT, updated_at TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 1);
CREATE TABLE orders (id TEXT PRIMARY KEY, young_person_id TEXT NOT NULL REFERENCES young_people,
  type TEXT NOT NULL, start_date TEXT, end_date TEXT, status TEXT NOT NULL, officer TEXT,
  updated_at TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 1);
"""
INDEXES = """
CREATE INDEX ix_young_people_updated ON young_people (updated_at, id);
CREATE INDEX ix_orders_updated ON orders (updated_at, id);
CREATE INDEX ix_orders_young_person ON orders (young_person_id);
"""
YP_COLUMNS = ("id", "given_name", "family_name", "alias", "date_of_birth", "sex", "nhs_number", "address_lines",
              "postcode", "ethnicity", "updated_at", "version")
ORDER_COLUMNS = ("id", "young_person_id", "type", "start_date", "end_date", "status", "officer", "updated_at",
                 "version")
ORDER_TYPES = (("YC", 30), ("YCC", 20), ("RO", 25), ("YRO", 20), ("DTO", 5))
SEX = {"M": "male", "F": "female"}


def iso_z(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def connect(data_dir: str | Path) -> sqlite3.Connection:
    """The stand-in's database in an estate (or in its `youth_justice` folder)."""
    path = Path(data_dir)
    path = path / DB_NAME if (path / DB_NAME).exists() else path / SYSTEM / DB_NAME
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    return conn


class YouthJusticeWriter:
    def __init__(self, root: Path, ctx: EstateContext) -> None:
        self.ctx = ctx
        self.conn = open_new_sqlite(root / SYSTEM / DB_NAME, SCHEMA)
        self.people = BufferedInserts(self.conn, "young_people", YP_COLUMNS)
        self.orders = BufferedInserts(self.conn, "orders", ORDER_COLUMNS)
        self.yp_ids = IdSequence(ctx.rng, 101, 3)
        self.order_ids = IdSequence(ctx.rng, 11, 2)

    def _moment(self, on: dt.date) -> str:
        r = self.ctx.rng.randrange(86400)
        return iso_z(dt.datetime.combine(on, dt.time(r // 3600, r // 60 % 60, r % 60)))

    def add(self, household: Household, members: list[TruePerson]) -> None:
        ctx, rng = self.ctx, self.ctx.rng
        for person in members:
            view = observe(rng, person, household, PROFILE, ctx.malformed_rate, ctx.as_of,
                           ctx.defect_due(SYSTEM))
            yp_id = f"YJ{self.yp_ids.next():06d}"
            tenth = person.dob + dt.timedelta(days=3653)
            first = ctx.date_between(max(tenth, ctx.as_of - dt.timedelta(days=1800)), ctx.as_of)
            a = view.address
            self.people.add((yp_id, view.given, view.family, view.known_as,
                             view.dob.isoformat() if view.dob else None,
                             SEX[view.sex] if rng.random() > 0.01 else "unknown", view.nhs,
                             json.dumps(a.lines), a.postcode, person.ethnicity if rng.random() < 0.85 else None,
                             self._moment(ctx.date_between(first, ctx.as_of)), rng.choice((1, 1, 1, 2, 3))))
            ctx.truth.row(SYSTEM, "young-people", yp_id, person.person_id, "person", view.defect)
            start = first
            for _ in range(rng.choices((1, 2, 3), (60, 30, 10))[0]):
                if start >= ctx.as_of:
                    break
                kind = rng.choices([t for t, _ in ORDER_TYPES], [w for _, w in ORDER_TYPES])[0]
                end = start + dt.timedelta(days=rng.randrange(90, 720))
                status = "active" if end >= ctx.as_of else rng.choices(
                    ("completed", "breached", "revoked"), (80, 15, 5))[0]
                order_id = f"ORD{self.order_ids.next():06d}"
                self.orders.add((order_id, yp_id, kind, start.isoformat(),
                                 None if status == "active" else end.isoformat(), status,
                                 f"{rng.choice('ABCDEHJKLMNPRST')}. {rng.choice(ctx.pools.workers)[1].split()[-1]}",
                                 self._moment(min(end, ctx.as_of) if status != "active" else start), 1))
                ctx.truth.row(SYSTEM, "orders", order_id, person.person_id, "involvement")
                start = end + dt.timedelta(days=rng.randrange(10, 300))

    def close(self) -> None:
        self.people.flush()
        self.orders.flush()
        self.conn.executescript(INDEXES)
        self.conn.commit()
        self.conn.close()
