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

from tests.support.auth import create_user, login_page
from tests.support.services import services_required

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

USERS = {
    "admin": ["integration_admin", "data_steward"],   # sees every console page and the people pages
    "steward": ["data_steward"],
    "programme": ["programme_manager"],
    "social.worker": ["social_worker"],
}


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
    """A hub on SQLite over a 60-person sample estate (with a few malformed rows), every system
    ingested and processed, and three poison messages dead-lettered."""
    from canonical.messages import Envelope, MessageType
    from hub.bootstrap import bootstrap
    from hub.config import HubConfig
    from hub.estate import generate
    from hub.estate.youth_justice_api import serve_youth_justice_in_thread
    from hub.outbox import add_to_outbox
    from hub.services.messages import dead_letters
    from hub.worker import run_worker

    base = tmp_path_factory.mktemp("ui-estate")
    generate(base / "estate", people=60, malformed_rate=0.05)
    standin = serve_youth_justice_in_thread(base / "estate")
    saved = {k: os.environ.get(k) for k in ("YJ_API_URL", "YJ_API_TOKEN")}
    os.environ["YJ_API_URL"], os.environ["YJ_API_TOKEN"] = standin.url, standin.token
    systems_dir = Path(__file__).resolve().parents[2] / "systems"
    config = HubConfig.model_validate({
        "store": {"url": f"sqlite:///{base}/hub.db"},
        "bus": {"max_attempts": 2, "base_delay_s": 0.01, "max_delay_s": 0.05},
        "systems": {"dir": str(systems_dir), "estate_dir": str(base / "estate")},
        "web": {"secret_key": "browser-tests"},
    })
    hub = bootstrap(config)
    for name in hub.systems.names():
        hub.ingest.run(name, trigger="test")
    poison = [Envelope(type=MessageType.RECORD_UPSERTED, source_system="youth_service",
                       payload={"not": "a source record", "n": i}) for i in range(3)]
    with hub.store.transaction() as s:
        add_to_outbox(s, poison)
    hub.relay.relay_all()
    # Each poison message fails, is retried after its back-off, fails again and is dead-lettered;
    # the worker is run until all three are (a pass can end while a retry is still waiting).
    for _ in range(30):
        run_worker(hub.bus, hub.worker, batch_size=200, idle_timeout_s=0.5)
        if len(dead_letters(hub.bus)) >= len(poison):
            break
    assert len(dead_letters(hub.bus)) == len(poison), "the poison messages were not dead-lettered"
    for username, roles in USERS.items():
        create_user(hub, username, roles)
    yield hub
    hub.close()
    standin.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


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
