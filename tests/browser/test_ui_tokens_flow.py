"""The API tokens page in a real browser: a refused form names the field, a new token is shown
once and works for the API, revoking it stops it; each state passes axe."""

from __future__ import annotations

import urllib.error
import urllib.request

from playwright.sync_api import expect

from tests.browser.browser_support import describe, screenshot, serious_violations


def _api_status(base_url: str, token: str) -> int:
    request = urllib.request.Request(base_url + "/api/v1/persons?name=a", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _no_serious_violations(page) -> None:
    violations = serious_violations(page)
    assert not violations, describe(violations)


def test_create_use_and_revoke_an_api_token(page_as, base_url):
    page = page_as("admin")
    page.goto(base_url + "/account/tokens")
    page.fill("#name", "")
    page.fill("#days", "999")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Enter a name for the token")
    expect(page.locator("#days-error")).to_contain_text("between 1 and 365")
    screenshot(page, "flow-token-refused")
    _no_serious_violations(page)
    page.fill("#name", "browser test")
    page.fill("#days", "7")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#new-token")).to_contain_text("shown only this once")
    token = page.locator("#token-value").input_value()
    assert token.startswith("hubt_")
    screenshot(page, "flow-token-created")
    _no_serious_violations(page)
    assert _api_status(base_url, token) == 200
    prefix = token.split("_")[1]
    page.goto(base_url + "/account/tokens")
    assert token not in page.content()
    row = page.locator("#api-tokens tr", has_text=prefix)
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text(f"Token {prefix} revoked")
    expect(page.locator("#api-tokens tr", has_text=prefix)).to_contain_text("revoked")
    assert _api_status(base_url, token) == 401
