"""/api/v1/openapi.json, assembled from every API module's OPENAPI_PATHS and OPENAPI_SCHEMAS."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from flask import Blueprint, jsonify

import admin_ui.api as api_pkg
from canonical.schema_export import json_schemas
from canonical.version import SCHEMA_VERSION

bp = Blueprint("api_openapi", __name__, url_prefix="/api/v1")


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for info in sorted(pkgutil.iter_modules(api_pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"admin_ui.api.{info.name}")
        for path, ops in getattr(module, "OPENAPI_PATHS", {}).items():
            paths.setdefault(path, {}).update(ops)
        schemas.update(getattr(module, "OPENAPI_SCHEMAS", {}))
    for name, schema in json_schemas().items():
        schema = dict(schema)
        defs = schema.pop("$defs", {})
        schemas.update({k: v for k, v in defs.items() if k not in schemas})
        schemas[name] = schema
    return {
        "openapi": "3.1.0",
        "info": {"title": "Transition hub API", "version": "1",
                 "description": f"Canonical model {SCHEMA_VERSION}. Every endpoint enforces the access policy."},
        "paths": paths,
        "components": {"schemas": _rewrite_refs(schemas), "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "an API token from `hub users token`"},
            "session": {"type": "apiKey", "in": "cookie", "name": "hub_session",
                        "description": "a signed-in browser session (send the CSRF token as X-CSRFToken)"}}},
        "security": [{"bearer": []}, {"session": []}],
    }


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" and isinstance(v, str)
                    else _rewrite_refs(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(openapi_document())
