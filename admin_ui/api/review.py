"""/api/v1/review: the identity clerical review queue for data stewards (permission "review")."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from admin_ui.api.params import page_args
from admin_ui.app import current_hub
from admin_ui.auth import current_user, require_permission
from hub.identity import review as rv
from hub.identity.model_file import load_model

bp = Blueprint("api_review", __name__, url_prefix="/api/v1/review")


@bp.get("")
@require_permission("review")
def list_pairs() -> Any:
    page, page_size = page_args()
    status = request.args.get("status", "open")
    if status not in (*rv.STATUSES, "all"):
        return jsonify(error="invalid", detail=f"status must be one of {', '.join(rv.STATUSES)} or all"), 400
    result = rv.list_reviews(current_hub().store, status=None if status == "all" else status,
                             system=request.args.get("system") or None, page=page, page_size=page_size)
    return jsonify(items=result.items, total=result.total, page=result.page, page_size=result.page_size)


@bp.get("/<int:review_id>")
@require_permission("review")
def read_pair(review_id: int) -> Any:
    try:
        return jsonify(rv.get_review(current_hub().store, review_id))
    except rv.ReviewNotFound:
        return jsonify(error="not found", detail=f"no review pair {review_id}"), 404


@bp.post("/<int:review_id>/decision")
@require_permission("review")
def decide(review_id: int) -> Any:
    body = request.get_json(silent=True) or {}
    hub = current_hub()
    model = getattr(hub.worker.linker, "model", None) or load_model()
    try:
        result = rv.decide(hub.store, review_id, str(body.get("decision", "")), user=current_user().username,
                           reason=str(body.get("reason", "")), model=model)
    except rv.ReviewNotFound:
        return jsonify(error="not found", detail=f"no review pair {review_id}"), 404
    except rv.ReviewRejected as exc:
        return jsonify(error="invalid", detail=str(exc)), 400
    hub.relay.relay_all()
    return jsonify(result)


_SECURITY = [{"bearer": []}, {"session": []}]
_ID = {"name": "review_id", "in": "path", "required": True, "schema": {"type": "integer"}}

OPENAPI_PATHS = {
    "/api/v1/review": {"get": {
        "summary": "Review pairs of the identity index, most likely matches first",
        "security": _SECURITY,
        "parameters": [
            {"name": "status", "in": "query", "schema": {"type": "string", "default": "open",
                                                         "enum": [*rv.STATUSES, "all"]}},
            {"name": "system", "in": "query", "schema": {"type": "string"},
             "description": "only pairs with a record of this legacy system"},
            {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
            {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100,
                                                            "default": 20}}],
        "responses": {"200": {"description": "a page of review pairs", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ReviewPage"}}}},
            "403": {"description": "the role does not grant 'review'"}}}},
    "/api/v1/review/{review_id}": {"get": {
        "summary": "One review pair: both records side by side with per-field evidence",
        "security": _SECURITY, "parameters": [_ID],
        "responses": {"200": {"description": "the pair", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ReviewPair"}}}},
            "404": {"description": "no such pair"}}}},
    "/api/v1/review/{review_id}/decision": {"post": {
        "summary": "Decide a pair: link (same person), not_same or unsure, with a reason; audited",
        "security": _SECURITY, "parameters": [_ID],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ReviewDecision"}}}},
        "responses": {"200": {"description": "the pair after the decision", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ReviewPair"}}}},
            "400": {"description": "missing reason, unknown decision, or a constraint forbids it"},
            "404": {"description": "no such pair"}}}},
}

OPENAPI_SCHEMAS = {
    "ReviewSummary": {"type": "object", "properties": {
        "id": {"type": "integer"}, "ref_a": {"type": "string"}, "ref_b": {"type": "string"},
        "probability": {"type": "number"}, "match_weight": {"type": "number"},
        "status": {"type": "string", "enum": list(rv.STATUSES)}, "model_version": {"type": "string"},
        "person_a": {"type": ["string", "null"]}, "person_b": {"type": ["string", "null"]},
        "same_person_now": {"type": "boolean"}, "decided_by": {"type": ["string", "null"]},
        "reason": {"type": ["string", "null"]}, "decided_at": {"type": ["string", "null"]},
        "evidence": {"type": "object", "description": "prior, per-field levels and weights (bits), rule"}}},
    "ReviewPage": {"type": "object", "properties": {
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/ReviewSummary"}},
        "total": {"type": "integer"}, "page": {"type": "integer"}, "page_size": {"type": "integer"}}},
    "ReviewPair": {"allOf": [{"$ref": "#/components/schemas/ReviewSummary"}, {"type": "object", "properties": {
        "records": {"type": "array", "items": {"type": "object"}, "description": "record a and record b"},
        "fields": {"type": "array", "items": {"type": "object", "properties": {
            "comparison": {"type": "string"}, "level": {"type": "string"}, "weight": {"type": "number"},
            "a": {"type": "object"}, "b": {"type": "object"}}}}}}]},
    "ReviewDecision": {"type": "object", "required": ["decision", "reason"], "properties": {
        "decision": {"type": "string", "enum": [d.value for d in rv.ReviewDecision]},
        "reason": {"type": "string", "minLength": 1}}},
}
