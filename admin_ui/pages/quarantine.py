"""Quarantine: records that failed translation, with every reason and the raw row; re-run
after a fix (to the mapping, at source, or a correction made here), or accept with a reason.
Permission "console"."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from admin_ui.app import current_hub
from admin_ui.auth import current_user, require_permission
from hub.audit import AuditEvent, record
from hub.services.quarantine import QuarantineEntryNotFound, accept, list_quarantine, rerun
from hub.services.quarantine_fixes import CorrectionRefused, correct_and_rerun, get_entry

bp = Blueprint("quarantine", __name__)

STATUSES = ("open", "resolved", "accepted", "superseded", "all")
PAGE_SIZE = 50


@bp.get("/quarantine")
@require_permission("console")
def index() -> Any:
    hub = current_hub()
    status = request.args.get("status", "open")
    if status not in STATUSES:
        status = "open"
    system = request.args.get("system") or None
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    data = list_quarantine(hub.store, system=system, status=None if status == "all" else status, page=page,
                           page_size=PAGE_SIZE)
    pages = (data["total"] + PAGE_SIZE - 1) // PAGE_SIZE
    args = {k: v for k, v in (("status", status), ("system", system)) if v}
    return render_template("quarantine/index.html", data=data, status=status, system=system, statuses=STATUSES,
                           systems=hub.systems.names(), page=page, pages=pages, args=args)


@bp.get("/quarantine/<int:entry_id>")
@require_permission("console")
def detail(entry_id: int) -> Any:
    try:
        e = get_entry(current_hub().store, entry_id)
    except QuarantineEntryNotFound:
        abort(404, f"no quarantine entry {entry_id}")
    return render_template("quarantine/entry.html", e=e, errors={})


@bp.post("/quarantine/<int:entry_id>/rerun")
@require_permission("console")
def rerun_entry(entry_id: int) -> Any:
    hub = current_hub()
    who = current_user().username
    # Each box of the form is named raw:<JSON path>, e.g. raw:["name","family"].
    corrections = {tuple(json.loads(k.removeprefix("raw:"))): v for k, v in request.form.items()
                   if k.startswith("raw:")}
    try:
        before = get_entry(hub.store, entry_id)
        if corrections:
            # Only fields whose text changed are corrections; untouched ones keep their type.
            corrections = {k: v for k, v in corrections.items() if _as_text(_at(before["raw"], k)) != v}
        result = (correct_and_rerun(hub.store, hub.systems, entry_id, corrections, who) if corrections
                  else rerun(hub.store, hub.systems, entry_id))
    except QuarantineEntryNotFound:
        abort(404, f"no quarantine entry {entry_id}")
    except CorrectionRefused as exc:
        flash(str(exc), "error")
        return redirect(url_for("quarantine.detail", entry_id=entry_id))
    hub.relay.relay_all()
    record(hub.store, AuditEvent(who, "quarantine_rerun", outcome=result["status"], target=f"quarantine/{entry_id}",
                                 detail={"system": result["system"],
                                         "corrected": sorted(".".join(k) for k in corrections)}))
    if result["status"] == "resolved":
        flash(f"Entry {entry_id} re-ran successfully: the record is now in the hub.", "success")
    else:
        flash(f"Entry {entry_id} still fails: {'; '.join(result['reasons'])}", "error")
    return redirect(url_for("quarantine.detail", entry_id=entry_id))


@bp.post("/quarantine/<int:entry_id>/accept")
@require_permission("console")
def accept_entry(entry_id: int) -> Any:
    hub = current_hub()
    reason = (request.form.get("reason") or "").strip()
    try:
        e = get_entry(hub.store, entry_id)
    except QuarantineEntryNotFound:
        abort(404, f"no quarantine entry {entry_id}")
    if not reason:
        return render_template("quarantine/entry.html", e=e,
                               errors={"reason": "Enter why this record is accepted without migrating it"}), 400
    who = current_user().username
    accept(hub.store, entry_id, reason, who=who)
    record(hub.store, AuditEvent(who, "quarantine_accept", outcome="done", target=f"quarantine/{entry_id}",
                                 purpose=reason, detail={"system": e["system"], "source_id": e["source_id"]}))
    flash(f"Entry {entry_id} accepted: it stays visible here with your reason.", "success")
    return redirect(url_for("quarantine.detail", entry_id=entry_id))


def _at(raw: Any, path: tuple[str, ...]) -> Any:
    for step in path:
        raw = raw.get(step) if isinstance(raw, dict) else None
    return raw


def _as_text(value: Any) -> str:
    return "" if value is None else str(value)
