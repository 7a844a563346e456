"""/api/v1/messages and /api/v1/dead-letters: the message journal, queue figures and replay
(permission "console", the integration team's)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, jsonify, request

from admin_ui.api.params import page_args
from admin_ui.app import current_hub
from admin_ui.auth import require_permission
from hub.bus.figures import bus_figures
from hub.services import messages as svc

bp = Blueprint("api_messages", __name__, url_prefix="/api/v1")


@bp.get("/messages")
@require_permission("console")
def list_messages() -> Any:
    page, page_size = page_args(default_size=50)
    try:
        q = svc.MessageQuery(type=request.args.get("type") or None, system=request.args.get("system") or None,
                             status=request.args.get("status") or None, since=_time_arg("since"),
                             until=_time_arg("until"), person_id=request.args.get("person_id") or None,
                             ref_key=request.args.get("ref_key") or None, page=page, page_size=page_size)
        result = svc.list_messages(current_hub().store, q)
    except svc.MessageQueryError as exc:
        return jsonify(error="invalid", detail=str(exc)), 400
    return jsonify(results=result.results, total=result.total, page=result.page, page_size=result.page_size)


@bp.get("/messages/<message_id>")
@require_permission("console")
def read_message(message_id: str) -> Any:
    try:
        return jsonify(svc.message_journey(current_hub().store, message_id))
    except svc.MessageNotFound:
        return jsonify(error="not found", detail=f"no message {message_id} in the journal"), 404


@bp.get("/queues")
@require_permission("console")
def queues() -> Any:
    hub = current_hub()
    return jsonify(bus_figures(hub.bus, hub.store))


@bp.get("/dead-letters")
@require_permission("console")
def dead_letters() -> Any:
    queue = request.args.get("queue")
    if queue and queue not in svc.QUEUES:
        return jsonify(error="invalid", detail=f"queue must be one of {', '.join(svc.QUEUES)}"), 400
    found = svc.dead_letters(current_hub().bus, [queue] if queue else svc.QUEUES)
    return jsonify(results=found, total=len(found))


@bp.post("/dead-letters/replay")
@require_permission("console")
def replay() -> Any:
    body = request.get_json(silent=True) or {}
    ids, replay_all = body.get("message_ids"), body.get("all") is True
    if replay_all == (ids is not None) or (ids is not None and not (
            isinstance(ids, list) and ids and all(isinstance(i, str) for i in ids))):
        return jsonify(error="invalid", detail='send {"message_ids": ["…"]} or {"all": true}'), 400
    queue = body.get("queue")
    if queue is not None and queue not in svc.QUEUES:
        return jsonify(error="invalid", detail=f"queue must be one of {', '.join(svc.QUEUES)}"), 400
    result = svc.replay(current_hub().bus, None if replay_all else ids, [queue] if queue else svc.QUEUES)
    return jsonify(result)  # the journal records a `replayed` event per message


def _time_arg(name: str) -> dt.datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError as exc:
        raise svc.MessageQueryError(f"{name}: {raw!r} is not an ISO date-time") from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


_MESSAGE_ID = {"name": "message_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
_JSON = "application/json"

OPENAPI_PATHS = {
    "/api/v1/messages": {"get": {
        "summary": "Messages from the journal with their latest event, newest first",
        "parameters": [
            {"name": "type", "in": "query", "schema": {"type": "string"}, "description": "e.g. source.record.upserted"},
            {"name": "system", "in": "query", "schema": {"type": "string"}},
            {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(svc.EVENTS)}},
            {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
            {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
            {"name": "person_id", "in": "query", "schema": {"type": "string"},
             "description": "messages that carried any source record of this hub person"},
            {"name": "ref_key", "in": "query", "schema": {"type": "string"},
             "description": "one source record, system/entity/source_id"},
            {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
            {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100,
                                                           "default": 50}}],
        "responses": {"200": {"description": "a page of messages", "content": {_JSON: {
            "schema": {"$ref": "#/components/schemas/MessagePage"}}}},
            "400": {"description": "unknown status or bad time"}}}},
    "/api/v1/messages/{message_id}": {"get": {
        "summary": "One message's journey: published, delivered, retried, dead-lettered, replayed, processed",
        "parameters": [_MESSAGE_ID],
        "responses": {"200": {"description": "the journey", "content": {_JSON: {
            "schema": {"$ref": "#/components/schemas/MessageJourney"}}}},
            "404": {"description": "not in the journal"}}}},
    "/api/v1/queues": {"get": {
        "summary": "Queue figures (depth, in flight, dead, consumers, rates) and the hub's processing latency",
        "responses": {"200": {"description": "figures", "content": {_JSON: {
            "schema": {"$ref": "#/components/schemas/QueueFigures"}}}}}}},
    "/api/v1/dead-letters": {"get": {
        "summary": "Messages that failed every attempt, with their error",
        "parameters": [{"name": "queue", "in": "query", "schema": {"type": "string", "enum": list(svc.QUEUES)}}],
        "responses": {"200": {"description": "dead letters", "content": {_JSON: {"schema": {
            "type": "object", "properties": {
                "results": {"type": "array", "items": {"$ref": "#/components/schemas/DeadLetter"}},
                "total": {"type": "integer"}}}}}}}}},
    "/api/v1/dead-letters/replay": {"post": {
        "summary": "Send dead letters back to their queue after the cause is fixed (named ones, or all)",
        "requestBody": {"required": True, "content": {_JSON: {"schema": {
            "$ref": "#/components/schemas/ReplayRequest"}}}},
        "responses": {"200": {"description": "how many moved", "content": {_JSON: {"schema": {
            "$ref": "#/components/schemas/ReplayResult"}}}},
            "400": {"description": "neither message_ids nor all, or an unknown queue"}}}},
}

OPENAPI_SCHEMAS = {
    "MessageSummary": {"type": "object", "properties": {
        "message_id": {"type": "string"}, "type": {"type": "string"}, "source_system": {"type": "string"},
        "ref_key": {"type": ["string", "null"]}, "status": {"type": "string"}, "queue": {"type": ["string", "null"]},
        "detail": {"type": ["string", "null"]}, "first_at": {"type": "string", "format": "date-time"},
        "last_at": {"type": "string", "format": "date-time"}, "events": {"type": "integer"},
        "latency_ms": {"type": ["integer", "null"]}}},
    "MessagePage": {"type": "object", "properties": {
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/MessageSummary"}},
        "total": {"type": "integer"}, "page": {"type": "integer"}, "page_size": {"type": "integer"}}},
    "MessageJourney": {"type": "object", "properties": {
        "message_id": {"type": "string"}, "type": {"type": "string"}, "source_system": {"type": "string"},
        "ref_key": {"type": ["string", "null"]}, "status": {"type": "string"}, "attempts": {"type": "integer"},
        "events": {"type": "array", "items": {"type": "object", "properties": {
            "event": {"type": "string"}, "at": {"type": "string", "format": "date-time"},
            "queue": {"type": ["string", "null"]}, "detail": {"type": ["string", "null"]},
            "latency_ms": {"type": ["integer", "null"]}, "after_ms": {"type": "integer"}}}}}},
    "DeadLetter": {"type": "object", "properties": {
        "message_id": {"type": "string"}, "queue": {"type": "string"}, "type": {"type": "string"},
        "source_system": {"type": "string"}, "ref_key": {"type": ["string", "null"]}, "error": {"type": "string"},
        "attempts": {"type": "integer"}, "dead_at": {"type": "string", "format": "date-time"}}},
    "ReplayRequest": {"type": "object", "properties": {
        "message_ids": {"type": "array", "items": {"type": "string"}}, "all": {"type": "boolean"},
        "queue": {"type": "string", "enum": list(svc.QUEUES)}}},
    "ReplayResult": {"type": "object", "properties": {
        "replayed": {"type": "integer"}, "by_queue": {"type": "object", "additionalProperties": {"type": "integer"}},
        "not_found": {"type": "integer"}, "detail": {"type": "string"}}},
    "QueueFigures": {"type": "object", "properties": {
        "backend": {"type": "string"},
        "queues": {"type": "array", "items": {"type": "object", "properties": {
            "queue": {"type": "string"}, "ready": {"type": "integer"}, "in_flight": {"type": "integer"},
            "dead": {"type": "integer"}, "consumers": {"type": "integer"},
            "publish_rate": {"type": ["number", "null"]}, "deliver_rate": {"type": ["number", "null"]},
            "rates_from": {"type": "string", "enum": ["broker", "journal"]}}}},
        "latency": {"type": "object", "properties": {
            "window_s": {"type": "integer"}, "processed": {"type": "integer"}, "p50_ms": {"type": ["integer", "null"]},
            "p95_ms": {"type": ["integer", "null"]}, "max_ms": {"type": ["integer", "null"]}}}}},
}
