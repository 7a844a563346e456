"""The API tokens page: a user creates a token (shown once), lists and revokes their own, never
anyone else's; an integration admin sees and revokes everyone's; every form needs its CSRF
token and every change is audited."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from admin_ui import create_app
from hub.store.tables.access import ApiTokenRow, AuditRow
from hub.users import list_tokens
from tests.support.auth import bearer, create_user, login_client
from tests.unit.access.access_estate import make_hub

_TOKEN = re.compile(r'value="(hubt_[0-9a-f]{8}_[^"]+)"')


@pytest.fixture
def hub(store, tmp_path):
    h = make_hub(store.url, str(tmp_path / "systems"))
    yield h
    h.bus.close()


@pytest.fixture
def app(hub):
    create_user(hub, "sw", ["social_worker"])
    create_user(hub, "ewo", ["education_welfare_officer"])
    create_user(hub, "admin", ["integration_admin"])
    return create_app(hub, testing=True)


def _create(client, name: str = "case system", days: str = "30"):
    return client.post("/account/tokens", data={"name": name, "days": days, "csrf_token": client.csrf_token})


def _audit(hub, action: str) -> list[AuditRow]:
    with hub.store.transaction() as s:
        return s.execute(select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.seq)).scalars().all()


def test_a_new_token_is_shown_once_works_for_the_api_and_is_listed_without_its_secret(app, hub):
    client = login_client(app, "sw")
    created = _create(client)
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    token = _TOKEN.search(created.get_data(as_text=True)).group(1)
    assert app.test_client().get("/api/v1/persons?name=amy", headers=bearer(token)).status_code == 200
    listing = client.get("/account/tokens").get_data(as_text=True)
    prefix = token.split("_")[1]
    assert "case system" in listing and prefix in listing and token not in listing
    assert token.split("_", 2)[2] not in listing  # the secret part is never shown again
    [row] = list_tokens(hub.store, "sw")
    assert row["status"] == "active" and row["last_used_at"] is not None and row["expires_at"] is not None
    [entry] = _audit(hub, "token_create")
    assert entry.actor == "sw" and entry.target == "sw" and entry.detail["prefix"] == prefix
    assert entry.client == "127.0.0.1"
    assert "Set-Cookie" not in created.headers or token not in created.headers["Set-Cookie"]


def test_revoking_own_token_stops_it_and_is_audited(app, hub):
    client = login_client(app, "sw")
    token = _TOKEN.search(_create(client).get_data(as_text=True)).group(1)
    prefix = token.split("_")[1]
    revoked = client.post(f"/account/tokens/{prefix}/revoke", data={"csrf_token": client.csrf_token})
    assert revoked.status_code == 302
    assert app.test_client().get("/api/v1/persons", headers=bearer(token)).status_code == 401
    assert list_tokens(hub.store, "sw")[0]["status"] == "revoked"
    [entry] = _audit(hub, "token_revoke")
    assert entry.actor == "sw" and entry.target == prefix and entry.detail["owners"] == ["sw"]


def test_a_user_cannot_revoke_or_see_another_users_token(app, hub):
    owner = login_client(app, "sw")
    token = _TOKEN.search(_create(owner).get_data(as_text=True)).group(1)
    prefix = token.split("_")[1]
    other = login_client(app, "ewo")
    assert prefix not in other.get("/account/tokens").get_data(as_text=True)
    assert other.post(f"/account/tokens/{prefix}/revoke", data={"csrf_token": other.csrf_token}).status_code == 404
    assert other.get("/users/tokens").status_code == 403
    assert other.post(f"/users/tokens/{prefix}/revoke", data={"csrf_token": other.csrf_token}).status_code == 403
    assert app.test_client().get("/api/v1/persons", headers=bearer(token)).status_code == 200
    assert _audit(hub, "token_revoke") == []


def test_forms_need_their_csrf_token(app, hub):
    client = login_client(app, "sw")
    assert client.post("/account/tokens", data={"name": "x", "days": "30"}).status_code == 400
    token = _TOKEN.search(_create(client).get_data(as_text=True)).group(1)
    prefix = token.split("_")[1]
    assert client.post(f"/account/tokens/{prefix}/revoke").status_code == 400
    assert list_tokens(hub.store, "sw")[0]["status"] == "active"
    with hub.store.transaction() as s:
        assert len(s.execute(select(ApiTokenRow)).scalars().all()) == 1


@pytest.mark.parametrize(("name", "days", "field"), [("", "30", "name"), ("x" * 121, "30", "name"),
                                                      ("ok", "0", "days"), ("ok", "366", "days"),
                                                      ("ok", "ninety", "days")])
def test_a_bad_form_is_refused_with_the_field_named(app, hub, name, days, field):
    client = login_client(app, "sw")
    page = _create(client, name, days)
    body = page.get_data(as_text=True)
    assert page.status_code == 400 and f'href="#{field}"' in body and f'id="{field}-error"' in body
    assert list_tokens(hub.store, "sw") == [] and _audit(hub, "token_create") == []


def test_an_integration_admin_sees_and_revokes_everyones_tokens(app, hub):
    owner = login_client(app, "sw")
    token = _TOKEN.search(_create(owner, "reporting").get_data(as_text=True)).group(1)
    prefix = token.split("_")[1]
    admin = login_client(app, "admin")
    listing = admin.get("/users/tokens").get_data(as_text=True)
    assert "reporting" in listing and prefix in listing and token not in listing
    assert admin.post(f"/users/tokens/{prefix}/revoke", data={"csrf_token": admin.csrf_token}).status_code == 302
    assert app.test_client().get("/api/v1/persons", headers=bearer(token)).status_code == 401
    [entry] = _audit(hub, "token_revoke")
    assert entry.actor == "admin" and entry.detail["owners"] == ["sw"]


def test_the_pages_need_a_signed_in_user_not_a_bearer_token(app, hub):
    owner = login_client(app, "sw")
    token = _TOKEN.search(_create(owner).get_data(as_text=True)).group(1)
    anonymous = app.test_client()
    assert anonymous.get("/account/tokens").status_code == 302
    assert anonymous.get("/account/tokens", headers=bearer(token)).status_code == 302
