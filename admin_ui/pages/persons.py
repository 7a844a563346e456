"""People: search, one person's consolidated view, break-glass and the subject-access export.
Every view goes through `hub.services.view`, which applies the access policy and the audit."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request

from admin_ui.app import current_hub
from admin_ui.auth import current_viewer, has_permission, require_permission
from hub.services import view as views
from hub.services.persons import PersonNotFound, SearchQuery

bp = Blueprint("persons", __name__)

CATEGORY_LABELS = {
    "social_care": "Children's social care", "youth_justice": "Youth justice", "early_help": "Early help",
    "education": "Education", "youth_service": "Youth service", "childrens_centres": "Children's centres",
    "health": "Health",
}


@bp.app_template_filter("service_label")
def service_label(category: str) -> str:
    return CATEGORY_LABELS.get(category, category.replace("_", " ").capitalize())


@bp.get("/")
def home() -> Any:
    if has_permission("search"):
        return redirect("/persons")
    if has_permission("console"):
        return redirect("/console") if _has_route("/console") else render_template("auth/home.html")
    return render_template("auth/home.html")


def _has_route(path: str) -> bool:
    from flask import current_app

    return any(rule.rule == path for rule in current_app.url_map.iter_rules())


def _query(page_size: int = 20) -> SearchQuery:
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    return SearchQuery(name=request.args.get("name") or None, birth_date=request.args.get("birth_date") or None,
                       identifier=request.args.get("identifier") or None,
                       postcode=request.args.get("postcode") or None, page=page, page_size=page_size)


@bp.get("/persons")
@require_permission("search")
def search() -> Any:
    q = _query()
    searched = not q.empty
    result = views.search(current_hub(), current_viewer(), q)
    args = {k: v for k, v in (("name", q.name), ("birth_date", q.birth_date), ("identifier", q.identifier),
                              ("postcode", q.postcode)) if v}
    return render_template("persons/search.html", q=q, result=result, searched=searched, args=args)


@bp.get("/persons/<person_id>")
@require_permission("view")
def person(person_id: str) -> Any:
    try:
        p = views.person_view(current_hub(), current_viewer(), person_id, purpose=request.args.get("purpose"))
    except PersonNotFound:
        abort(404, f"no person {person_id}")
    return render_template("persons/person.html", p=p, may_export=has_permission("export"))


@bp.post("/persons/<person_id>/break-glass")
@require_permission("break_glass")
def break_glass(person_id: str) -> Any:
    reason = (request.form.get("reason") or "").strip()
    try:
        grant = views.break_glass(current_hub(), current_viewer(), person_id, reason)
    except PersonNotFound:
        abort(404, f"no person {person_id}")
    except ValueError as exc:
        p = views.person_view(current_hub(), current_viewer(), person_id)
        return render_template("persons/person.html", p=p, may_export=has_permission("export"),
                               break_glass_error=str(exc), reason=reason), 400
    flash(f"You have raised access to this person until {grant['expires_at'][11:16]} UTC. "
          "This is recorded and will be reviewed.", "success")
    return redirect(f"/persons/{grant['person_id']}")


@bp.get("/persons/<person_id>/export.<fmt>")
@require_permission("export")
def export(person_id: str, fmt: str) -> Any:
    if fmt not in ("json", "csv"):
        abort(404)
    try:
        body = views.subject_access_export(current_hub(), current_viewer(), person_id, fmt)
    except PersonNotFound:
        abort(404, f"no person {person_id}")
    mimetype = "application/json" if fmt == "json" else "text/csv"
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="subject-access-{person_id}.{fmt}"'})
