"""/api/v1/persons: search people and read one person, through the same policy-enforcing query
layer as the pages (`hub.services.view`), with the same audit."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from admin_ui.api.params import page_args
from admin_ui.app import current_hub
from admin_ui.auth import current_viewer, require_permission
from hub.services import view as views
from hub.services.persons import PersonNotFound, SearchQuery

bp = Blueprint("api_persons", __name__, url_prefix="/api/v1/persons")


@bp.get("")
@require_permission("search")
def list_persons() -> Any:
    page, page_size = page_args()
    q = SearchQuery(name=request.args.get("name") or None, birth_date=request.args.get("birth_date") or None,
                    identifier=request.args.get("identifier") or None, postcode=request.args.get("postcode") or None,
                    page=page, page_size=page_size)
    result = views.search(current_hub(), current_viewer(), q)
    return jsonify(results=result.results, total=result.total, page=result.page, page_size=result.page_size)


@bp.get("/<person_id>")
@require_permission("view")
def read_person(person_id: str) -> Any:
    try:
        return jsonify(views.person_view(current_hub(), current_viewer(), person_id,
                                         purpose=request.args.get("purpose")))
    except PersonNotFound:
        return jsonify(error="not found", detail=f"no person {person_id}"), 404


@bp.post("/<person_id>/break-glass")
@require_permission("break_glass")
def break_glass(person_id: str) -> Any:
    reason = (request.get_json(silent=True) or {}).get("reason", "")
    try:
        return jsonify(views.break_glass(current_hub(), current_viewer(), person_id, reason)), 201
    except PersonNotFound:
        return jsonify(error="not found", detail=f"no person {person_id}"), 404
    except ValueError as exc:
        return jsonify(error="invalid", detail=str(exc)), 400


_PAGE_PARAMS = [
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
    {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
]
_PERSON_ID = {"name": "person_id", "in": "path", "required": True, "schema": {"type": "string"}}
_SECURITY = [{"bearer": []}, {"session": []}]

OPENAPI_PATHS = {
    "/api/v1/persons": {"get": {
        "summary": "Search people by name (typos, nicknames, sound-alikes), date of birth, identifier or postcode",
        "security": _SECURITY,
        "parameters": [
            {"name": "name", "in": "query", "schema": {"type": "string"}},
            {"name": "birth_date", "in": "query", "schema": {"type": "string", "format": "date"}},
            {"name": "identifier", "in": "query", "schema": {"type": "string"},
             "description": "NHS number, UPN, any system's local id, or a hub person id"},
            {"name": "postcode", "in": "query", "schema": {"type": "string"}},
            *_PAGE_PARAMS],
        "responses": {"200": {"description": "a ranked page of matching people", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/PersonSearchPage"}}}},
            "401": {"description": "not signed in"}, "403": {"description": "the role may not search"}}}},
    "/api/v1/persons/{person_id}": {"get": {
        "summary": "One person as the caller's role may see them: summary, services, timeline, family, "
                   "source records with provenance",
        "security": _SECURITY,
        "parameters": [_PERSON_ID, {"name": "purpose", "in": "query", "schema": {"type": "string"},
                                    "description": "why the record is opened (kept in the audit log)"}],
        "responses": {"200": {"description": "the person", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/PersonView"}}}},
            "401": {"description": "not signed in"}, "403": {"description": "the role may not view people"},
            "404": {"description": "no such person"}}}},
    "/api/v1/persons/{person_id}/break-glass": {"post": {
        "summary": "Raise the caller's access to this person for a limited time, with a reason (audited, reviewed)",
        "security": _SECURITY,
        "parameters": [_PERSON_ID],
        "requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}}}}},
        "responses": {"201": {"description": "the grant, with its expiry"}, "400": {"description": "no reason"},
                      "403": {"description": "the role may not break glass"}, "404": {"description": "no such person"}}}},
}

_LEVEL = {"type": "string", "enum": ["none", "exists", "summary", "full"]}

OPENAPI_SCHEMAS = {
    "PersonSummary": {"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "birth_date": {"type": ["string", "null"]},
        "postcode": {"type": ["string", "null"], "description": "null when the role may not see addresses"},
        "score": {"type": "number"}, "matched_on": {"type": "array", "items": {"type": "string"}}}},
    "PersonSearchPage": {"type": "object", "properties": {
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/PersonSummary"}},
        "total": {"type": "integer"}, "page": {"type": "integer"}, "page_size": {"type": "integer"}}},
    "PersonView": {"type": "object", "description": "Every key is always present; what the role may not see is "
                   "null, {\"recorded\": bool} at level exists, or absent from the lists.", "properties": {
        "id": {"type": "string"}, "requested_id": {"type": "string"}, "name": {"type": "string"},
        "birth_date": {"type": ["string", "null"]},
        "access": {"type": "object", "properties": {
            "relationship": {"type": "boolean"}, "break_glass": {"type": "boolean"},
            "break_glass_until": {"type": ["string", "null"]}, "may_break_glass": {"type": "boolean"},
            "categories": {"type": "object", "additionalProperties": _LEVEL},
            "fields": {"type": "object", "additionalProperties": _LEVEL}}},
        "summary": {"type": "object"}, "provenance": {"type": "object"},
        "services": {"type": "array", "items": {"type": "object"}},
        "timeline": {"type": "array", "items": {"type": "object"}},
        "open_involvements": {"type": "array", "items": {"type": "object"}},
        "collective_occurrences": {"type": "object"},
        "family": {"type": "array", "items": {"type": "object"}},
        "household": {"type": "array", "items": {"type": "object"}},
        "source_records": {"type": "array", "items": {"type": "object"}},
        "data_quality": {"type": "array", "items": {"type": "string"}}}},
}
