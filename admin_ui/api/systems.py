"""/api/v1/systems: legacy systems' phases, readiness checks, phase changes, the SoR matrix and
reconciliation (for the decommissioning dashboard)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from admin_ui.app import current_hub
from admin_ui.auth import current_user, require_permission
from hub.lifecycle import LifecycleService
from hub.reconcile import ReconciliationFailed
from hub.systems import UnknownSystem
from routing.lifecycle import PhaseGateFailed, TransitionRefused

bp = Blueprint("api_systems", __name__, url_prefix="/api/v1/systems")


def _lifecycle() -> LifecycleService:
    return current_hub().extras["lifecycle"]


@bp.get("")
@require_permission("console")
def list_systems() -> Any:
    return jsonify(systems=_lifecycle().overview())


@bp.get("/sor")
@require_permission("console")
def sor_matrix() -> Any:
    lifecycle = _lifecycle()
    only = request.args.get("system")
    return jsonify(rows=lifecycle.sor().rows([only] if only else lifecycle.names()))


@bp.get("/<name>")
@require_permission("console")
def read_system(name: str) -> Any:
    try:
        return jsonify(_lifecycle().detail(name))
    except UnknownSystem as exc:
        return jsonify(error="not found", detail=str(exc)), 404


@bp.get("/<name>/checks")
@require_permission("console")
def checks(name: str) -> Any:
    try:
        return jsonify(_lifecycle().checks(name))
    except UnknownSystem as exc:
        return jsonify(error="not found", detail=str(exc)), 404


def _step(name: str, act: str) -> Any:
    reason = str((request.get_json(silent=True) or {}).get("reason") or "").strip()
    if not reason:
        return jsonify(error="reason required", detail="a phase change needs a reason"), 400
    lifecycle = _lifecycle()
    try:
        result = getattr(lifecycle, act)(name, who=current_user().username, reason=reason)
    except UnknownSystem as exc:
        return jsonify(error="not found", detail=str(exc)), 404
    except PhaseGateFailed as exc:
        return jsonify(error="readiness checks failed", detail=str(exc), target=exc.target.value,
                       failed=[c.as_dict() for c in exc.failed]), 409
    except TransitionRefused as exc:
        return jsonify(error="transition refused", detail=str(exc)), 409
    return jsonify(result)


@bp.post("/<name>/advance")
@require_permission("console")
def advance(name: str) -> Any:
    return _step(name, "advance")


@bp.post("/<name>/revert")
@require_permission("console")
def revert(name: str) -> Any:
    return _step(name, "revert")


@bp.post("/<name>/reconcile")
@require_permission("console")
def reconcile(name: str) -> Any:
    try:
        return jsonify(current_hub().extras["reconciler"].run(name, trigger="api").as_dict())
    except UnknownSystem as exc:
        return jsonify(error="not found", detail=str(exc)), 404
    except ReconciliationFailed as exc:
        return jsonify(error="reconciliation failed", detail=str(exc)), 502


_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
_REASON = {"content": {"application/json": {"schema": {
    "type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}}}}}

OPENAPI_PATHS = {
    "/api/v1/systems": {"get": {"summary": "Every legacy system with its lifecycle phase", "responses": {
        "200": {"description": "systems", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"systems": {"type": "array", "items": {
                "$ref": "#/components/schemas/SystemOverview"}}}}}}}}}},
    "/api/v1/systems/sor": {"get": {
        "summary": "The system-of-record matrix (system, entity, field → owner and why)",
        "parameters": [{"name": "system", "in": "query", "schema": {"type": "string"}}],
        "responses": {"200": {"description": "matrix rows"}}}},
    "/api/v1/systems/{name}": {"get": {
        "summary": "One system: phase, next/previous phase, transitions, last reconciliation, archive, SoR rows",
        "parameters": _NAME, "responses": {"200": {"description": "the system"}, "404": {"description": "unknown"}}}},
    "/api/v1/systems/{name}/checks": {"get": {
        "summary": "Readiness checks gating the next phase, with evidence (runs a reconciliation)",
        "parameters": _NAME, "responses": {"200": {"description": "checks"}}}},
    "/api/v1/systems/{name}/advance": {"post": {
        "summary": "Move to the next phase if every readiness check passes (audited)", "parameters": _NAME,
        "requestBody": _REASON, "responses": {
            "200": {"description": "moved"}, "400": {"description": "no reason given"},
            "409": {"description": "a check failed (each failing check with its evidence) or no next phase"}}}},
    "/api/v1/systems/{name}/revert": {"post": {
        "summary": "Step back one phase (not once decommissioned; audited)", "parameters": _NAME,
        "requestBody": _REASON, "responses": {"200": {"description": "moved"},
                                              "409": {"description": "no step back"}}}},
    "/api/v1/systems/{name}/reconcile": {"post": {
        "summary": "Compare the system's current extract with the hub's mirror now", "parameters": _NAME,
        "responses": {"200": {"description": "counts, differences and examples"},
                      "502": {"description": "the legacy system could not be read"}}}},
}

OPENAPI_SCHEMAS = {
    "SystemOverview": {"type": "object", "properties": {
        "system": {"type": "string"},
        "phase": {"type": "string", "enum": ["connected", "hub_primary", "read_only", "decommissioned"]},
        "adapter_enabled": {"type": "boolean"}, "subscribed": {"type": "boolean"}, "records": {"type": "integer"},
        "since": {"type": ["string", "null"]}, "changed_by": {"type": ["string", "null"]},
        "reconciliation": {"type": ["object", "null"]}}},
}
