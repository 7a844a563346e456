"""The identity review queue: possible matches side by side with the evidence field by field;
a data steward decides "same person", "not the same person" or "unsure", with a reason.
Permission "review"."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from admin_ui.app import current_hub
from admin_ui.auth import current_user, require_permission
from hub.identity import review as rv
from hub.identity.model_file import load_model

bp = Blueprint("review", __name__)

PAGE_SIZE = 20
DECISIONS = {"link": "Same person", "not_same": "Not the same person", "unsure": "Unsure"}


@bp.get("/review")
@require_permission("review")
def index() -> Any:
    hub = current_hub()
    status = request.args.get("status", "open")
    if status not in (*rv.STATUSES, "all"):
        status = "open"
    system = request.args.get("system") or None
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    result = rv.list_reviews(hub.store, status=None if status == "all" else status, system=system, page=page,
                             page_size=PAGE_SIZE)
    pages = (result.total + PAGE_SIZE - 1) // PAGE_SIZE
    args = {k: v for k, v in (("status", status), ("system", system)) if v}
    return render_template("console/review_queue.html", result=result, status=status, system=system,
                           statuses=(*rv.STATUSES, "all"), systems=hub.systems.names(), page=page, pages=pages,
                           args=args)


@bp.get("/review/<int:review_id>")
@require_permission("review")
def pair(review_id: int) -> Any:
    try:
        detail = rv.get_review(current_hub().store, review_id)
    except rv.ReviewNotFound:
        abort(404, f"no review pair {review_id}")
    return render_template("console/review_pair.html", r=detail, decisions=DECISIONS, errors={}, form={})


@bp.post("/review/<int:review_id>")
@require_permission("review")
def decide(review_id: int) -> Any:
    hub = current_hub()
    decision = request.form.get("decision", "")
    reason = (request.form.get("reason") or "").strip()
    errors = {}
    if decision not in DECISIONS:
        errors["decision-link"] = "Choose whether these records are the same person"
    if not reason:
        errors["reason"] = "Enter the reason for your decision"
    try:
        if errors:
            detail = rv.get_review(hub.store, review_id)
            return render_template("console/review_pair.html", r=detail, decisions=DECISIONS, errors=errors,
                                   form={"decision": decision, "reason": reason}), 400
        model = getattr(hub.worker.linker, "model", None) or load_model()
        rv.decide(hub.store, review_id, decision, user=current_user().username, reason=reason, model=model)
    except rv.ReviewNotFound:
        abort(404, f"no review pair {review_id}")
    except rv.ReviewRejected as exc:
        detail = rv.get_review(hub.store, review_id)
        return render_template("console/review_pair.html", r=detail, decisions=DECISIONS,
                               errors={"decision-link": str(exc)}, form={"decision": decision, "reason": reason}), 400
    hub.relay.relay_all()
    flash(f"Pair {review_id}: {DECISIONS[decision].lower()}. Your reason is recorded.", "success")
    return redirect(url_for("review.pair", review_id=review_id))
