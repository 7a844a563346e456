"""The service navigation shown on every page: each area, and the permission a user needs
for it to be listed (the pages themselves enforce the same permission)."""

from __future__ import annotations

from flask import g, request

# (href, text, permission)
NAV: list[tuple[str, str, str]] = [
    ("/persons", "People", "search"),
    ("/console", "Message flows", "console"),
    ("/console/messages", "Messages", "console"),
    ("/console/dead-letters", "Dead letters", "console"),
    ("/adapters", "Adapters", "console"),
    ("/quarantine", "Quarantine", "console"),
    ("/review", "Review", "review"),
    ("/decommissioning", "Decommissioning", "console"),
    ("/audit", "Audit", "audit"),
    ("/users/tokens", "All API tokens", "users"),
]


def _allowed(permission: str) -> bool:
    if g.get("user") is None:
        return False
    from admin_ui.auth import has_permission

    return has_permission(permission)


def nav_items() -> list[dict[str, object]]:
    """The areas the signed-in user may open; the one holding the current page is active
    (the longest matching prefix, so /console/messages is not also "Message flows")."""
    items = [(href, text) for href, text, permission in NAV if _allowed(permission)]
    matches = [href for href, _ in items if request.path == href or request.path.startswith(href + "/")]
    active = max(matches, key=len, default=None)
    return [{"href": href, "text": text, "active": href == active} for href, text in items]
