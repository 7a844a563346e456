"""Sign-in: refusal of anonymous requests, CSRF on every form, tampered and idle sessions,
throttling and lock-out per account and per address, API tokens, permissions, headers."""

from __future__ import annotations

import datetime as dt

import pytest
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select

from admin_ui import create_app
from hub.store.tables.access import ApiTokenRow, UserSessionRow
from hub.users import (
    SignInRefused,
    Throttle,
    authenticate,
    create_token,
    revoke_token,
    user_for_token,
)
from tests.support.auth import (
    DEFAULT_PASSWORD,
    api_token,
    bearer,
    create_user,
    csrf_token,
    login_client,
)
from tests.unit.access.access_estate import make_hub


@pytest.fixture
def hub(sqlite_store, tmp_path):
    h = make_hub(sqlite_store.url, str(tmp_path / "systems"))
    yield h
    h.bus.close()


@pytest.fixture
def app(hub):
    create_user(hub, "sw", ["social_worker"])
    create_user(hub, "steward", ["data_steward"])
    create_user(hub, "pm", ["programme_manager"])
    return create_app(hub, testing=True)


def test_anonymous_requests_are_refused_except_login_health_and_static(app):
    client = app.test_client()
    page = client.get("/persons?name=amy")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login?next=/persons")
    api = client.get("/api/v1/persons")
    assert api.status_code == 401 and api.get_json()["error"] == "unauthorised"
    assert client.get("/api/v1/openapi.json").status_code == 401
    assert client.get("/audit").status_code == 302
    assert client.get("/health").status_code == 200
    assert client.get("/login").status_code == 200
    assert client.get("/static/css/hub.css").status_code == 200


def test_sign_in_and_out_with_csrf_tokens(app):
    client = app.test_client()
    assert client.post("/login", data={"username": "sw", "password": DEFAULT_PASSWORD}).status_code == 400
    token = csrf_token(client)
    ok = client.post("/login", data={"username": "sw", "password": DEFAULT_PASSWORD, "csrf_token": token,
                                     "next": "/persons"})
    assert ok.status_code == 302 and ok.headers["Location"] == "/persons"
    assert client.get("/persons").status_code == 200
    assert client.post("/sign-out").status_code == 400  # no CSRF token: refused, still signed in
    assert client.get("/persons").status_code == 200
    assert client.post("/sign-out", data={"csrf_token": csrf_token(client, "/sign-out")}).status_code == 302
    assert client.get("/persons").status_code == 302


def test_a_wrong_password_gets_the_same_answer_as_an_unknown_user(app):
    client = app.test_client()
    token = csrf_token(client)
    wrong = client.post("/login", data={"username": "sw", "password": "nope nope nope", "csrf_token": token})
    unknown = client.post("/login", data={"username": "nobody", "password": "nope nope nope", "csrf_token": token})
    assert wrong.status_code == unknown.status_code == 401
    assert b"not right, or the account is locked" in wrong.data and b"not right, or the account is locked" in unknown.data


def test_the_next_parameter_never_leaves_the_site(app):
    client = app.test_client()
    r = client.post("/login", data={"username": "sw", "password": DEFAULT_PASSWORD, "csrf_token": csrf_token(client),
                                    "next": "//evil.example/x"})
    assert r.headers["Location"] == "/"


def test_a_tampered_or_foreign_session_cookie_is_refused(app):
    client = login_client(app, "sw")
    assert client.get("/persons").status_code == 200
    cookie = client.get_cookie("hub_session")
    client.set_cookie("hub_session", cookie.value[:-2] + ("AA" if not cookie.value.endswith("AA") else "BB"))
    assert client.get("/persons").status_code == 302
    # A session signed with another key claiming to be user 1 is refused too.
    forged_app = create_app(app.extensions["hub"], testing=True, settings={"SECRET_KEY": "another key"})
    serializer = SecureCookieSessionInterface().get_signing_serializer(forged_app)
    now = int(dt.datetime.now(dt.UTC).timestamp())
    client.set_cookie("hub_session", serializer.dumps({"user_id": 1, "signed_in": now, "last_seen": now}))
    assert client.get("/persons").status_code == 302


def _age_sessions(hub, **ago) -> None:
    """Move every session's clock back, as if that much time had passed."""
    with hub.store.transaction() as s:
        for row in s.execute(select(UserSessionRow)).scalars():
            row.last_seen_at -= dt.timedelta(**ago)
            row.signed_in_at -= dt.timedelta(**ago)


def test_an_idle_session_expires_on_the_server_whatever_the_cookie(app, hub):
    client = login_client(app, "sw")
    assert client.get("/persons").status_code == 200
    _age_sessions(hub, minutes=31)
    cookie = client.get_cookie("hub_session").value
    assert client.get("/persons").status_code == 302
    client.set_cookie("hub_session", cookie)  # the cookie as it was before the time-out
    assert client.get("/persons").status_code == 302
    with hub.store.transaction() as s:
        assert s.execute(select(UserSessionRow.end_reason)).scalar_one() == "idle"


def test_an_active_session_ends_at_its_absolute_lifetime(app, hub):
    client = login_client(app, "sw")
    with hub.store.transaction() as s:
        s.execute(select(UserSessionRow)).scalar_one().signed_in_at -= dt.timedelta(hours=8, minutes=1)
    assert client.get("/persons").status_code == 302


def test_a_cookie_from_before_sign_out_is_refused_after_it(app, hub):
    """The refresh race: a slow request that started before sign-out answers after it with the
    session cookie; replaying that cookie must not sign the user back in."""
    client = login_client(app, "sw")
    stale = client.get_cookie("hub_session").value
    assert client.post("/sign-out", data={"csrf_token": client.csrf_token}).status_code == 302
    client.set_cookie("hub_session", stale)
    assert client.get("/persons").status_code == 302
    assert app.test_client().get("/persons", headers={"Cookie": f"hub_session={stale}"}).status_code == 302


def test_ordinary_requests_do_not_rewrite_the_session_cookie(app):
    client = login_client(app, "sw")
    client.get("/persons")
    for path in ("/persons", "/persons?name=amy", "/"):
        assert "hub_session=" not in client.get(path).headers.get("Set-Cookie", ""), path


def test_session_cookie_flags_and_security_headers(hub):
    create_user(hub, "sw", ["social_worker"])
    app = create_app(hub, testing=True, settings={"SESSION_COOKIE_SECURE": True})
    client = app.test_client()
    form = client.get("/login", base_url="https://localhost").get_data(as_text=True)
    token = form.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post("/login", data={"username": "sw", "password": DEFAULT_PASSWORD, "csrf_token": token},
                    base_url="https://localhost", headers={"Referer": "https://localhost/login"})
    assert r.status_code == 302
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    page = client.get("/login", base_url="https://localhost")
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in app.test_client().get("/login").headers


def test_roles_that_may_not_use_a_part_of_the_hub_are_refused(app):
    sw = login_client(app, "sw")
    assert sw.get("/audit").status_code == 403
    assert sw.get("/api/v1/persons?name=x").status_code == 200
    steward = login_client(app, "steward")
    assert steward.get("/audit").status_code == 200
    pm = login_client(app, "pm")
    assert pm.get("/persons").status_code == 403
    assert pm.get("/api/v1/persons").get_json()["error"] == "forbidden"


def test_api_tokens_are_hashed_at_rest_work_only_for_the_api_and_can_be_revoked(app, hub):
    token = api_token(hub, "sw")
    with hub.store.transaction() as s:
        rows = s.execute(select(ApiTokenRow)).scalars().all()
    assert len(rows) == 1 and token not in rows[0].token_hash and rows[0].token_hash != token
    client = app.test_client()
    assert client.get("/api/v1/persons?name=amy", headers=bearer(token)).status_code == 200
    assert client.get("/persons", headers=bearer(token)).status_code == 302  # pages need a session
    # A bearer request carries no cookie, so it needs no CSRF token; a cookie request does.
    r = client.post("/api/v1/persons/PNOPE/break-glass", json={"reason": "child at risk tonight"},
                    headers=bearer(token))
    assert r.status_code == 404
    cookie_client = login_client(app, "sw")
    assert cookie_client.post("/api/v1/persons/PNOPE/break-glass",
                              json={"reason": "child at risk tonight"}).status_code == 400
    assert client.get("/api/v1/persons", headers=bearer(token + "x")).status_code == 401
    revoke_token(hub.store, rows[0].prefix)
    assert client.get("/api/v1/persons", headers=bearer(token)).status_code == 401


def test_expired_tokens_are_refused(hub):
    create_user(hub, "sw", ["social_worker"])
    token = create_token(hub.store, "sw", days=1)
    assert user_for_token(hub.store, token) is not None
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    assert user_for_token(hub.store, token, now=later) is None


def test_lock_out_per_account_on_both_stores(store, tmp_path):
    hub = make_hub(store.url, str(tmp_path / "systems"))
    create_user(hub, "sw", ["social_worker"])
    throttle = Throttle(account_failures=3, ip_failures=100)
    t0 = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
    for i in range(3):
        with pytest.raises(SignInRefused):
            authenticate(hub.store, "sw", "wrong password", client="10.0.0.1", throttle=throttle,
                         now=t0 + dt.timedelta(seconds=i))
    with pytest.raises(SignInRefused, match="account locked"):  # even the right password
        authenticate(hub.store, "sw", DEFAULT_PASSWORD, client="10.0.0.2", throttle=throttle,
                     now=t0 + dt.timedelta(minutes=1))
    user = authenticate(hub.store, "sw", DEFAULT_PASSWORD, client="10.0.0.2", throttle=throttle,
                        now=t0 + dt.timedelta(minutes=16))
    assert user.username == "sw"
    hub.bus.close()


def test_throttling_per_address(hub):
    create_user(hub, "sw", ["social_worker"])
    throttle = Throttle(account_failures=100, ip_failures=4)
    t0 = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
    for i in range(4):
        with pytest.raises(SignInRefused):
            authenticate(hub.store, f"guess{i}", "whatever", client="10.9.9.9", throttle=throttle, now=t0)
    with pytest.raises(SignInRefused, match="address throttled"):
        authenticate(hub.store, "sw", DEFAULT_PASSWORD, client="10.9.9.9", throttle=throttle, now=t0)
    assert authenticate(hub.store, "sw", DEFAULT_PASSWORD, client="10.1.1.1", throttle=throttle, now=t0)


def test_me_tells_the_caller_their_roles_and_levels(app, hub):
    token = api_token(hub, "sw")
    me = app.test_client().get("/api/v1/me", headers=bearer(token)).get_json()
    assert me["username"] == "sw" and me["roles"] == ["social_worker"]
    assert "break_glass" in me["permissions"] and "audit" not in me["permissions"]
    assert me["categories"]["social_care"] == "full" and me["fields"]["health_conditions"] == "none"
    assert app.test_client().get("/api/v1/me").status_code == 401
