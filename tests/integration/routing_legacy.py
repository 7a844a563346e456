"""Two small legacy systems for the routing tests: SQLite databases read and written by the
real `sql` adapter kind through mapping files, as a council's systems would be."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

from hub.bootstrap import Hub, bootstrap
from hub.config import HubConfig
from hub.routing_worker import drain
from hub.worker import run_worker

MAPPING = """
[system]
name = "{name}"
kind = "sql"
title = "{name} (test legacy system)"
service_category = "{category}"
schedule = "every 5m"
trust_rank = {rank}

[source]
url = "sqlite:///{db}"

[entities.clients]
key = "client_id"
table = "clients"

[entities.clients.person.fields]
"names[0].given" = "forename"
"names[0].family" = {{ field = "surname", required = true }}
birth_date = {{ field = "dob", date = ["%Y-%m-%d"] }}
"identifiers[local]" = "client_id"
"addresses[0].lines" = {{ fields = ["line1"], transforms = ["compact"] }}
"addresses[0].postcode" = "postcode"

[entities.clients.write]
table = "clients"
key = "client_id"
version_column = "row_version"
unmapped = "ignore"
columns = {{ "person.names[0].given" = "forename", "person.names[0].family" = "surname", "person.birth_date" = "dob", "person.addresses[0].lines[0]" = "line1", "person.addresses[0].postcode" = "postcode" }}

[entities.episodes]
key = "episode_id"
table = "episodes"

[entities.episodes.involvements]
source_id = "ep-{{episode_id}}"
subject = "client_id"
[entities.episodes.involvements.fields]
service_category = {{ const = "{category}" }}
kind = {{ const = "episode" }}
started_on = "started"
ended_on = "ended"
status = {{ field = "ended", transforms = [{{ if_present = "closed" }}], default = "open" }}
team = "team"

[entities.episodes.write]
table = "episodes"
key = "episode_id"
unmapped = "ignore"
columns = {{ "involvement.subject" = "client_id", "involvement.started_on" = "started", "involvement.ended_on" = "ended", "involvement.team" = "team" }}
"""

SCHEMA = """
CREATE TABLE clients (client_id TEXT PRIMARY KEY, forename TEXT, surname TEXT, dob TEXT, line1 TEXT,
                      postcode TEXT, row_version INTEGER DEFAULT 1);
CREATE TABLE episodes (episode_id INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT, started TEXT, ended TEXT,
                       team TEXT);
"""


class LegacySystem:
    """One legacy SQLite database the test can read and change behind the hub's back."""

    def __init__(self, directory: Path, name: str, category: str, rank: int = 1) -> None:
        self.name = name
        self.db = directory / f"{name}.db"
        with self.connect() as c:
            c.executescript(SCHEMA)
        (directory / "systems").mkdir(exist_ok=True)
        (directory / "systems" / f"{name}.toml").write_text(
            MAPPING.format(name=name, category=category, rank=rank, db=self.db))

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.db, isolation_level=None)

    def client(self, client_id: str, forename: str, surname: str | None, dob: str = "2015-03-02",
               line1: str = "1 High Street", postcode: str = "AB1 2CD") -> None:
        with self.connect() as c:
            c.execute("INSERT OR REPLACE INTO clients VALUES (?, ?, ?, ?, ?, ?, 1)",
                      (client_id, forename, surname, dob, line1, postcode))

    def episode(self, client_id: str, started: dt.date, team: str | None = None, ended: dt.date | None = None) -> None:
        with self.connect() as c:
            c.execute("INSERT INTO episodes (client_id, started, ended, team) VALUES (?, ?, ?, ?)",
                      (client_id, started.isoformat(), ended.isoformat() if ended else None, team))

    def row(self, client_id: str) -> dict[str, Any]:
        with self.connect() as c:
            c.row_factory = sqlite3.Row
            return dict(c.execute("SELECT * FROM clients WHERE client_id = ?", (client_id,)).fetchone())

    def execute(self, sql: str, *params: Any) -> None:
        with self.connect() as c:
            c.execute(sql, params)


def make_hub(store: Any, directory: Path, **routing: Any) -> Hub:
    """A hub on `store` whose systems are the mapping files in `directory/systems`."""
    config = HubConfig.model_validate({"store": {"url": store.url},
                                       "bus": {"base_delay_s": 0.01, "max_delay_s": 0.02, "max_attempts": 3},
                                       "systems": {"dir": str(directory / "systems")}})
    return bootstrap(config, migrate=False)


def sync(hub: Hub, *systems: str) -> None:
    """Ingest the systems, mirror the records, then run the routing worker until idle."""
    for name in systems:
        hub.ingest.run(name)
    hub.relay.relay_all()
    run_worker(hub.bus, hub.worker, batch_size=100, idle_timeout_s=0.2)
    drain(hub.bus, hub.relay, hub.extras["routing_worker"], idle_timeout_s=0.2)
