"""/api/v1/me: who the caller is, their roles and what the policy lets them do."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from admin_ui.auth import access_policy_for_app, current_user
from hub.access.policy import PERMISSIONS

bp = Blueprint("api_auth", __name__, url_prefix="/api/v1")


@bp.get("/me")
def me() -> Any:
    user = current_user()
    policy = access_policy_for_app()
    clearance = policy.clearance(user.roles)
    return jsonify(username=user.username, display_name=user.display_name, roles=user.roles,
                   worker_name=user.worker_name, teams=user.teams,
                   permissions=[p for p in PERMISSIONS if policy.permits(user.roles, p)],
                   categories={c: lvl.label for c, lvl in clearance.categories.items()},
                   fields={f: lvl.label for f, lvl in clearance.fields.items()})


OPENAPI_PATHS = {
    "/api/v1/me": {"get": {
        "summary": "The caller: roles, permissions and base levels per service category and field",
        "security": [{"bearer": []}, {"session": []}],
        "responses": {"200": {"description": "the signed-in user or token owner"},
                      "401": {"description": "not signed in"}}}},
}
