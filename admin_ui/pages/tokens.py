"""API tokens in the console: each signed-in user lists, creates (the token is shown once, on
the response to the form, never stored nor put in the session cookie) and revokes their own;
a user with the `users` permission (integration admin) sees and revokes everyone's.

Every change is audited by `hub.users` (`token_create`, `token_revoke`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request

from admin_ui.app import current_hub
from admin_ui.auth import client_address, current_user, require_permission
from hub.users import (
    MAX_TOKEN_DAYS,
    UserError,
    create_token,
    list_all_tokens,
    list_tokens,
    revoke_token,
)

bp = Blueprint("tokens", __name__)
DEFAULT_DAYS = 90


def _own_page(status: int = 200, *, token: str | None = None, errors: dict[str, str] | None = None,
              form: dict[str, str] | None = None) -> Any:
    user = current_user()
    body = render_template("auth/tokens.html", tokens=list_tokens(current_hub().store, user.username), token=token,
                           errors=errors or {}, form=form or {"name": "", "days": str(DEFAULT_DAYS)},
                           max_days=MAX_TOKEN_DAYS)
    # The page that shows a new token once must not be kept by the browser or a proxy.
    return body, status, {"Cache-Control": "no-store"}


@bp.get("/account/tokens")
def own() -> Any:
    return _own_page()


def _form_errors(name: str, days_text: str) -> tuple[dict[str, str], int | None]:
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Enter a name for the token, such as the system that will use it"
    elif len(name) > 120:
        errors["name"] = "The name must be 120 characters or fewer"
    try:
        days = int(days_text)
    except ValueError:
        days = None
    if days is None or not 0 < days <= MAX_TOKEN_DAYS:
        errors["days"] = f"Enter a whole number of days between 1 and {MAX_TOKEN_DAYS}"
    return errors, days


@bp.post("/account/tokens")
def create() -> Any:
    user = current_user()
    form = {"name": (request.form.get("name") or "").strip(), "days": (request.form.get("days") or "").strip()}
    errors, days = _form_errors(form["name"], form["days"])
    if errors:
        return _own_page(400, errors=errors, form=form)
    token = create_token(current_hub().store, user.username, name=form["name"], days=days, actor=user.username,
                         client=client_address())
    return _own_page(201, token=token)


@bp.post("/account/tokens/<prefix>/revoke")
def revoke_own(prefix: str) -> Any:
    user = current_user()
    try:
        revoke_token(current_hub().store, prefix, actor=user.username, owner=user.username, client=client_address())
    except UserError:
        abort(404, "you have no token with that prefix")
    flash(f"Token {prefix} revoked. Anything using it can no longer call the API.", "success")
    return redirect("/account/tokens")


@bp.get("/users/tokens")
@require_permission("users")
def everyone() -> Any:
    return render_template("auth/all_tokens.html", tokens=list_all_tokens(current_hub().store))


@bp.post("/users/tokens/<prefix>/revoke")
@require_permission("users")
def revoke_any(prefix: str) -> Any:
    try:
        revoke_token(current_hub().store, prefix, actor=current_user().username, client=client_address())
    except UserError:
        abort(404, "no token with that prefix")
    flash(f"Token {prefix} revoked.", "success")
    return redirect("/users/tokens")
