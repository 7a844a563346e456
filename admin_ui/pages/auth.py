"""Sign in and sign out. The only page anyone may open without signing in is /login."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, redirect, render_template, request

from admin_ui.app import current_hub
from admin_ui.auth import client_address, end_session, safe_next, session_id, start_session
from hub.users import SignInRefused, authenticate, record_sign_out

bp = Blueprint("auth", __name__)

GENERIC_FAILURE = "The username or password is not right, or the account is locked. Try again later."


@bp.get("/login")
def login() -> Any:
    return render_template("auth/login.html", next=safe_next(request.args.get("next")), error=None, username="")


@bp.post("/login")
def login_submit() -> Any:
    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    target = safe_next(request.form.get("next"))
    try:
        user = authenticate(current_hub().store, username, password, client=client_address())
    except SignInRefused:
        # The same message for every refusal, so the page does not tell which accounts exist.
        return render_template("auth/login.html", next=target, error=GENERIC_FAILURE, username=username), 401
    start_session(user)
    return redirect(target)


@bp.get("/sign-out")
def sign_out_page() -> Any:
    return render_template("auth/sign_out.html")


@bp.post("/sign-out")
def sign_out() -> Any:
    user = g.get("user")
    if user is not None:
        record_sign_out(current_hub().store, user.username, client_address(), session_id())
    end_session()
    return redirect("/login")
