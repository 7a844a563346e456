"""The youth justice REST stand-in: a small Flask app over the estate's `youth_justice.db`.

It behaves like the vendor API the hub's `rest` adapter must cope with: bearer token,
cursor pagination with a `Link` header, an `updated_since` filter, and write
endpoints (POST/PATCH with optimistic `If-Match` versions) for write-back.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from hub.estate.youth_justice import ORDER_COLUMNS, YP_COLUMNS, connect, iso_z

DEFAULT_TOKEN = "yj-demo-token"
MAX_LIMIT = 1000
SEXES = ("male", "female", "unknown")
ORDER_TYPES = ("YC", "YCC", "RO", "YRO", "DTO")
ORDER_STATUSES = ("active", "completed", "breached", "revoked")


class BadRequest(Exception):
    """The request cannot be served as sent; the message says why."""


def _young_person(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "name": {"given": row["given_name"], "family": row["family_name"], "alias": row["alias"]},
            "dateOfBirth": row["date_of_birth"], "sex": row["sex"], "nhsNumber": row["nhs_number"],
            "address": {"lines": json.loads(row["address_lines"]), "postcode": row["postcode"]},
            "ethnicity": row["ethnicity"], "updatedAt": row["updated_at"], "version": row["version"]}


def _order(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "youngPersonId": row["young_person_id"], "type": row["type"],
            "startDate": row["start_date"], "endDate": row["end_date"], "status": row["status"],
            "officer": row["officer"], "updatedAt": row["updated_at"], "version": row["version"]}


def _iso_date(value: Any, field: str) -> str | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise BadRequest(f"{field} must be a date YYYY-MM-DD, not {value!r}") from None


def _one_of(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise BadRequest(f"{field} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _young_person_columns(body: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """Column values from a (partial, when `current` is given) young-person body."""
    cols: dict[str, Any] = {}
    name = body.get("name")
    if name is not None:
        if not isinstance(name, dict):
            raise BadRequest("name must be an object with given, family, alias")
        for key, col in (("given", "given_name"), ("family", "family_name"), ("alias", "alias")):
            if key in name:
                cols[col] = name[key]
    if "dateOfBirth" in body:
        cols["date_of_birth"] = _iso_date(body["dateOfBirth"], "dateOfBirth")
    if "sex" in body:
        cols["sex"] = _one_of(body["sex"], SEXES, "sex")
    for key, col in (("nhsNumber", "nhs_number"), ("ethnicity", "ethnicity")):
        if key in body:
            cols[col] = body[key]
    address = body.get("address")
    if address is not None:
        if not isinstance(address, dict):
            raise BadRequest("address must be an object with lines and postcode")
        if "lines" in address:
            cols["address_lines"] = json.dumps(list(address["lines"] or []))
        if "postcode" in address:
            cols["postcode"] = address["postcode"]
    if current is None:
        if not (cols.get("given_name") or cols.get("family_name")):
            raise BadRequest("name.given or name.family is required")
        cols.setdefault("sex", "unknown")
        cols.setdefault("address_lines", "[]")
    return cols


def _order_columns(body: dict[str, Any], current: dict[str, Any] | None, db: sqlite3.Connection) -> dict[str, Any]:
    cols: dict[str, Any] = {}
    if "youngPersonId" in body:
        if not db.execute("SELECT 1 FROM young_people WHERE id = ?", (body["youngPersonId"],)).fetchone():
            raise BadRequest(f"no young person {body['youngPersonId']!r}")
        cols["young_person_id"] = body["youngPersonId"]
    if "type" in body:
        cols["type"] = _one_of(body["type"], ORDER_TYPES, "type")
    if "status" in body:
        cols["status"] = _one_of(body["status"], ORDER_STATUSES, "status")
    for key, col in (("startDate", "start_date"), ("endDate", "end_date")):
        if key in body:
            cols[col] = _iso_date(body[key], key)
    if "officer" in body:
        cols["officer"] = body["officer"]
    if current is None:
        for required in ("young_person_id", "type"):
            if required not in cols:
                raise BadRequest(f"{'youngPersonId' if required == 'young_person_id' else 'type'} is required")
        cols.setdefault("status", "active")
    return cols


@dataclass(frozen=True)
class _Resource:
    path: str
    table: str
    prefix: str
    columns: tuple[str, ...]
    to_json: Callable[[sqlite3.Row], dict[str, Any]]
    filters: dict[str, str]  # query parameter -> column


RESOURCES = (
    _Resource("young-people", "young_people", "YJ", YP_COLUMNS, _young_person, {}),
    _Resource("orders", "orders", "ORD", ORDER_COLUMNS, _order, {"young_person_id": "young_person_id"}),
)


def _encode_cursor(updated_at: str, ident: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([updated_at, ident]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        updated_at, ident = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return str(updated_at), str(ident)
    except (ValueError, TypeError, binascii.Error):
        raise BadRequest("cursor is not one this service issued") from None


def _since(value: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"updated_since must be an ISO 8601 timestamp, not {value!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return iso_z(moment)


def _limit(value: str | None) -> int:
    try:
        limit = int(value) if value is not None else 100
    except ValueError:
        raise BadRequest(f"limit must be an integer, not {value!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def _now() -> str:
    return iso_z(dt.datetime.now(dt.UTC).replace(tzinfo=None))


def make_youth_justice_app(data_dir: str | Path, token: str | None = None) -> Flask:
    """The stand-in over the estate (or `youth_justice` folder) at `data_dir`.
    `token` defaults to env `YJ_API_TOKEN`, else `yj-demo-token`."""
    app = Flask("youth_justice_standin")
    expected = token or os.environ.get("YJ_API_TOKEN") or DEFAULT_TOKEN
    write_lock = threading.Lock()

    def db() -> sqlite3.Connection:
        if "yj_db" not in g:
            g.yj_db = connect(data_dir)
        return g.yj_db

    @app.teardown_appcontext
    def _close(_exc: BaseException | None) -> None:
        conn = g.pop("yj_db", None)
        if conn is not None:
            conn.close()

    @app.before_request
    def _authenticate() -> Response | None:
        if request.headers.get("Authorization", "") != f"Bearer {expected}":
            response = jsonify(error="unauthorized")
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="youth-justice"'
            return response
        return None

    @app.errorhandler(BadRequest)
    def _bad_request(exc: BadRequest) -> tuple[Response, int]:
        return jsonify(error="bad_request", detail=str(exc)), 400

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[Response, int]:
        return jsonify(error=exc.name.lower().replace(" ", "_"), detail=exc.description), exc.code or 500

    for res in RESOURCES:
        _routes(app, res, db, write_lock)
    return app


def _routes(app: Flask, res: _Resource, db: Callable[[], sqlite3.Connection], write_lock: threading.Lock) -> None:
    def fetch(ident: str) -> sqlite3.Row | None:
        return db().execute(f"SELECT * FROM {res.table} WHERE id = ?", (ident,)).fetchone()

    def not_found(ident: str) -> tuple[Response, int]:
        return jsonify(error="not_found", detail=f"no {res.path} record {ident!r}"), 404

    def list_view() -> Response:
        limit = _limit(request.args.get("limit"))
        where, params = [], []
        if since := request.args.get("updated_since"):
            where.append("updated_at >= ?")
            params.append(_since(since))
        if cursor := request.args.get("cursor"):
            after_ts, after_id = _decode_cursor(cursor)
            where.append("(updated_at > ? OR (updated_at = ? AND id > ?))")
            params += [after_ts, after_ts, after_id]
        for arg, col in res.filters.items():
            if (value := request.args.get(arg)) is not None:
                where.append(f"{col} = ?")
                params.append(value)
        sql = f"SELECT * FROM {res.table}{' WHERE ' + ' AND '.join(where) if where else ''} " \
              f"ORDER BY updated_at, id LIMIT ?"
        rows = db().execute(sql, [*params, limit + 1]).fetchall()
        page, more = rows[:limit], len(rows) > limit
        next_cursor = _encode_cursor(page[-1]["updated_at"], page[-1]["id"]) if more else None
        response = jsonify(data=[res.to_json(r) for r in page], next_cursor=next_cursor)
        if next_cursor:
            query = {k: v for k, v in request.args.items() if k != "cursor"}
            query.update(limit=str(limit), cursor=next_cursor)
            response.headers["Link"] = f'<{request.base_url}?{urlencode(query)}>; rel="next"'
        return response

    def one_view(ident: str) -> Response | tuple[Response, int]:
        row = fetch(ident)
        return jsonify(res.to_json(row)) if row else not_found(ident)

    def create_view() -> tuple[Response, int]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        with write_lock:
            conn = db()
            cols = (_young_person_columns(body, None) if res.table == "young_people"
                    else _order_columns(body, None, conn))
            last = conn.execute(f"SELECT MAX(CAST(SUBSTR(id, {len(res.prefix) + 1}) AS INTEGER)) FROM {res.table}"
                                ).fetchone()[0]
            cols.update(id=f"{res.prefix}{(last or 0) + 1:06d}", updated_at=_now(), version=1)
            conn.execute(f"INSERT INTO {res.table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                         list(cols.values()))
            conn.commit()
        response = jsonify(res.to_json(fetch(cols["id"])))
        response.headers["Location"] = f"{request.base_url}/{cols['id']}"
        return response, 201

    def patch_view(ident: str) -> Response | tuple[Response, int]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        with write_lock:
            conn = db()
            row = fetch(ident)
            if row is None:
                return not_found(ident)
            if_match = request.headers.get("If-Match")
            if if_match is not None and if_match.strip('"W/ ') != str(row["version"]):
                return jsonify(error="version_conflict", version=row["version"]), 409
            cols = (_young_person_columns(body, dict(row)) if res.table == "young_people"
                    else _order_columns(body, dict(row), conn))
            cols.update(updated_at=_now(), version=row["version"] + 1)
            conn.execute(f"UPDATE {res.table} SET {', '.join(f'{c} = ?' for c in cols)} WHERE id = ?",
                         [*cols.values(), ident])
            conn.commit()
        return jsonify(res.to_json(fetch(ident)))

    base = f"/api/v1/{res.path}"
    app.add_url_rule(base, f"{res.table}_list", list_view, methods=["GET"])
    app.add_url_rule(base, f"{res.table}_create", create_view, methods=["POST"])
    app.add_url_rule(f"{base}/<ident>", f"{res.table}_one", one_view, methods=["GET"])
    app.add_url_rule(f"{base}/<ident>", f"{res.table}_patch", patch_view, methods=["PATCH"])


class _QuietHandler(WSGIRequestHandler):
    """No access log on the console: tests and benchmarks make thousands of requests."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


@dataclass
class RunningServer:
    """The stand-in served on a background thread; `stop()` shuts it down."""

    server: BaseWSGIServer
    thread: threading.Thread
    token: str

    @property
    def port(self) -> int:
        return self.server.server_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)
        self.server.server_close()


def serve_youth_justice_in_thread(data_dir: str | Path, token: str | None = None, port: int = 0) -> RunningServer:
    """Serve the stand-in on 127.0.0.1 (a free port unless `port` is given) on a daemon thread."""
    token = token or os.environ.get("YJ_API_TOKEN") or DEFAULT_TOKEN
    server = make_server("127.0.0.1", port, make_youth_justice_app(data_dir, token), threaded=True,
                         request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="youth-justice-standin", daemon=True)
    thread.start()
    return RunningServer(server=server, thread=thread, token=token)
