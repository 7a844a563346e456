"""People: search, and one person's record across every service."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request

from admin_ui.app import current_hub
from hub.services.persons import PersonNotFound, SearchQuery, get_person, search_persons

bp = Blueprint("persons", __name__)


@bp.get("/")
def home() -> Any:
    return redirect("/persons")


@bp.get("/persons")
def search() -> Any:
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    q = SearchQuery(name=request.args.get("name") or None, birth_date=request.args.get("birth_date") or None,
                    identifier=request.args.get("identifier") or None, postcode=request.args.get("postcode") or None,
                    page=page)
    searched = any((q.name, q.birth_date, q.identifier, q.postcode))
    result = search_persons(current_hub().store, q)
    return render_template("persons/search.html", q=q, result=result, searched=searched)


@bp.get("/persons/<person_id>")
def person(person_id: str) -> Any:
    try:
        view = get_person(current_hub().store, person_id)
    except PersonNotFound:
        abort(404, f"no person {person_id}")
    return render_template("persons/person.html", p=view)
