"""Message console: flows (live), message browser, a message's journey and payload, tracing a
source record to its golden record, dead letters and replay. Permission "console"."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from admin_ui import charts
from admin_ui.app import current_hub
from admin_ui.auth import access_policy_for_app, current_user, require_permission
from canonical.messages import MessageType
from hub.bus.journal import EVENTS
from hub.services import messages as svc
from hub.services.flows import flow_report
from hub.services.message_payloads import message_payload
from hub.services.trace import trace_source_record

bp = Blueprint("console", __name__)
bp.add_app_template_global(charts, "charts")

PAGE_SIZE = 50


@bp.get("/console")
@require_permission("console")
def flows() -> Any:
    hub = current_hub()
    return render_template("console/flows.html", report=flow_report(hub.store, hub.bus))


@bp.get("/console/flows/live")
@require_permission("console")
def flows_live() -> Any:
    """A part of the flows page alone, fetched by htmx: the figures every 5 s, the charts every 30 s."""
    hub = current_hub()
    template = "console/_flows_charts.html" if request.args.get("part") == "charts" else "console/_flows_panel.html"
    return render_template(template, report=flow_report(hub.store, hub.bus))


@bp.get("/console/messages")
@require_permission("console")
def messages() -> Any:
    hub = current_hub()
    form = {k: (request.args.get(k) or "").strip() for k in
            ("type", "system", "status", "since", "until", "person_id", "ref_key")}
    errors: dict[str, str] = {}
    since, until = _time(form["since"], "since", errors), _time(form["until"], "until", errors)
    if form["status"] and form["status"] not in EVENTS:
        errors["status"] = "Choose a status from the list"
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    result = None
    if not errors:
        q = svc.MessageQuery(type=form["type"] or None, system=form["system"] or None, status=form["status"] or None,
                             since=since, until=until, person_id=form["person_id"] or None,
                             ref_key=form["ref_key"] or None, page=page, page_size=PAGE_SIZE)
        result = svc.list_messages(hub.store, q)
    pages = ((result.total + PAGE_SIZE - 1) // PAGE_SIZE) if result else 0
    return render_template("console/messages.html", form=form, errors=errors, result=result, page=page,
                           pages=pages, events=EVENTS, systems=hub.systems.names(),
                           types=[t.value for t in _message_types()],
                           args={k: v for k, v in form.items() if v})


@bp.get("/console/messages/<message_id>")
@require_permission("console")
def message(message_id: str) -> Any:
    hub = current_hub()
    try:
        journey = svc.message_journey(hub.store, message_id)
    except svc.MessageNotFound:
        abort(404, f"no message {message_id}")
    payload = message_payload(hub.store, access_policy_for_app(), list(current_user().roles), message_id)
    if payload.payload is not None:  # personal data was shown: audited like any other view
        _audit("view", {"message_id": message_id, "level": payload.level, "withheld": payload.withheld},
               target=f"message/{message_id}")
    return render_template("console/message.html", m=journey, payload=payload)


@bp.get("/console/trace")
@require_permission("console")
def trace() -> Any:
    hub = current_hub()
    system = (request.args.get("system") or "").strip()
    source_id = (request.args.get("source_id") or "").strip()
    ref_key = (request.args.get("ref_key") or "").strip()
    if ref_key and not (system and source_id) and ref_key.count("/") >= 2:
        system, _, source_id = ref_key.split("/", 2)
    result = trace_source_record(hub.store, system, source_id) if system and source_id else None
    return render_template("console/trace.html", system=system, source_id=source_id, result=result,
                           systems=hub.systems.names())


@bp.get("/console/dead-letters")
@require_permission("console")
def dead_letters() -> Any:
    hub = current_hub()
    queue = request.args.get("queue") or None
    if queue and queue not in svc.QUEUES:
        abort(404, f"no queue {queue}")
    letters = svc.dead_letters(hub.bus, [queue] if queue else svc.QUEUES)
    return render_template("console/dead_letters.html", letters=letters, queue=queue, queues=svc.QUEUES)


@bp.post("/console/dead-letters/replay")
@require_permission("console")
def replay() -> Any:
    hub = current_hub()
    replay_all = request.form.get("all") == "yes"
    ids = request.form.getlist("message_id")
    queue = request.form.get("queue") or None
    if queue and queue not in svc.QUEUES:
        abort(400, f"no queue {queue}")
    if not replay_all and not ids:
        flash("Select at least one dead letter to replay.", "error")
        return redirect(url_for("console.dead_letters", queue=queue))
    result = svc.replay(hub.bus, None if replay_all else ids, [queue] if queue else svc.QUEUES)
    _audit("dead_letter_replay", {"all": replay_all, "queue": queue, "message_ids": ids[:100],
                                     "replayed": result["replayed"]})
    moved = result["replayed"]
    flash(f"{moved} dead letter{'s' if moved != 1 else ''} sent back to {'their queues' if moved != 1 else 'its queue'}."
          + (f" {result['detail']}." if result.get("detail") else ""), "success")
    return redirect(url_for("console.dead_letters", queue=queue))


def _audit(action: str, detail: dict[str, Any], target: str | None = None) -> None:
    from hub.audit import AuditEvent, record

    record(current_hub().store, AuditEvent(current_user().username, action, outcome="done", target=target,
                                           client=request.remote_addr, detail=detail))


def _message_types() -> list[MessageType]:
    return list(MessageType)


def _time(raw: str, name: str, errors: dict[str, str]) -> dt.datetime | None:
    """A time typed as 2026-11-25, 2026-11-25 14:05 or an ISO timestamp; UTC unless a zone is given."""
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace(" ", "T", 1) if len(raw) > 10 else raw)
    except ValueError:
        errors[name] = "Enter a date and time like 2026-11-25 14:05"
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


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


@bp.app_template_filter("pretty_json")
def pretty_json(value: Any) -> str:
    """JSON for people to read: indented, characters as they are (the template escapes HTML)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)
