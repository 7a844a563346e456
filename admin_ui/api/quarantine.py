"""/api/v1/quarantine: records that failed translation, with every reason; re-run and accept."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from admin_ui.app import current_hub
from admin_ui.api.params import page_args
from hub.services import quarantine as q

bp = Blueprint("api_quarantine", __name__, url_prefix="/api/v1/quarantine")


@bp.get("")
def list_entries() -> Any:
    page, page_size = page_args(default_size=50)
    status = request.args.get("status", "open")
    return jsonify(q.list_quarantine(current_hub().store, system=request.args.get("system"),
                                     status=None if status == "all" else status, page=page, page_size=page_size))


@bp.post("/<int:entry_id>/rerun")
def rerun(entry_id: int) -> Any:
    hub = current_hub()
    try:
        result = q.rerun(hub.store, hub.systems, entry_id)
    except q.QuarantineEntryNotFound:
        return jsonify(error="not found"), 404
    hub.relay.relay_all()
    return jsonify(result)


@bp.post("/<int:entry_id>/accept")
def accept(entry_id: int) -> Any:
    reason = (request.get_json(silent=True) or {}).get("reason", "")
    try:
        return jsonify(q.accept(current_hub().store, entry_id, reason))
    except q.QuarantineEntryNotFound:
        return jsonify(error="not found"), 404
    except ValueError as exc:
        return jsonify(error=str(exc)), 400


OPENAPI_PATHS = {
    "/api/v1/quarantine": {"get": {
        "summary": "Quarantined records with their reasons",
        "parameters": [{"name": "system", "in": "query", "schema": {"type": "string"}},
                       {"name": "status", "in": "query",
                        "schema": {"type": "string", "enum": ["open", "resolved", "accepted", "superseded", "all"]}}],
        "responses": {"200": {"description": "a page of quarantine entries"}}}},
    "/api/v1/quarantine/{entry_id}/rerun": {"post": {
        "summary": "Translate the kept raw record again with the current mapping",
        "parameters": [{"name": "entry_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "responses": {"200": {"description": "the entry after the re-run"}, "404": {"description": "no such entry"}}}},
    "/api/v1/quarantine/{entry_id}/accept": {"post": {
        "summary": "Accept a record as not to be migrated, with a reason",
        "parameters": [{"name": "entry_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}}}}},
        "responses": {"200": {"description": "the accepted entry"}, "400": {"description": "no reason given"}}}},
}
