"""The console's pages through the Flask test client over a small sample estate: who may see
them, CSRF on every action, the payload redaction, the quarantine correction, the metrics."""

from __future__ import annotations

import re

import pytest

from admin_ui import create_app
from hub.services.message_payloads import message_payload
from hub.services.messages import MessageQuery, dead_letters, list_messages
from hub.services.quarantine import list_quarantine
from hub.services.quarantine_fixes import CorrectionRefused, correct_and_rerun
from tests.support.auth import login_client
from tests.support.services import create_pg_database, drop_pg_database
from tests.unit.ui.ui_estate import estate_hub

pytestmark = pytest.mark.slow

CONSOLE_PAGES = ["/console", "/console/flows/live", "/console/flows/live?part=charts", "/console/messages", "/console/dead-letters", "/adapters",
                 "/quarantine", "/decommissioning", "/metrics"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hub(request, tmp_path_factory):
    url = None
    if request.param == "postgresql":
        url = create_pg_database("hub_ui")
    try:
        with estate_hub(tmp_path_factory.mktemp("ui-pages"), people=40, store_url=url) as h:
            yield h
    finally:
        if url:
            drop_pg_database(url)


@pytest.fixture(scope="module")
def app(hub):
    return create_app(hub, testing=True)


@pytest.mark.parametrize("username, allowed", [("admin", True), ("programme", True), ("steward", True),
                                               ("social.worker", False)])
def test_console_pages_need_the_console_permission(app, username, allowed):
    client = login_client(app, username)
    for path in CONSOLE_PAGES:
        response = client.get(path)
        assert response.status_code == (200 if allowed else 403), (username, path)
    nav = client.get("/console/messages" if allowed else "/persons").get_data(as_text=True)
    assert ("Message flows" in nav) == allowed


def test_review_needs_the_review_permission(app):
    assert login_client(app, "steward").get("/review").status_code == 200
    assert login_client(app, "programme").get("/review").status_code == 403


def test_actions_refuse_a_post_without_the_csrf_token(app, hub):
    client = login_client(app, "admin")
    system = hub.systems.names()[0]
    for path in ("/console/dead-letters/replay", f"/adapters/{system}/pause", f"/decommissioning/{system}/advance"):
        assert client.post(path, data={"reason": "x", "all": "yes"}).status_code == 400, path
    assert len(dead_letters(hub.bus)) == 3  # nothing was replayed


def test_a_reason_is_required_to_advance_and_the_refusal_is_explained(app, hub):
    client = login_client(app, "programme")
    system = "education"
    page = client.post(f"/decommissioning/{system}/advance", data={"csrf_token": client.csrf_token, "reason": ""})
    assert page.status_code == 400 and f"Enter why you advance {system}" in page.get_data(as_text=True)
    moved = client.post(f"/decommissioning/{system}/advance", data={"csrf_token": client.csrf_token,
                                                                    "reason": "try"}, follow_redirects=True)
    text = moved.get_data(as_text=True)
    assert "cannot move to hub primary" in text and "quarantine cleared" in text
    assert hub.extras["lifecycle"].phase(system).value == "connected"


def test_the_message_page_shows_the_journey_and_withholds_the_payload_from_a_console_role(app, hub):
    message = list_messages(hub.store, MessageQuery(system="early_help", page_size=1)).results[0]
    page = login_client(app, "programme").get(f"/console/messages/{message['message_id']}").get_data(as_text=True)
    assert "Published" in page and "Processed on records" in page
    assert 'id="payload"' not in page and "payload is withheld" in page


def test_payload_redaction_follows_the_policy_for_every_record_of_a_batch(hub):
    policy = hub.extras["access_policy"]
    message_id = list_messages(hub.store, MessageQuery(system="early_help", type="source.record.batch",
                                                       page_size=1)).results[0]["message_id"]
    steward = message_payload(hub.store, policy, ["data_steward"], message_id)
    assert steward.payload is None and steward.level == "exists" and steward.envelope["source_system"] == "early_help"
    assert message_payload(hub.store, policy, ["youth_justice_officer"], message_id).payload is None
    social = message_payload(hub.store, policy, ["social_worker"], message_id)
    records = [i["record"] for i in social.payload["items"] if "record" in i]
    assert social.level == "summary" and records and all("canonical" in r for r in records)
    assert not any("raw" in r for r in records) and "raw legacy row" in social.withheld
    early_help = message_payload(hub.store, policy, ["early_help_worker"], message_id)
    records = [i["record"] for i in early_help.payload["items"] if "record" in i]
    assert early_help.level == "full" and not any("raw" in r for r in records)  # its ethnicity level is none
    assert not any("ethnicity" in r["canonical"] for r in records)


def test_a_quarantined_row_is_corrected_and_re_run(hub):
    def top_level_missing(e: dict) -> str | None:
        found = re.search(r"has no value \(from ([^)]+)\)", " ".join(e["reasons"]))
        return found.group(1) if e["source_id"] and found and found.group(1) in e["raw"] else None

    entry = next(e for e in list_quarantine(hub.store, page_size=1000)["entries"] if top_level_missing(e))
    field = top_level_missing(entry)
    with pytest.raises(CorrectionRefused, match="no field"):
        correct_and_rerun(hub.store, hub.systems, entry["id"], {"no such column": "x"}, "amy")
    result = correct_and_rerun(hub.store, hub.systems, entry["id"], {field: "Okonkwo"}, "amy")
    assert result["status"] == "resolved"
    assert f"{field}: '' → 'Okonkwo'" in result["resolution"] or f"{field}: None → 'Okonkwo'" in result["resolution"]
    with pytest.raises(CorrectionRefused, match="not open"):
        correct_and_rerun(hub.store, hub.systems, entry["id"], {field: "Other"}, "amy")


def test_trace_follows_a_source_record_to_its_person(app, hub):
    from sqlalchemy import select

    from hub.store.tables.records import SourceRecordRow

    with hub.store.transaction() as s:
        row = s.execute(select(SourceRecordRow).where(SourceRecordRow.person_id.is_not(None),
                                                      SourceRecordRow.entity == "person").limit(1)).scalar_one()
    page = login_client(app, "admin").get(f"/console/trace?system={row.system}&source_id={row.source_id}")
    assert f"/persons/{row.person_id}" in page.get_data(as_text=True)


def test_metrics_report_messages_queues_ingest_and_backlog(app, hub):
    text = login_client(app, "admin").get("/metrics").get_data(as_text=True)
    for name in ("hub_message_events_total", "hub_queue_messages", "hub_queue_consumers",
                 "hub_ingest_runs_total", "hub_ingest_last_run_rows", "hub_review_backlog",
                 "hub_quarantine_entries", "hub_processing_latency_seconds", "hub_system_phase"):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert 'hub_queue_messages{queue="records",state="dead"} 3.0' in text
    assert re.search(r'hub_ingest_last_run_rows\{figure="seen",system="education"\} [1-9]', text)
    anonymous = app.test_client().get("/metrics")
    assert anonymous.status_code in (302, 401)


def test_a_shown_payload_is_audited_and_a_withheld_one_is_not(app, hub):
    from sqlalchemy import select

    from hub.store.tables.access import AuditRow
    from tests.support.auth import create_user

    create_user(hub, "sw.audit", ["social_worker"])
    message_id = list_messages(hub.store, MessageQuery(system="early_help", page_size=1)).results[0]["message_id"]
    # a social worker holds no "console" permission: refused, nothing shown
    assert login_client(app, "sw.audit").get(f"/console/messages/{message_id}").status_code == 403
    login_client(app, "programme").get(f"/console/messages/{message_id}")  # payload withheld
    with hub.store.transaction() as s:
        views = s.execute(select(AuditRow).where(AuditRow.action == "view",
                                                 AuditRow.target == f"message/{message_id}")).scalars().all()
    assert views == []
    create_user(hub, "eh.admin", ["integration_admin", "early_help_worker"])
    page = login_client(app, "eh.admin").get(f"/console/messages/{message_id}").get_data(as_text=True)
    assert 'id="payload"' in page
    with hub.store.transaction() as s:
        views = s.execute(select(AuditRow).where(AuditRow.action == "view",
                                                 AuditRow.target == f"message/{message_id}")).scalars().all()
        assert [(v.actor, v.detail["level"]) for v in views] == [("eh.admin", "full")]


def test_a_nested_field_is_corrected_by_its_path(hub):
    from hub.services.quarantine import accept

    with hub.store.transaction() as s:
        from hub.store.tables.records import QuarantineRow

        row = QuarantineRow(system="youth_justice", entity="young-people", source_id="YJ999", location="api",
                            raw={"id": "YJ999", "name": {"given": "Ann", "family": ""}}, reasons=["x"])
        s.add(row)
        s.flush()
        entry_id = row.id
    with pytest.raises(CorrectionRefused, match="name.middle"):
        correct_and_rerun(hub.store, hub.systems, entry_id, {("name", "middle"): "x"}, "amy")
    result = correct_and_rerun(hub.store, hub.systems, entry_id, {("name", "family"): "Okonkwo"}, "amy")
    assert result["raw"]["name"] == {"given": "Ann", "family": "Okonkwo"}
    if result["status"] == "open":  # the made-up row may still fail other checks of the mapping
        accept(hub.store, entry_id, "test row", who="amy")
