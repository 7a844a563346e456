"""Browser tests: Debian's Chromium driven by Playwright against the real app, served by
werkzeug on a free port, over a small sample estate ingested through the bus.

Never downloads a browser: without /usr/bin/chromium the tests skip (HUB_REQUIRE_SERVICES=1
makes that a failure); `scripts/install-browser.sh` installs Debian's package.
Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.auth import login_page
from tests.support.services import services_required
from tests.unit.ui.ui_estate import estate_hub as ui_estate_hub

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing: run scripts/install-browser.sh (Debian's chromium package)"
        if services_required():
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
def estate_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A hub on SQLite over a 60-person sample estate: see tests/unit/ui/ui_estate.py."""
    with ui_estate_hub(tmp_path_factory.mktemp("ui-estate")) as hub:
        yield hub


@pytest.fixture(scope="session")
def base_url(estate_hub: Any) -> Iterator[str]:
    from werkzeug.serving import make_server

    from admin_ui import create_app

    app = create_app(estate_hub, settings={"WTF_CSRF_TIME_LIMIT": None})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="ui-test-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page_as(browser: Any, base_url: str) -> Iterator[Callable[[str], Any]]:
    """`page_as("steward")`: a fresh browser context signed in as that user."""
    contexts = []

    def open_as(username: str) -> Any:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        login_page(page, base_url, username)
        return page

    yield open_as
    for context in contexts:
        context.close()
