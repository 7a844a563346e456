"""Signing in from tests: create an account, sign a Flask test client or a Playwright page in
through the real /login form (with its CSRF token), or mint an API token."""

from __future__ import annotations

import re
from typing import Any

from hub.users import User, add_user, create_token

DEFAULT_PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def create_user(hub: Any, username: str, roles: list[str] | tuple[str, ...], password: str = DEFAULT_PASSWORD,
                *, worker_name: str | None = None, teams: list[str] | None = None) -> User:
    """A local account with `roles` (names from config/access_policy.toml)."""
    return add_user(hub.store, username, password, list(roles), actor="test", worker_name=worker_name,
                    teams=teams)


def csrf_token(client: Any, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a rendered form."""
    page = client.get(path)
    match = _CSRF.search(page.get_data(as_text=True))
    if match is None:
        raise AssertionError(f"no csrf_token in {path} (status {page.status_code})")
    return match.group(1)


def login_client(app: Any, username: str, password: str = DEFAULT_PASSWORD) -> Any:
    """A Flask test client signed in as `username` through the /login form."""
    client = app.test_client()
    token = csrf_token(client)
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token,
                                           "next": "/"})
    if response.status_code != 302:
        raise AssertionError(f"sign-in as {username!r} failed: {response.status_code}")
    client.csrf_token = csrf_token(client, "/sign-out")
    return client


def login_page(page: Any, base_url: str, username: str, password: str = DEFAULT_PASSWORD) -> None:
    """Sign a Playwright page in through the /login form."""
    page.goto(f"{base_url.rstrip('/')}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#sign-in")
    page.wait_for_url(lambda url: "/login" not in url)


def api_token(hub: Any, username: str) -> str:
    """A bearer token for the JSON API (send as `Authorization: Bearer <token>`)."""
    return create_token(hub.store, username, name="test", actor="test")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
