"""Helpers of the browser tests: screenshots and the axe-core accessibility check."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
# axe-core tags of WCAG 2.0, 2.1 and 2.2 at levels A and AA
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_')}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical WCAG 2.2 A/AA violations on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS},
                                       "resultTypes": ["violations"]})
    return [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]


def describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(f"{v['id']} ({v['impact']}): {v['help']} — "
                     + "; ".join(n["target"][0] if isinstance(n["target"][0], str) else str(n["target"])
                                 for n in v["nodes"][:5]) for v in violations)
