"""/api/v1/systems and /api/v1/write over HTTP: permissions, refusals with their reasons,
conflicts as 409, Idempotency-Key, and the OpenAPI document."""

from __future__ import annotations

import pytest

from admin_ui import create_app
from hub.routing_worker import drain
from hub.services import quarantine as q
from hub.services.persons import SearchQuery, get_person, search_persons
from routing.readiness import ReadinessPolicy
from tests.integration.routing_legacy import LegacySystem, make_hub, sync
from tests.support.auth import api_token, bearer, create_user


@pytest.fixture
def api(sqlite_store, tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_ARCHIVE_DIR", str(tmp_path / "archive"))
    sc = LegacySystem(tmp_path, "social_care", "social_care")
    sc.client("C1", "Amy", "Smith")
    hub = make_hub(sqlite_store, tmp_path)
    hub.extras["lifecycle"].policy = ReadinessPolicy(quiet_days=0)
    sync(hub, "social_care")
    client = create_app(hub, testing=True).test_client()
    tokens = {}
    for user, role in (("pm", "programme_manager"), ("app", "business_application"), ("sw", "social_worker")):
        create_user(hub, user, [role])
        tokens[user] = bearer(api_token(hub, user))
    yield hub, sc, client, tokens
    hub.close()


def test_systems_api_lists_checks_advances_refuses_and_reverts(api):
    hub, sc, client, t = api
    assert client.get("/api/v1/systems", headers=t["sw"]).status_code == 403
    listing = client.get("/api/v1/systems", headers=t["pm"]).get_json()["systems"]
    assert [(s["system"], s["phase"], s["adapter_enabled"]) for s in listing] == [("social_care", "connected", True)]
    assert client.post("/api/v1/systems/social_care/advance", json={}, headers=t["pm"]).status_code == 400
    sc.client("C2", "Ben", None)
    sync(hub, "social_care")
    refused = client.post("/api/v1/systems/social_care/advance", json={"reason": "go"}, headers=t["pm"])
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["target"] == "hub_primary" and [c["name"] for c in body["failed"]] == ["quarantine_cleared"]
    sc.execute("DELETE FROM clients WHERE client_id = 'C2'")
    q.accept(hub.store, q.list_quarantine(hub.store, system="social_care")["entries"][0]["id"], "deleted at source")
    sync(hub, "social_care")
    checks = client.get("/api/v1/systems/social_care/checks", headers=t["pm"]).get_json()
    assert checks["ready"], checks
    moved = client.post("/api/v1/systems/social_care/advance", json={"reason": "front end on the hub"},
                        headers=t["pm"]).get_json()
    assert (moved["from"], moved["to"], moved["who"]) == ("connected", "hub_primary", "pm")
    detail = client.get("/api/v1/systems/social_care", headers=t["pm"]).get_json()
    assert detail["phase"] == "hub_primary" and detail["next"] == "read_only" and detail["previous"] == "connected"
    assert [x["outcome"] for x in detail["transitions"]] == ["done", "refused"]
    back = client.post("/api/v1/systems/social_care/revert", json={"reason": "training"}, headers=t["pm"])
    assert back.status_code == 200 and back.get_json()["to"] == "connected"
    assert client.post("/api/v1/systems/social_care/revert", json={"reason": "x"}, headers=t["pm"]).status_code == 409
    assert client.get("/api/v1/systems/nowhere", headers=t["pm"]).status_code == 404
    rows = client.get("/api/v1/systems/sor?system=social_care", headers=t["pm"]).get_json()["rows"]
    assert {r["owner"] for r in rows if r["entity"] == "person" and r["field"] == "address"} == {"social_care"}
    rec = client.post("/api/v1/systems/social_care/reconcile", headers=t["pm"]).get_json()
    assert rec["clean"] and rec["legacy_count"] == 1


def test_write_api_conflict_idempotency_and_status(api):
    hub, sc, client, t = api
    hub.extras["lifecycle"].advance("social_care", who="pm", reason="hub is SoR")
    person = client.get("/api/v1/persons?name=amy", headers=t["app"])
    assert person.status_code == 403  # a business application writes; it has no search permission
    pid = _person_id(hub)
    version = _version(hub, pid)
    assert client.patch(f"/api/v1/write/persons/{pid}", json={"changes": {"name.given": "A"}},
                        headers=t["sw"]).status_code == 403
    ok = client.patch(f"/api/v1/write/persons/{pid}", json={"changes": {"name.given": "Amelia"}},
                      headers={**t["app"], "If-Match": f'"{version}"', "Idempotency-Key": "edit-1"})
    assert ok.status_code == 200 and ok.headers["ETag"] == f'"{version + 1}"'
    replay = client.patch(f"/api/v1/write/persons/{pid}", json={"changes": {"name.given": "Amelia"}},
                          headers={**t["app"], "If-Match": f'"{version}"', "Idempotency-Key": "edit-1"})
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json()["write_id"] == ok.get_json()["write_id"]
    stale = client.patch(f"/api/v1/write/persons/{pid}", json={"version": version, "changes": {"name.given": "X"}},
                         headers=t["app"])
    assert stale.status_code == 409
    assert stale.get_json()["current_version"] == version + 1 and "re-read it" in stale.get_json()["detail"]
    bad = client.post("/api/v1/write/persons", json={"person": {"names": []}}, headers=t["app"])
    assert bad.status_code == 400 and bad.get_json()["reasons"]
    drain(hub.bus, hub.relay, hub.extras["routing_worker"], idle_timeout_s=0.2)
    status = client.get(f"/api/v1/write/{ok.get_json()['write_id']}", headers=t["app"]).get_json()
    assert status["status"] == "written" and status["deliveries"][0]["status"] == "applied"
    assert sc.row("C1")["forename"] == "Amelia"
    doc = client.get("/api/v1/openapi.json", headers=t["pm"]).get_json()
    assert {"/api/v1/systems", "/api/v1/systems/{name}/advance", "/api/v1/write/persons",
            "/api/v1/write/persons/{person_id}", "/api/v1/write/involvements/{ref}/close"} <= set(doc["paths"])


def _person_id(hub) -> str:
    return search_persons(hub.store, SearchQuery(name="amy")).results[0]["id"]


def _version(hub, pid: str) -> int:
    return get_person(hub.store, pid)["version"]
