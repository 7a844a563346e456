"""Adapters and schedules: each legacy system's adapter status, last runs with their figures,
next run; run now, pause and resume (switches the `hub scheduler` process obeys)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from admin_ui.app import current_hub
from admin_ui.auth import current_user, require_permission
from hub.scheduling import ScheduleControl
from hub.services.schedules import adapter_status, adapter_statuses, run_by_id
from hub.systems import UnknownSystem

bp = Blueprint("adapters", __name__)


@bp.get("/adapters")
@require_permission("console")
def index() -> Any:
    statuses = adapter_statuses(current_hub())
    return render_template("console/adapters.html", adapters=statuses,
                           scheduler_running=any(a.scheduler_running for a in statuses))


@bp.get("/adapters/<name>")
@require_permission("console")
def system(name: str) -> Any:
    try:
        status = adapter_status(current_hub(), name)
    except UnknownSystem:
        abort(404, f"no system {name}")
    return render_template("console/adapter.html", a=status)


@bp.get("/adapters/runs/<int:run_id>")
@require_permission("console")
def run(run_id: int) -> Any:
    found = run_by_id(current_hub().store, run_id)
    if found is None:
        abort(404, f"no ingest run {run_id}")
    return render_template("console/run.html", run=found)


@bp.post("/adapters/<name>/<action>")
@require_permission("console")
def act(name: str, action: str) -> Any:
    hub = current_hub()
    try:
        hub.systems.get(name)
    except UnknownSystem:
        abort(404, f"no system {name}")
    control, who = ScheduleControl(hub.store), current_user().username
    if action == "run":
        control.request_run(name, who)
        flash(f"{name}: run requested. The scheduler starts it within a few seconds.", "success")
    elif action == "pause":
        control.pause(name, who, (request.form.get("reason") or "").strip())
        flash(f"{name}: scheduled runs paused.", "success")
    elif action == "resume":
        control.resume(name, who)
        flash(f"{name}: scheduled runs resumed.", "success")
    else:
        abort(404, f"no action {action}")
    _audit(f"adapter_{action}", name, request.form.get("reason"))
    return redirect(url_for("adapters.system", name=name))


def _audit(action: str, system: str, reason: str | None) -> None:
    from hub.audit import AuditEvent, record

    record(current_hub().store, AuditEvent(current_user().username, action, outcome="done", target=system,
                                           purpose=(reason or None)))
