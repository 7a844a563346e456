"""Quarantine: records that failed translation, with every reason."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from admin_ui.app import current_hub
from hub.services.quarantine import list_quarantine

bp = Blueprint("quarantine", __name__)


@bp.get("/quarantine")
def index() -> Any:
    status = request.args.get("status", "open")
    data = list_quarantine(current_hub().store, system=request.args.get("system") or None,
                           status=None if status == "all" else status)
    return render_template("quarantine/index.html", data=data, status=status)
