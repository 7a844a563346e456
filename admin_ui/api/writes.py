"""/api/v1/write: the front-end business applications write persons and involvements through
the hub. Where each change goes is the system-of-record matrix's decision (hub.writes)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from admin_ui.app import current_hub
from admin_ui.auth import current_user, require_permission
from hub.writes import WriteError, WriteOutcome, WriteService

bp = Blueprint("api_writes", __name__, url_prefix="/api/v1/write")


def _writes() -> WriteService:
    return current_hub().extras["writes"]


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return {}
    if "version" not in body and request.headers.get("If-Match"):
        body["version"] = request.headers["If-Match"].strip('"W/')
    return body


def _answer(call: Any) -> Any:
    try:
        outcome: WriteOutcome = call(idempotency_key=request.headers.get("Idempotency-Key") or None,
                                     who=current_user().username)
    except WriteError as exc:
        return jsonify(exc.body()), exc.status
    response = jsonify(outcome.body)
    response.status_code = outcome.status
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if "version" in outcome.body:
        response.headers["ETag"] = f'"{outcome.body["version"]}"'
    return response


@bp.post("/persons")
@require_permission("write")
def create_person() -> Any:
    body = _body()
    return _answer(lambda **kw: _writes().create_person(body, **kw))


@bp.patch("/persons/<person_id>")
@require_permission("write")
def update_person(person_id: str) -> Any:
    body = _body()
    return _answer(lambda **kw: _writes().update_person(person_id, body, **kw))


@bp.post("/involvements")
@require_permission("write")
def open_involvement() -> Any:
    body = _body()
    return _answer(lambda **kw: _writes().open_involvement(body, **kw))


@bp.post("/involvements/<path:ref>/close")
@require_permission("write")
def close_involvement(ref: str) -> Any:
    body = _body()
    return _answer(lambda **kw: _writes().close_involvement(ref, body, **kw))


@bp.get("/<write_id>")
@require_permission("write")
def read_write(write_id: str) -> Any:
    try:
        return jsonify(_writes().get(write_id))
    except WriteError as exc:
        return jsonify(exc.body()), exc.status


_IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"},
                "description": "a retried request with the same key returns the first answer"}
_RESPONSES = {
    "200": {"description": "written to the hub (system of record)"},
    "201": {"description": "created in the hub (system of record)"},
    "202": {"description": "routed to the legacy system of record; follow GET /api/v1/write/{write_id}"},
    "400": {"description": "invalid request, with every reason"},
    "404": {"description": "no such person or involvement"},
    "409": {"description": "conflict: changed meanwhile (version) or a change is still being applied"},
    "422": {"description": "cannot be written as asked (read-only system, unknown field, key reused)"},
}

OPENAPI_PATHS = {
    "/api/v1/write/persons": {"post": {
        "summary": "Create a person (in the legacy system of record named by `system`, else in the hub)",
        "parameters": [_IDEMPOTENCY], "requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "required": ["person"], "properties": {
                "system": {"type": "string"}, "person": {"$ref": "#/components/schemas/Person"}}}}}},
        "responses": _RESPONSES}},
    "/api/v1/write/persons/{person_id}": {"patch": {
        "summary": "Change a person's details (flat paths: name.given, address.postcode, birth_date, …)",
        "parameters": [{"name": "person_id", "in": "path", "required": True, "schema": {"type": "string"}},
                       _IDEMPOTENCY, {"name": "If-Match", "in": "header", "schema": {"type": "string"},
                                      "description": "the person's version (or `version` in the body)"}],
        "requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "required": ["changes"], "properties": {
                "version": {"type": "integer"}, "changes": {"type": "object"}}}}}},
        "responses": _RESPONSES}},
    "/api/v1/write/involvements": {"post": {
        "summary": "Open an involvement for a person", "parameters": [_IDEMPOTENCY],
        "requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "required": ["person_id", "involvement"], "properties": {
                "person_id": {"type": "string"}, "system": {"type": "string"},
                "involvement": {"type": "object"}}}}}},
        "responses": _RESPONSES}},
    "/api/v1/write/involvements/{ref}/close": {"post": {
        "summary": "Close an involvement (ref: system/involvement/source_id)",
        "parameters": [{"name": "ref", "in": "path", "required": True, "schema": {"type": "string"}},
                       _IDEMPOTENCY],
        "requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "required": ["version"], "properties": {
                "version": {"type": "integer"}, "ended_on": {"type": "string", "format": "date"}}}}}},
        "responses": _RESPONSES}},
    "/api/v1/write/{write_id}": {"get": {
        "summary": "A write's status and its deliveries to legacy systems",
        "parameters": [{"name": "write_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "the write"}, "404": {"description": "no such write"}}}},
}
