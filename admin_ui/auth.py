"""Sign-in enforcement for the whole app: session and bearer-token authentication, CSRF on every
form, idle and absolute session time-outs, and the `require_permission` decorator.

Anything but /login, /health and static assets needs a signed-in user: pages redirect to the
sign-in page, `/api/` answers 401 JSON. The JSON API also accepts `Authorization: Bearer
<token>`; such a request carries no cookie, so it is the only kind exempt from the CSRF check.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, abort, g, jsonify, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect

from hub.services.view import Viewer, access_policy
from hub.users import User, open_session, session_user, user_for_token

PUBLIC_PATHS = ("/login", "/health")
PUBLIC_PREFIXES = ("/static/",)
IDLE_TIMEOUT = dt.timedelta(minutes=30)
SESSION_LIFETIME = dt.timedelta(hours=8)

csrf = CSRFProtect()


def init_auth(app: Flask) -> None:
    """Wire authentication into the app (called once by `create_app`)."""
    secure = bool(app.config.get("SESSION_COOKIE_SECURE")) or os.environ.get("HUB_HTTPS") == "1"
    app.config.update(
        SESSION_COOKIE_SECURE=bool(secure),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="hub_session" if app.config.get("SESSION_COOKIE_NAME") == "session"
        else app.config["SESSION_COOKIE_NAME"],
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        # The cookie only names the session; the hub tracks idleness and sign-out (`_session_user`),
        # so the cookie is not re-sent on every response, where a slow one could resurrect it.
        SESSION_REFRESH_EACH_REQUEST=False,
        WTF_CSRF_CHECK_DEFAULT=False,  # checked in `_authenticate`, after bearer-token requests are set aside
        WTF_CSRF_TIME_LIMIT=None,      # the token lives as long as the session
    )
    app.config.setdefault("HUB_IDLE_TIMEOUT", IDLE_TIMEOUT)
    access_policy(app.extensions["hub"])  # load (and audit a changed policy) at start, not on a request
    csrf.init_app(app)
    app.before_request(_authenticate)
    app.after_request(_audit_api_call)
    app.context_processor(lambda: {"current_user": g.get("user")})
    app.register_error_handler(CSRFError, _csrf_failed)


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def client_address() -> str:
    return request.remote_addr or "unknown"


def _authenticate() -> Any:
    from hub.audit import reset_context_count

    reset_context_count()
    g.user = None
    g.channel = "web"
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer ") and (_wants_json() or request.path == "/metrics"):
        from admin_ui.app import current_hub

        user = user_for_token(current_hub().store, header.removeprefix("Bearer ").strip())
        if user is None:
            return jsonify(error="unauthorised", detail="the bearer token is unknown, revoked or expired"), 401
        g.user, g.channel = user, "api"
        return None
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()
    if _is_public(request.path):
        return None
    user = _session_user()
    if user is None:
        if _wants_json():
            return jsonify(error="unauthorised", detail="sign in or send a bearer token"), 401
        return redirect(url_for("auth.login", next=_safe_next(request.full_path)))
    g.user = user
    if _wants_json():
        g.channel = "api"
    return None


def _audit_api_call(response: Any) -> Any:
    """A JSON API call by a signed-in caller whose service wrote no audit entry of its own (a
    search, a view, a refusal, a replay...) is recorded as one `api_call` entry."""
    from hub.audit import AuditEvent, appended_in_context, record

    user = g.get("user")
    if user is None or not _wants_json() or appended_in_context() > 0:
        return response
    from admin_ui.app import current_hub

    record(current_hub().store, AuditEvent(user.username, "api_call", outcome=str(response.status_code),
                                           target=f"{request.method} {request.path}"[:300], client=client_address(),
                                           detail={"channel": g.get("channel", "api"),
                                                   "query": request.query_string.decode()[:500]}))
    return response


def _session_user() -> User | None:
    """The user of the session the cookie names. Idle time-out, lifetime and sign-out are checked
    against the hub's record of the session, not the cookie: the cookie is not rewritten on each
    request, and one replayed (or re-sent by a request that raced the sign-out) is refused."""
    from admin_ui.app import current_hub

    sid = session.get("sid")
    if not isinstance(sid, str) or not sid:
        return None
    user = session_user(current_hub().store, sid, idle=current_app_idle_timeout(), lifetime=SESSION_LIFETIME)
    if user is None:
        session.clear()
    return user


def current_app_idle_timeout() -> dt.timedelta:
    from flask import current_app

    return current_app.config["HUB_IDLE_TIMEOUT"]


def start_session(user: User) -> None:
    """A fresh session for `user` (the old one is dropped, so a planted session id is useless)."""
    from admin_ui.app import current_hub

    session.clear()
    session.permanent = True
    session["sid"] = open_session(current_hub().store, user, client_address())


def session_id() -> str | None:
    sid = session.get("sid")
    return sid if isinstance(sid, str) else None


def end_session() -> None:
    session.clear()


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in (no open redirect)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target.rstrip("?") or "/"


def safe_next(target: str | None) -> str:
    return _safe_next(target)


def _csrf_failed(error: CSRFError) -> Any:
    if _wants_json():
        return jsonify(error="csrf", detail=error.description), 400
    return render_template("auth/csrf.html", reason=error.description), 400


def current_user() -> User:
    user = g.get("user")
    if user is None:
        abort(401)
    return user


def current_viewer() -> Viewer:
    """The signed-in user as the query layer sees them (roles, caseload, channel, address)."""
    user = current_user()
    return Viewer(user_id=user.id, username=user.username, roles=tuple(user.roles), worker_name=user.worker_name,
                  teams=tuple(user.teams), client=client_address(), channel=g.get("channel", "web"))


def has_permission(permission: str) -> bool:
    user = g.get("user")
    return user is not None and access_policy_for_app().permits(user.roles, permission)


def access_policy_for_app():
    from admin_ui.app import current_hub

    return access_policy(current_hub())


def require_permission(permission: str) -> Callable:
    """Decorator: the view runs only for a user whose roles grant `permission` (see
    config/access_policy.toml); anyone else gets 403 (JSON under /api/)."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if g.get("user") is None:
                if _wants_json():
                    return jsonify(error="unauthorised"), 401
                return redirect(url_for("auth.login", next=_safe_next(request.full_path)))
            if not has_permission(permission):
                from admin_ui.app import current_hub
                from hub.audit import AuditEvent, record

                record(current_hub().store, AuditEvent(g.user.username, "access_denied", outcome="refused",
                                                       target=request.path, client=client_address(),
                                                       detail={"permission": permission}))
                if _wants_json():
                    return jsonify(error="forbidden", detail=f"your role does not grant {permission!r}"), 403
                return render_template("errors/403.html", reason=f"it needs the {permission!r} permission"), 403
            return view(*args, **kwargs)

        wrapped.required_permission = permission  # type: ignore[attr-defined]
        return wrapped

    return decorate
