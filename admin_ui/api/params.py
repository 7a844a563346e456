"""Query-string parsing shared by the API endpoints."""

from __future__ import annotations

from flask import abort, request


def page_args(default_size: int = 20, max_size: int = 100) -> tuple[int, int]:
    try:
        page = int(request.args.get("page", 1))
        size = int(request.args.get("page_size", default_size))
    except ValueError:
        abort(400, "page and page_size must be whole numbers")
    if page < 1 or not 1 <= size <= max_size:
        abort(400, f"page must be ≥ 1 and page_size between 1 and {max_size}")
    return page, size
