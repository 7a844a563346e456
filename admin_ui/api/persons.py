"""/api/v1/persons: search people and read one person across every source system."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from admin_ui.app import current_hub
from admin_ui.api.params import page_args
from hub.services.persons import PersonNotFound, SearchQuery, get_person, search_persons

bp = Blueprint("api_persons", __name__, url_prefix="/api/v1/persons")


@bp.get("")
def list_persons() -> Any:
    page, page_size = page_args()
    q = SearchQuery(name=request.args.get("name"), birth_date=request.args.get("birth_date"),
                    identifier=request.args.get("identifier"), postcode=request.args.get("postcode"),
                    page=page, page_size=page_size)
    result = search_persons(current_hub().store, q)
    return jsonify(results=result.results, total=result.total, page=result.page, page_size=result.page_size)


@bp.get("/<person_id>")
def read_person(person_id: str) -> Any:
    try:
        return jsonify(get_person(current_hub().store, person_id))
    except PersonNotFound:
        return jsonify(error="not found", detail=f"no person {person_id}"), 404


_PAGE_PARAMS = [
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
    {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
]

OPENAPI_PATHS = {
    "/api/v1/persons": {"get": {
        "summary": "Search people by name, date of birth, identifier or postcode",
        "parameters": [
            {"name": "name", "in": "query", "schema": {"type": "string"}},
            {"name": "birth_date", "in": "query", "schema": {"type": "string", "format": "date"}},
            {"name": "identifier", "in": "query", "schema": {"type": "string"},
             "description": "NHS number, UPN, any system's local id, or a hub person id"},
            {"name": "postcode", "in": "query", "schema": {"type": "string"}},
            *_PAGE_PARAMS],
        "responses": {"200": {"description": "a page of matching people", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/PersonSearchPage"}}}}}}},
    "/api/v1/persons/{person_id}": {"get": {
        "summary": "One person: golden record with provenance, linked source records, involvements, relationships",
        "parameters": [{"name": "person_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "the person", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/PersonView"}}}},
            "404": {"description": "no such person"}}}},
}

OPENAPI_SCHEMAS = {
    "PersonSummary": {"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "birth_date": {"type": ["string", "null"]},
        "postcode": {"type": ["string", "null"]}}},
    "PersonSearchPage": {"type": "object", "properties": {
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/PersonSummary"}},
        "total": {"type": "integer"}, "page": {"type": "integer"}, "page_size": {"type": "integer"}}},
    "PersonView": {"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "version": {"type": "integer"},
        "golden": {"type": "object"}, "source_records": {"type": "array", "items": {"type": "object"}},
        "involvements": {"type": "array", "items": {"type": "object"}},
        "relationships": {"type": "array", "items": {"type": "object"}}}},
}
