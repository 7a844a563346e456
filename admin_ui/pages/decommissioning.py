"""Decommissioning dashboard: every legacy system with its phase, quality score,
reconciliation state and readiness; the burndown towards "one database"; a page per system
where programme staff advance or revert its phase with a reason. Permission "console"."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from admin_ui.app import current_hub
from admin_ui.auth import current_user, require_permission
from hub.services.decommissioning import (
    burndown,
    quality_scores,
    readiness_from_last_reconciliation,
    take_snapshot,
)
from hub.systems import UnknownSystem
from routing.lifecycle import PhaseGateFailed, TransitionRefused

bp = Blueprint("decommissioning", __name__)


def _lifecycle() -> Any:
    return current_hub().extras["lifecycle"]


@bp.get("/decommissioning")
@require_permission("console")
def dashboard() -> Any:
    hub = current_hub()
    lifecycle = _lifecycle()
    overview = lifecycle.overview()
    names = [row["system"] for row in overview]
    scores = quality_scores(hub.store, names)
    readiness = {name: readiness_from_last_reconciliation(lifecycle, name) for name in names}
    points = burndown(hub.store, names)
    return render_template("console/decommissioning.html", overview=overview, scores=scores, readiness=readiness,
                           points=points)


@bp.get("/decommissioning/<system>")
@require_permission("console")
def system(system: str) -> Any:
    return _system_page(system, fresh=False)


@bp.post("/decommissioning/<system>/check")
@require_permission("console")
def check(system: str) -> Any:
    """Run a fresh reconciliation and every check of the next step's gate, without acting."""
    return _system_page(system, fresh=True)


@bp.post("/decommissioning/<system>/<direction>")
@require_permission("console")
def move(system: str, direction: str) -> Any:
    if direction not in ("advance", "revert"):
        abort(404, f"no action {direction}")
    hub, lifecycle = current_hub(), _lifecycle()
    reason = (request.form.get("reason") or "").strip()
    _known(system)
    if not reason:
        return _system_page(system, fresh=False, errors={f"{direction}-reason": f"Enter why you {direction} {system}"},
                            status=400)
    act = lifecycle.advance if direction == "advance" else lifecycle.revert
    try:
        result = act(system, who=current_user().username, reason=reason)
    except PhaseGateFailed as exc:
        failing = "; ".join(f"{c.name.replace('_', ' ')}: {c.detail}" for c in exc.failed)
        flash(f"{system} cannot move to {exc.target.value.replace('_', ' ')}. Failing checks: {failing}", "error")
        return redirect(url_for("decommissioning.system", system=system))
    except TransitionRefused as exc:
        flash(f"{system}: {exc}", "error")
        return redirect(url_for("decommissioning.system", system=system))
    take_snapshot(hub)
    flash(f"{system} moved from {result['from'].replace('_', ' ')} to {result['to'].replace('_', ' ')}.", "success")
    return redirect(url_for("decommissioning.system", system=system))


def _known(system: str) -> None:
    try:
        _lifecycle().phase(system)
    except UnknownSystem:
        abort(404, f"no system {system}")


def _system_page(system: str, *, fresh: bool, errors: dict[str, str] | None = None, status: int = 200) -> Any:
    hub, lifecycle = current_hub(), _lifecycle()
    _known(system)
    detail = lifecycle.detail(system)
    readiness = lifecycle.checks(system) if fresh else readiness_from_last_reconciliation(lifecycle, system)
    if fresh:
        detail = lifecycle.detail(system)  # the check recorded a new reconciliation
    score = quality_scores(hub.store, [system])[system]
    return render_template("console/decommissioning_system.html", d=detail, readiness=readiness, fresh=fresh,
                           score=score, errors=errors or {}), status
