"""/audit: the audit log for data stewards (filter by user, person, action, date) and the
break-glass review list."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request

from admin_ui.app import current_hub
from admin_ui.auth import current_viewer, require_permission
from hub.audit import ACTIONS, AuditFilter
from hub.services import view as views

bp = Blueprint("audit", __name__)


def _date(name: str) -> dt.date | None:
    value = (request.args.get(name) or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        abort(400, f"{name} must be a date like 2026-11-25")


@bp.get("/audit")
@require_permission("audit")
def index() -> Any:
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    action = request.args.get("action") or None
    f = AuditFilter(actor=request.args.get("user") or None, person_id=request.args.get("person_id") or None,
                    action=action if action in ACTIONS else None, since=_date("since"), until=_date("until"),
                    page=page)
    data = views.audit_log(current_hub(), current_viewer(), f)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    pages = (data["total"] + f.page_size - 1) // f.page_size
    return render_template("audit/index.html", data=data, f=f, args=args, pages=pages, actions=ACTIONS)


@bp.get("/audit/break-glass")
@require_permission("audit")
def break_glass() -> Any:
    show_all = request.args.get("all") == "1"
    grants = views.break_glass_reviews(current_hub(), current_viewer(), pending_only=not show_all)
    return render_template("audit/break_glass.html", grants=grants, show_all=show_all)


@bp.post("/audit/break-glass/<int:grant_id>/review")
@require_permission("audit")
def review(grant_id: int) -> Any:
    try:
        views.review_break_glass(current_hub(), current_viewer(), grant_id, request.form.get("note") or "")
    except LookupError:
        abort(404, f"no break-glass grant {grant_id}")
    flash(f"Break-glass grant {grant_id} marked as reviewed.", "success")
    return redirect("/audit/break-glass")
