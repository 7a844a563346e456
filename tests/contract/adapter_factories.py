"""Tiny legacy sources (the same five people) for the sql, xml_files and rest adapter kinds,
and an in-memory `AdapterState` that commits batches the way the hub's ingest does.

Each factory takes pytest's `tmp_path` and returns a `KindSource`: it builds the adapter
from a mapping-file-shaped `source`/`entities` pair through the kind's own `build()`, and
can change a person, remove one, or add a malformed record in the legacy source.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

from adapters.kinds import kind_module
from adapters.port import AdapterState, ExtractBatch, RawChange, SourceAdapter, SourceFailure
from canonical.records import content_hash

PEOPLE: list[dict[str, Any]] = [
    {"id": "P1", "forename": "Amara", "surname": "Okafor", "dob": "2012-03-04", "sex": "F"},
    {"id": "P2", "forename": "Ben", "surname": "Hughes", "dob": "2010-11-21", "sex": "M"},
    {"id": "P3", "forename": "Chloe", "surname": "Nowak", "dob": "2015-06-30", "sex": "F"},
    {"id": "P4", "forename": "Dylan", "surname": "Price", "dob": "2009-01-15", "sex": "M"},
    {"id": "P5", "forename": "Erin", "surname": "Walsh", "dob": "2013-08-08", "sex": "F"},
]
FIELDS = ("forename", "surname", "dob", "sex")
BASE_TIME = dt.datetime(2024, 1, 1, 9, 0, 0)


# ---- the hub's side, in memory ----------------------------------------------------------------
@dataclass
class MemoryState(AdapterState):
    """Cursors and row hashes as the hub commits them: only when a batch is committed."""

    cursors: dict[str, str] = field(default_factory=dict)
    hashes: dict[str, dict[str, str]] = field(default_factory=dict)

    def cursor(self, key: str) -> str | None:
        return self.cursors.get(key)

    def row_hashes(self, entity: str) -> dict[str, str]:
        return dict(self.hashes.get(entity, {}))

    def commit(self, batch: ExtractBatch) -> None:
        for change in batch.changes:
            rows = self.hashes.setdefault(change.entity, {})
            if change.deleted:
                rows.pop(change.source_id, None)
            else:
                rows[change.source_id] = content_hash(dict(change.raw or {}))
        self.cursors.update(batch.checkpoint)


@dataclass
class RunResult:
    changes: list[RawChange] = field(default_factory=list)
    failures: list[SourceFailure] = field(default_factory=list)
    unchanged: int = 0
    batches: list[ExtractBatch] = field(default_factory=list)

    @property
    def upserted(self) -> dict[str, dict[str, Any]]:
        return {c.source_id: dict(c.raw) for c in self.changes if not c.deleted}

    @property
    def deleted(self) -> list[str]:
        return [c.source_id for c in self.changes if c.deleted]


class Crash(RuntimeError):
    """Raised by `run(..., crash_after=n)` to stand for the process dying before batch n+1 commits."""


def run(adapter: SourceAdapter, state: MemoryState, *, crash_after: int | None = None) -> RunResult:
    """Drive `adapter.extract` as the hub does: each batch is committed before the next is asked for.

    With `crash_after=n`, the (n+1)th batch is received but never committed and `Crash` is raised."""
    result = RunResult()
    for i, batch in enumerate(adapter.extract(state)):
        if crash_after is not None and i >= crash_after:
            raise Crash(f"crashed before committing batch {i + 1}")
        state.commit(batch)
        result.batches.append(batch)
        result.changes += batch.changes
        result.failures += batch.failures
        result.unchanged += batch.unchanged
    return result


# ---- sources ----------------------------------------------------------------------------------
class KindSource:
    """One legacy source holding PEOPLE; subclasses say how to edit it."""

    kind: str
    entity = "children"

    def __init__(self, tmp_path: pathlib.Path) -> None:
        self.tmp_path = tmp_path
        self.env: dict[str, str] = {}

    def config(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        raise TypeError(f"{type(self).__name__} must define config()")

    def adapter(self) -> SourceAdapter:
        source, entities = self.config()
        return kind_module(self.kind).build("contract_system", source, entities, base_dir=self.tmp_path,
                                            env=self.env)

    def change(self, person_id: str, **values: Any) -> None: ...

    def remove(self, person_id: str) -> None: ...

    def add_malformed(self) -> None: ...

    def close(self) -> None:
        return None


class SqlSource(KindSource):
    """A SQLite file, or a PostgreSQL database when `url` is given."""

    kind = "sql"

    def __init__(self, tmp_path: pathlib.Path, *, watermark: bool, url: str | None = None,
                 batch_size: int = 2, capture: bool = False) -> None:
        super().__init__(tmp_path)
        import sqlalchemy as sa

        self.watermark, self.batch_size, self.capture = watermark, batch_size, capture
        self.url = url or f"sqlite:///{tmp_path}/legacy.db"
        self.engine = sa.create_engine(self.url)
        self._ticks = 0
        with self.engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE child (id VARCHAR(20), forename VARCHAR(80), "
                                 "surname VARCHAR(80), dob VARCHAR(20), sex VARCHAR(5), modified_at TIMESTAMP, "
                                 "row_version INTEGER NOT NULL DEFAULT 1)"))
            for p in PEOPLE:
                conn.execute(sa.text("INSERT INTO child (id, forename, surname, dob, sex, modified_at) "
                                     "VALUES (:id, :forename, :surname, :dob, :sex, :m)"),
                             {**p, "m": BASE_TIME})

    def config(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        entity: dict[str, Any] = {"table": "child", "key": "id"}
        if self.watermark:
            entity |= {"watermark": "modified_at", "deletion_scan": True}
        source: dict[str, Any] = {"url": self.url, "batch_size": self.batch_size}
        if self.capture:  # trigger-based change capture: the table's own key is what changes name
            source["capture"] = {"mode": "triggers", "tables": {"child": ["id"]}}
        return source, {self.entity: entity}

    def _now(self) -> dt.datetime:
        self._ticks += 1
        return BASE_TIME + dt.timedelta(minutes=self._ticks)

    def execute(self, sql: str, **params: Any) -> None:
        import sqlalchemy as sa

        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), params)

    def change(self, person_id: str, **values: Any) -> None:
        sets = ", ".join(f"{k} = :{k}" for k in values)
        self.execute(f"UPDATE child SET {sets}, modified_at = :m WHERE id = :id", **values, m=self._now(),
                     id=person_id)

    def remove(self, person_id: str) -> None:
        self.execute("DELETE FROM child WHERE id = :id", id=person_id)

    def add_malformed(self) -> None:
        # Legacy tables often lack constraints: a row without its key is the SQL malformed record.
        self.execute("INSERT INTO child (id, forename, surname, modified_at) VALUES (NULL, 'No', 'Key', :m)",
                     m=self._now())

    def close(self) -> None:
        self.engine.dispose()


class XmlSource(KindSource):
    """A drop folder receiving full snapshot exports."""

    kind = "xml_files"

    def __init__(self, tmp_path: pathlib.Path, *, mode: str = "snapshot", batch_size: int = 2) -> None:
        super().__init__(tmp_path)
        self.mode, self.batch_size = mode, batch_size
        self.inbox = tmp_path / "inbox"
        self.inbox.mkdir()
        self.people = [dict(p) for p in PEOPLE]
        self.extra: list[str] = []
        self._drops = 0
        self.drop()

    def config(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        source = {"inbox": str(self.inbox), "archive": str(self.tmp_path / "archive"),
                  "failed": str(self.tmp_path / "failed"), "mode": self.mode, "batch_size": self.batch_size}
        entity = {"record_xpath": "/export/children/child", "id_xpath": "@id",
                  "fields": {f: f"{f}/text()" for f in FIELDS}}
        return source, {self.entity: entity}

    def document(self) -> str:
        rows = "".join(f'<child id="{p["id"]}">' + "".join(f"<{f}>{p[f]}</{f}>" for f in FIELDS) + "</child>"
                       for p in self.people)
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<export><children>{rows}{"".join(self.extra)}' \
               f"</children></export>\n"

    def drop(self) -> pathlib.Path:
        self._drops += 1
        path = self.inbox / f"children_{self._drops:04d}.xml"
        path.write_text(self.document(), encoding="utf-8")
        return path

    def change(self, person_id: str, **values: Any) -> None:
        next(p for p in self.people if p["id"] == person_id).update(values)
        self.drop()

    def remove(self, person_id: str) -> None:
        self.people = [p for p in self.people if p["id"] != person_id]
        self.drop()

    def add_malformed(self) -> None:
        self.extra.append("<child><forename>No</forename><surname>Identifier</surname></child>")
        self.drop()


class RestSource(KindSource):
    """A paginated JSON API served through `responses` (the caller activates the mock)."""

    kind = "rest"
    BASE = "https://yj.example.test/api"

    def __init__(self, tmp_path: pathlib.Path, mock: Any, *, pagination: str = "page",
                 page_size: int = 2) -> None:
        super().__init__(tmp_path)
        self.mock, self.pagination, self.page_size = mock, pagination, page_size
        self.env = {"YJ_API_TOKEN": "contract-token"}
        self.people = [dict(p, updated_at=BASE_TIME.isoformat()) for p in PEOPLE]
        self.extra: list[dict[str, Any]] = []
        self.requests: list[Any] = []
        mock.add_callback("GET", re.compile(re.escape(self.BASE) + r"/children.*"), callback=self._serve)

    def config(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        source = {"base_url": self.BASE, "token_env": "YJ_API_TOKEN", "batch_size": 2,
                  "retry": {"max_attempts": 2, "backoff_s": 0.0}}
        entity = {"path": "/children", "items_key": "data", "id_field": "id",
                  "pagination": {"style": self.pagination, "page_size": self.page_size}}
        return source, {self.entity: entity}

    def _serve(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.requests.append(request)
        items = self.people + self.extra
        query = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
        if self.pagination == "cursor":
            start = int(query.get("cursor") or 0)
            page = items[start:start + self.page_size]
            following = start + self.page_size
            body = {"data": page, "next_cursor": str(following) if following < len(items) else None}
            return 200, {}, json.dumps(body)
        number = int(query.get("page", 1))
        page = items[(number - 1) * self.page_size:number * self.page_size]
        headers: dict[str, str] = {}
        if self.pagination == "link" and number * self.page_size < len(items):
            headers["Link"] = f'<{self.BASE}/children?page={number + 1}>; rel="next"'
        return 200, headers, json.dumps({"data": page})

    def change(self, person_id: str, **values: Any) -> None:
        next(p for p in self.people if p["id"] == person_id).update(values)

    def remove(self, person_id: str) -> None:
        self.people = [p for p in self.people if p["id"] != person_id]

    def add_malformed(self) -> None:
        self.extra.append({"forename": "No", "surname": "Identifier"})


def sqlite_rowhash(tmp_path: pathlib.Path) -> SqlSource:
    return SqlSource(tmp_path, watermark=False)


def sqlite_watermark(tmp_path: pathlib.Path) -> SqlSource:
    return SqlSource(tmp_path, watermark=True)


class PostgresSqlSource(SqlSource):
    """The same table in a fresh PostgreSQL database, dropped on close."""

    def __init__(self, tmp_path: pathlib.Path, *, watermark: bool, capture: bool = False) -> None:
        from tests.support.services import create_pg_database

        super().__init__(tmp_path, watermark=watermark, url=create_pg_database("hub_adapter"), capture=capture)

    def close(self) -> None:
        from tests.support.services import drop_pg_database

        super().close()
        drop_pg_database(self.url)


def postgresql_watermark(tmp_path: pathlib.Path) -> SqlSource:
    return PostgresSqlSource(tmp_path, watermark=True)


def postgresql_rowhash(tmp_path: pathlib.Path) -> SqlSource:
    return PostgresSqlSource(tmp_path, watermark=False)


def sqlite_capture(tmp_path: pathlib.Path) -> SqlSource:
    return SqlSource(tmp_path, watermark=False, capture=True)


def postgresql_capture(tmp_path: pathlib.Path) -> SqlSource:
    return PostgresSqlSource(tmp_path, watermark=False, capture=True)


def xml_snapshot(tmp_path: pathlib.Path) -> XmlSource:
    return XmlSource(tmp_path)


FACTORIES: dict[str, Callable[[pathlib.Path], KindSource]] = {
    "sql-rowhash": sqlite_rowhash,
    "sql-watermark": sqlite_watermark,
    "sql-rowhash-postgresql": postgresql_rowhash,
    "sql-watermark-postgresql": postgresql_watermark,
    "sql-capture": sqlite_capture,
    "sql-capture-postgresql": postgresql_capture,
    "xml_files": xml_snapshot,
}
