"""The youth justice REST stand-in: authenticates, paginates, filters, accepts writes."""

from __future__ import annotations

import sqlite3

import pytest
import requests

from hub.estate import generate
from hub.estate.youth_justice_api import make_youth_justice_app, serve_youth_justice_in_thread

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    root = tmp_path_factory.mktemp("yj")
    generate(root, people=8000, seed=2)
    return root


@pytest.fixture
def client(estate):
    return make_youth_justice_app(estate, TOKEN).test_client()


def _all_ids(estate, table: str) -> list[str]:
    with sqlite3.connect(estate / "youth_justice" / "youth_justice.db") as db:
        return [r[0] for r in db.execute(f"SELECT id FROM {table}")]


def test_requests_without_the_bearer_token_are_refused(client):
    assert client.get("/api/v1/young-people").status_code == 401
    assert client.get("/api/v1/orders", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/api/v1/orders", json={}).status_code == 401
    assert client.get("/api/v1/young-people", headers=AUTH).status_code == 200


def test_default_token_comes_from_the_environment(estate, monkeypatch):
    monkeypatch.setenv("YJ_API_TOKEN", "from-env")
    app = make_youth_justice_app(estate)
    assert app.test_client().get("/api/v1/orders", headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_following_link_headers_visits_every_record_once_in_order(client, estate):
    seen, url, pages = [], "/api/v1/young-people?limit=7", 0
    while url:
        r = client.get(url, headers=AUTH)
        assert r.status_code == 200
        body = r.get_json()
        seen += body["data"]
        pages += 1
        link = r.headers.get("Link")
        assert (link is None) == (body["next_cursor"] is None)
        url = link[link.index("<") + 1: link.index(">")].replace("http://localhost", "") if link else None
    ids = [p["id"] for p in seen]
    assert sorted(ids) == sorted(_all_ids(estate, "young_people")) and len(set(ids)) == len(ids)
    keys = [(p["updatedAt"], p["id"]) for p in seen]
    assert keys == sorted(keys) and pages == -(-len(ids) // 7)


def test_updated_since_returns_only_newer_records_and_bad_parameters_are_400(client, estate):
    everything = client.get("/api/v1/orders?limit=1000", headers=AUTH).get_json()["data"]
    middle = sorted(o["updatedAt"] for o in everything)[len(everything) // 2]
    newer = client.get(f"/api/v1/orders?limit=1000&updated_since={middle}", headers=AUTH).get_json()["data"]
    assert newer and all(o["updatedAt"] >= middle for o in newer)
    assert len(newer) == sum(o["updatedAt"] >= middle for o in everything) < len(everything)
    for bad in ("cursor=nonsense!", "updated_since=yesterday", "limit=0", "limit=5000", "limit=x"):
        assert client.get(f"/api/v1/orders?{bad}", headers=AUTH).status_code == 400, bad


def test_orders_filter_by_young_person(client):
    some = client.get("/api/v1/orders?limit=1", headers=AUTH).get_json()["data"][0]
    mine = client.get(f"/api/v1/orders?young_person_id={some['youngPersonId']}", headers=AUTH).get_json()["data"]
    assert mine and {o["youngPersonId"] for o in mine} == {some["youngPersonId"]}


def test_create_update_and_version_conflict(client):
    r = client.post("/api/v1/young-people", headers=AUTH, json={
        "name": {"given": "Kai", "family": "Doe"}, "dateOfBirth": "2010-05-04", "sex": "male",
        "address": {"lines": ["1 Mill Lane", "Matlock"], "postcode": "DE4 3AB"}})
    assert r.status_code == 201
    created = r.get_json()
    assert created["version"] == 1 and r.headers["Location"].endswith(f"/api/v1/young-people/{created['id']}")
    r = client.patch(f"/api/v1/young-people/{created['id']}", headers={**AUTH, "If-Match": "1"},
                     json={"address": {"postcode": "DE4 9ZZ"}})
    updated = r.get_json()
    assert r.status_code == 200 and updated["version"] == 2
    assert updated["address"] == {"lines": ["1 Mill Lane", "Matlock"], "postcode": "DE4 9ZZ"}
    assert updated["updatedAt"] >= created["updatedAt"]
    stale = client.patch(f"/api/v1/young-people/{created['id']}", headers={**AUTH, "If-Match": "1"}, json={"sex": "female"})
    assert stale.status_code == 409 and stale.get_json()["version"] == 2
    order = client.post("/api/v1/orders", headers=AUTH, json={"youngPersonId": created["id"], "type": "RO",
                                                                "startDate": "2026-10-01"})
    assert order.status_code == 201 and order.get_json()["status"] == "active"
    assert client.get(f"/api/v1/orders/{order.get_json()['id']}", headers=AUTH).get_json()["type"] == "RO"
    newest = client.get(f"/api/v1/young-people?updated_since={updated['updatedAt']}", headers=AUTH).get_json()["data"]
    assert created["id"] in {p["id"] for p in newest}


def test_invalid_writes_are_400_and_unknown_ids_404(client):
    assert client.post("/api/v1/young-people", headers=AUTH, json={"sex": "male", "name": {}}).status_code == 400
    assert client.post("/api/v1/young-people", headers=AUTH, json={"name": {"family": "X"},
                                                                   "dateOfBirth": "2012-02-31"}).status_code == 400
    assert client.post("/api/v1/orders", headers=AUTH, json={"youngPersonId": "YJ999999", "type": "RO"}).status_code == 400
    assert client.post("/api/v1/orders", headers=AUTH, data="not json").status_code == 400
    assert client.get("/api/v1/young-people/YJ999999", headers=AUTH).status_code == 404
    assert client.patch("/api/v1/orders/ORD999999", headers=AUTH, json={"status": "completed"}).status_code == 404


def test_served_on_a_thread_over_real_http(estate):
    server = serve_youth_justice_in_thread(estate, token=TOKEN)
    try:
        r = requests.get(f"{server.url}/api/v1/young-people", params={"limit": 3}, headers=AUTH, timeout=5)
        assert r.status_code == 200 and len(r.json()["data"]) == 3
        nxt = requests.get(r.links["next"]["url"], headers=AUTH, timeout=5)
        assert nxt.status_code == 200 and nxt.json()["data"][0]["id"] not in {p["id"] for p in r.json()["data"]}
    finally:
        server.stop()
