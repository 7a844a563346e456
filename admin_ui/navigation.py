"""The service navigation shown on every page (areas register their entry here)."""

from __future__ import annotations

from flask import request

NAV = [
    ("/persons", "People"),
    ("/quarantine", "Quarantine"),
]


def nav_items() -> list[dict[str, object]]:
    return [{"href": href, "text": text, "active": request.path.startswith(href)} for href, text in NAV]
