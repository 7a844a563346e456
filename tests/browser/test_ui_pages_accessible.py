"""Every page loads in Chromium, renders the GOV.UK template, and has no serious or critical
WCAG 2.2 A/AA violation found by axe-core."""

from __future__ import annotations

import pytest

from hub.identity.review import list_reviews
from hub.services.messages import MessageQuery, list_messages
from hub.services.quarantine import list_quarantine
from hub.services.schedules import recent_runs
from tests.browser.browser_support import describe, screenshot, serious_violations


def _pages(hub) -> list[tuple[str, str]]:
    """(name, path) of every page, with real ids from the estate."""
    message_id = list_messages(hub.store, MessageQuery(page_size=1)).results[0]["message_id"]
    entry = list_quarantine(hub.store, status=None)["entries"][0]
    pair = list_reviews(hub.store, status=None).items[0]
    run = recent_runs(hub.store, limit=1)[0]
    system = hub.systems.names()[0]
    from sqlalchemy import select

    from hub.store.tables.records import SourceRecordRow

    with hub.store.transaction() as s:
        record = s.execute(select(SourceRecordRow).where(SourceRecordRow.person_id.is_not(None))
                           .limit(1)).scalar_one()
    return [
        ("people", "/persons"), ("person", f"/persons/{record.person_id}"),
        ("flows", "/console"), ("messages", "/console/messages"),
        ("messages-filtered", f"/console/messages?system={record.system}&status=processed"),
        ("message", f"/console/messages/{message_id}"),
        ("trace", f"/console/trace?system={record.system}&source_id={record.source_id}"),
        ("dead-letters", "/console/dead-letters"),
        ("adapters", "/adapters"), ("adapter", f"/adapters/{system}"), ("run", f"/adapters/runs/{run.id}"),
        ("quarantine", "/quarantine"), ("quarantine-entry", f"/quarantine/{entry['id']}"),
        ("review", "/review"), ("review-pair", f"/review/{pair['id']}"),
        ("decommissioning", "/decommissioning"), ("decommissioning-system", f"/decommissioning/{system}"),
        ("audit", "/audit"), ("break-glass-reviews", "/audit/break-glass"), ("sign-out", "/sign-out"),
        ("api-tokens", "/account/tokens"), ("all-api-tokens", "/users/tokens"),
        ("people-search", f"/persons?name={record.canonical.get('names', [{}])[0].get('family') or 'a'}"),
        ("not-found", "/no-such-page"),
    ]


# Routes that are not pages: partials, downloads, machine endpoints and redirects.
NOT_PAGES = {"static", "health", "metrics.metrics", "console.flows_live", "persons.export", "persons.home",
             "auth.login"}


def test_every_page_of_the_app_is_in_the_list(estate_hub):
    """A page added later fails here until it is added to the accessibility walk."""
    from admin_ui import create_app

    app = create_app(estate_hub)
    covered = {path.split("?")[0] for _, path in _pages(estate_hub)}
    adapter = app.url_map.bind("localhost")
    endpoints = {adapter.match(path)[0] for path in covered if path != "/no-such-page"}
    pages = {r.endpoint for r in app.url_map.iter_rules()
             if "GET" in r.methods and not r.rule.startswith("/api/") and r.endpoint not in NOT_PAGES}
    assert pages <= endpoints, f"pages missing from the accessibility walk: {sorted(pages - endpoints)}"


def test_every_page_loads_and_passes_axe(estate_hub, page_as, base_url):
    page = page_as("admin")
    failures = []
    # A script or style the Content-Security-Policy blocks, or a script error, shows up here.
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    page.on("console", lambda m: problems.append(f"{page.url}: {m.text}")
            if m.type == "error" and "404 (NOT FOUND)" not in m.text else None)
    for name, path in _pages(estate_hub):
        response = page.goto(base_url + path)
        expected = 404 if name == "not-found" else 200
        assert response is not None and response.status == expected, f"{path}: HTTP {response and response.status}"
        page.locator("main#main-content h1").first.wait_for()
        assert page.locator("header.moj-header").get_by_text("Children's services integration hub").is_visible()
        assert page.locator("body.govuk-frontend-supported").count() == 1, f"{path}: GOV.UK Frontend did not start"
        screenshot(page, f"page-{name}")
        violations = serious_violations(page)
        if violations:
            failures.append(f"{path}\n{describe(violations)}")
    assert not failures, "serious accessibility violations:\n" + "\n\n".join(failures)
    assert not problems, "errors in the browser console:\n" + "\n".join(problems)


@pytest.mark.parametrize("username", ["social.worker"])
def test_sign_in_and_refusal_pages_pass_axe(page_as, base_url, username):
    page = page_as(username)
    response = page.goto(base_url + "/console")
    assert response is not None and response.status == 403
    screenshot(page, "page-forbidden")
    assert not serious_violations(page), describe(serious_violations(page))


def test_the_login_page_passes_axe(browser, base_url):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(base_url + "/login")
        page.locator("#username").wait_for()
        screenshot(page, "page-login")
        assert not serious_violations(page), describe(serious_violations(page))
    finally:
        context.close()
