"""Message console: flows, message browser, a message's journey, dead letters and replay."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, request
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from wtforms.validators import ValidationError

bp = Blueprint("console", __name__)

# Every form carries a CSRF token; the console's own POST views check it even when no
# app-wide CSRF protection is configured.
bp.add_app_template_global(generate_csrf, "csrf_token")


def check_csrf() -> None:
    """Abort with 400 unless the posted form carries a valid CSRF token."""
    try:
        validate_csrf(request.form.get("csrf_token"))
    except (ValidationError, CSRFError) as exc:
        abort(400, f"The form expired or was not sent from this service ({exc}). Go back and try again.")


def form_reason() -> str:
    """The reason a user typed for an action; actions that change state require one."""
    return (request.form.get("reason") or "").strip()


@bp.app_template_filter("when")
def when(value: dt.datetime | str | None) -> str:
    """A timestamp as staff read it: 25 Nov 2026 14:05:09 UTC."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%-d %b %Y %H:%M:%S UTC")


@bp.app_template_filter("percent")
def percent(value: float | None, places: int = 0) -> str:
    return "not known" if value is None else f"{value * 100:.{places}f}%"


@bp.app_template_filter("number")
def number(value: float | None, places: int = 0) -> str:
    if value is None:
        return ""
    return f"{value:,.{places}f}"
